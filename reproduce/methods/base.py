"""The training plug-in contract, the ordered list a run holds, and the plug-in registry (torch-free).

Everything that shapes training beyond the plain loss is a plug-in: the run's method (``standard``, ``mmanet``,
``mmanet_seg``, ``gss``, ``ultralytics``), MWAM (every intervention), SDE, the logger (W&B and ``curves.csv``) and
the plug-ins a run lists (``plugins:``; the balancing methods, a user's own). A plug-in implements any of the hooks
below; each receives a :class:`~reproduce.methods.context.TrainContext` (device, host, task, configuration,
tracker, position, the evaluation entry point), never the trainer. The default of every hook does nothing.

=============================  ======================================================================================
hook                           when
=============================  ======================================================================================
``dependencies(config)``       planning (class method, torch-free): the runs this run needs, trained first
``setup(ctx, deps)``           once the host is on its device, before the optimiser, DDP and the first batch
``on_train_start(ctx)``        once the tracker exists, after a resume checkpoint was loaded, before the first epoch
``before_forward(ctx, x)``     every step, before the forward pass, with the step's inputs (MWAM measures them)
``loss_terms(ctx, terms)``     every step: the task's :class:`~reproduce.tasks.base.LossTerms`, reweighted (GSS)
``combine_terms(ctx, terms)``  every step: the fused + per-modality total (MWAM's Eq. 7); None leaves it to the
                               next plug-in, and the plain sum is taken when every one returns None
``loss(ctx, step, loss, parts)``  every step: add terms to the loss, named parts for the logs (MMANet, SDE)
``before_optimizer_step(ctx)`` every step, after backward and unscaling: edit the gradients (OGM-GE, AGM ...)
``on_epoch_end(ctx, e, entry)`` after each epoch's training and validation: add to its history entry
``on_log(ctx, values)``        on the logged steps: add values (MWAM's FRM / T / K, SDE's energies); the logger
                               writes them
``on_train_end(ctx, result)``  once the result is final, before it is written (the logger's summary)
``state_dict``                 what the plug-in adds to a checkpoint (the same on every process)
``process_state_dict``         what differs between processes (a generator, this epoch's per-step values)
``describe()``                 what it adds to the run's registry entry
=============================  ======================================================================================

**Order.** A run's plug-ins are, in this order: the method, the listed plug-ins (in the order the run lists them),
then the built-in plug-ins its sections switch on, by their ``order`` (MWAM 10, SDE 20, logger 90). Every hook is
called in that order, so at ``before_optimizer_step`` a balancing plug-in edits gradients that MWAM's tensor hooks
have already multiplied by K during backward (the two multiply), the method's loss terms come before SDE's, and
the logger, last, sees every value the others added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from mwam_harness.catalog import PLUGINS

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext
    from reproduce.runs.config import RunConfig
    from reproduce.runs.runtime import Runtime

P = TypeVar("P", bound="type[Plugin]")
#: What a plug-in is: the run's ``method``, a plug-in the run lists under ``plugins``, or a built-in plug-in that a
#: section of the run (``mwam``, ``sde``) or its runtime (the logger) switches on.
KINDS = ("method", "plugin", "builtin")


@dataclass(frozen=True)
class Dependency:
    """A run another run needs (``config``), and how it is labelled (``column``) in logs and the registry."""

    config: RunConfig
    column: str


@dataclass(frozen=True)
class FinishedRun:
    """A finished dependency: its configuration, its registry entry and its final weights."""

    config: RunConfig
    result: Mapping[str, Any]
    weights: Path


@dataclass
class StepData:
    """What the ``loss`` hook sees of one training step: the inputs on the device, the host's output, the batch
    and the task's (reweighted) loss terms."""

    inputs: Mapping[str, Any]
    output: Any
    batch: Mapping[str, Any]
    terms: Any


class Plugin:
    """Base class of the training plug-ins (see the module docstring for the hooks and their order)."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "plugin"
    #: Built-in plug-ins: their position among the built-ins (the method and listed plug-ins come first).
    order: ClassVar[int] = 50
    options_class: ClassVar[type | None] = None

    def __init__(self, options: Any = None) -> None:
        self.options = options

    # ------------------------------------------------------------------ planning and construction
    @classmethod
    def dependencies(cls, config: RunConfig) -> dict[str, Dependency]:
        """The runs ``config`` needs, by role (e.g. ``{"teacher": ...}``); none by default."""
        return {}

    @classmethod
    def from_run(cls, config: RunConfig, runtime: Runtime | None) -> Plugin | None:
        """Built-in plug-ins: the instance ``config`` / ``runtime`` switch on, or None (not in this run)."""
        return None

    # ------------------------------------------------------------------ hooks
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, FinishedRun]) -> None:
        """Prepare for ``ctx``'s run (its host is on its device); ``dependencies`` are the finished dependency runs."""

    def on_train_start(self, ctx: TrainContext) -> None:
        """Once the tracker exists and a resume checkpoint is loaded, before the first (or resumed) epoch."""

    def before_forward(self, ctx: TrainContext, inputs: Mapping[str, Any]) -> None:
        """Every step, with its inputs on the device, before the forward pass."""

    def loss_terms(self, ctx: TrainContext, terms: Any) -> Any:
        """The task's :class:`~reproduce.tasks.base.LossTerms` before they are combined; default: unchanged."""
        return terms

    def combine_terms(self, ctx: TrainContext, terms: Any) -> Any:
        """The combined fused + per-modality loss (a tensor), or None to leave it to the next plug-in."""
        return None

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        """The step's loss given the total so far and its named, detached ``parts``; default: unchanged."""
        return loss, parts

    def before_optimizer_step(self, ctx: TrainContext) -> None:
        """After backward (gradients complete, unscaled under fp16), before the optimiser step."""

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        """After the epoch's training and validation, before its history entry and checkpoint are written."""

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        """On a logged step: add this plug-in's values to ``values`` (or write them, for a logger)."""

    def on_train_end(self, ctx: TrainContext, result: dict[str, Any]) -> None:
        """Once the run's result is final, before the registry entry is written (every process)."""

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The plug-in's checkpoint state, identical on every process."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def process_state_dict(self) -> dict[str, Any]:
        """This process's own checkpoint state (e.g. a random generator, per-step values of this epoch)."""
        return {}

    def load_process_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`process_state_dict`."""

    def describe(self) -> dict[str, Any]:
        """What the plug-in adds to the run's registry entry."""
        return {"method" if self.kind == "method" else "plugin": self.name}


class PluginList(Sequence[Plugin]):
    """A run's plug-ins in their order, with one method per hook that calls every plug-in in turn."""

    def __init__(self, plugins: Sequence[Plugin], with_method: bool = True) -> None:
        """``with_method``: the list holds the run's one method plug-in (the engine's runs); a loop that trains by
        its own recipe (ultralytics') holds only the other plug-ins."""
        self._plugins = list(plugins)
        names = [p.name for p in self._plugins]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"a run holds each plug-in once; {repeated} appear more than once")
        methods = [p.name for p in self._plugins if p.kind == "method"]
        if len(methods) != (1 if with_method else 0):
            wanted = "exactly one method plug-in" if with_method else "no method plug-in"
            raise ValueError(f"this plug-in list takes {wanted}, got {methods or 'none'}")

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            for plugin in self._plugins:
                if plugin.name == index:
                    return plugin
            raise KeyError(f"this run has no plug-in {index!r}; it has {[p.name for p in self._plugins]}")
        return self._plugins[index]

    def __len__(self) -> int:
        return len(self._plugins)

    def __iter__(self) -> Iterator[Plugin]:
        return iter(self._plugins)

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self._plugins)

    @property
    def method(self) -> Plugin:
        """The run's method plug-in."""
        return next(p for p in self._plugins if p.kind == "method")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._plugins]

    # ------------------------------------------------------------------ hooks, in order
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, FinishedRun]) -> None:
        for p in self._plugins:
            p.setup(ctx, dependencies)

    def on_train_start(self, ctx: TrainContext) -> None:
        for p in self._plugins:
            p.on_train_start(ctx)

    def before_forward(self, ctx: TrainContext, inputs: Mapping[str, Any]) -> None:
        for p in self._plugins:
            p.before_forward(ctx, inputs)

    def loss_terms(self, ctx: TrainContext, terms: Any) -> Any:
        for p in self._plugins:
            terms = p.loss_terms(ctx, terms)
        return terms

    def combine_terms(self, ctx: TrainContext, terms: Any) -> Any:
        """The first plug-in's combination that is not None; None when no plug-in combines."""
        for p in self._plugins:
            combined = p.combine_terms(ctx, terms)
            if combined is not None:
                return combined
        return None

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        for p in self._plugins:
            loss, parts = p.loss(ctx, step, loss, parts)
        return loss, parts

    def before_optimizer_step(self, ctx: TrainContext) -> None:
        for p in self._plugins:
            p.before_optimizer_step(ctx)

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        for p in self._plugins:
            p.on_epoch_end(ctx, epoch, entry)

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        for p in self._plugins:
            p.on_log(ctx, values)

    def on_train_end(self, ctx: TrainContext, result: dict[str, Any]) -> None:
        for p in self._plugins:
            p.on_train_end(ctx, result)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {p.name: p.state_dict() for p in self._plugins}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load(state, "state_dict", lambda p, s: p.load_state_dict(s))

    def process_state_dict(self) -> dict[str, Any]:
        return {p.name: p.process_state_dict() for p in self._plugins}

    def load_process_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load(state, "process state", lambda p, s: p.load_process_state_dict(s))

    def _load(self, state: Mapping[str, Any], what: str, load: Callable[[Plugin, Any], None]) -> None:
        if set(state) != set(self.names):
            raise ValueError(
                f"the checkpoint's plug-in {what} is for {sorted(state)}; this run's plug-ins are {sorted(self.names)}"
            )
        for p in self._plugins:
            load(p, state[p.name])

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": p.name, **p.describe()} for p in self._plugins]


def check_run_overrides(overrides: Mapping[str, Any], label: str, reserved: tuple[str, ...], instead: str) -> None:
    """Validate nested overrides of a dependency's run (``teacher_run``, ``init_run``): known sections, each a
    mapping (``plugins`` a list), none of ``reserved`` (which the plug-in sets itself; ``instead`` says how)."""
    from reproduce.runs.config import SECTIONS

    forbidden = sorted(set(overrides) & set(reserved))
    if forbidden:
        raise ValueError(f"{label} may not set {forbidden}; use {instead}")
    unknown = sorted(set(overrides) - set(SECTIONS) - {"task", "plugins"})
    if unknown:
        raise ValueError(f"{label}: unknown run settings {unknown}; it takes sections {sorted(SECTIONS)}")
    bad = sorted(k for k, v in overrides.items() if k not in ("task", "plugins") and not isinstance(v, Mapping))
    if bad:
        raise ValueError(f"{label}: sections {bad} must be mappings (e.g. {{'train': {{'batch_size': 64}}}})")


def register_plugin(name: str, kind: str = "plugin") -> Callable[[P], P]:
    """Class decorator: register a :class:`Plugin` subclass as ``name`` of ``kind`` (``method``, ``plugin`` or
    ``builtin``; see :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def decorate(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            raise TypeError(f"@register_plugin({name!r}) decorates Plugin subclasses, got {cls!r}")
        cls.name, cls.kind = name, kind
        return PLUGINS.add(name, cls)

    return decorate


def register_method(name: str) -> Callable[[P], P]:
    """Class decorator: register a method plug-in (what ``method.name`` names)."""
    return register_plugin(name, "method")


def plugin_class(name: str, kind: str | None = None) -> type[Plugin]:
    """The plug-in registered as ``name`` (of ``kind`` when given); ValueError listing the known ones otherwise."""
    cls = PLUGINS.get(name)
    if kind is not None and cls.kind != kind:
        known = ", ".join(list_plugins(kind))
        raise ValueError(f"{name!r} is a {cls.kind} plug-in, not a {kind}; the {kind} plug-ins are: {known}")
    return cls


def list_plugins(kind: str | None = None) -> list[str]:
    """The registered plug-ins (of ``kind`` when given), sorted."""
    return [name for name, cls in PLUGINS.items() if kind is None or cls.kind == kind]


def method_class(name: str) -> type[Plugin]:
    """The method plug-in registered as ``name``."""
    return plugin_class(name, "method")


def list_methods() -> list[str]:
    return list_plugins("method")
