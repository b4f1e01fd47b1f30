"""The hooks of ``mslr`` (see the package docstring), and what MSLR and MSES share: a modality's parameters (its
branch and, where the host has one, its own head). Torch is imported by the hooks, not by this module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, register_plugin
from reproduce.methods.mslr.options import MSLROptions

if TYPE_CHECKING:
    from reproduce.methods.base import StepData
    from reproduce.methods.context import TrainContext

NAME = "mslr"


def own_head(host: Any, modality: str) -> Any:
    """The host's head of ``modality`` alone, where it has one (``host.heads[modality]``: resnet18_concat with
    ``fusion="sum"``, the AGM repository's ``audio_cls`` / ``visual_cls``); None otherwise (a shared head, e.g. a
    concat head, belongs to no modality)."""
    heads = getattr(host, "heads", None)
    if heads is None or not hasattr(heads, "keys") or modality not in heads.keys():
        return None
    return heads[modality]


def modality_modules(host: Any, modality: str) -> dict[str, Any]:
    """The modules of ``modality``: ``branch`` (``host.branches()[modality]``) and, where it exists, ``head``."""
    branches = host.branches()
    if modality not in branches:
        raise ValueError(f"the host {type(host).__name__} has no branch {modality!r}; it has {sorted(branches)}")
    modules = {"branch": branches[modality]}
    head = own_head(host, modality)
    if head is not None:
        modules["head"] = head
    return modules


def modality_parameters(host: Any, modality: str) -> list[Any]:
    """The trainable parameters of ``modality``'s branch (every one: the AGM repository's ``audio_net`` /
    ``visual_net``) and of its own head (``audio_cls`` / ``visual_cls``) where the host has one; each once."""
    from reproduce.methods.modality_signals import branch_parameters

    out, seen = [], set()
    params = [p for _, p in branch_parameters(host, modality, "all")]
    head = own_head(host, modality)
    if head is not None:
        params += [p for p in head.parameters() if p.requires_grad]
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def check_modalities(ctx: TrainContext, who: str) -> tuple[str, ...]:
    """The run's modalities; a clear error for fewer than two (nothing to balance)."""
    modalities = tuple(ctx.task.modalities)
    if len(modalities) < 2:
        raise ValueError(f"{who} balances at least two modalities; this run has {list(modalities)}")
    return modalities


def check_predictions(ctx: TrainContext, output: Any, who: str) -> None:
    """A clear error when the host has no per-modality classification predictions (checked on the first step,
    instead of after the first epoch's training)."""
    from reproduce.methods.modality_signals import classification_logits, unimodal_logits

    for logits in unimodal_logits(ctx, output, who).values():
        classification_logits(logits, who)


def validation(ctx: TrainContext, split: str, who: str) -> dict[str, dict[str, float]]:
    """Each modality's own accuracy and loss on ``split`` (``modality_signals.unimodal_validation``, looked up when
    called: tests feed it by patching that module)."""
    from reproduce.methods import modality_signals

    return modality_signals.unimodal_validation(ctx, split, who)


def mslr_ratio(accuracy: float, memory: Sequence[float]) -> float:
    """acc(now) / mean(memory) (``CREMAD_main.py`` l.676-677); 1.0 where the mean is 0 (the ratio is undefined)."""
    mean = sum(memory) / len(memory)
    return accuracy / mean if mean > 0 else 1.0


@register_plugin(NAME)
class MSLRPlugin(Plugin):
    """Per-modality gradient multipliers base_m x ratio_m, the ratio from the validation accuracy's recent memory
    (package docstring)."""

    options_class = MSLROptions

    def __init__(self, options: MSLROptions | None = None) -> None:
        super().__init__(options if options is not None else MSLROptions())
        self.modalities: tuple[str, ...] = ()
        self.memory: dict[str, list[float]] = {}
        self.ratio: dict[str, float] = {}
        self.parameters: dict[str, list[Any]] = {}
        self._checked = False

    # ------------------------------------------------------------------ hooks
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, Any]) -> None:
        self.modalities = check_modalities(ctx, NAME)
        unknown = sorted(set(self.options.base) - set(self.modalities))
        if unknown:
            raise ValueError(f"mslr: base names {unknown}, not modalities of this run {list(self.modalities)}")
        self.parameters = {m: modality_parameters(ctx.host, m) for m in self.modalities}
        self.memory = {m: [] for m in self.modalities}
        self.ratio = {m: 1.0 for m in self.modalities}

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        if not self._checked:
            check_predictions(ctx, step.output, NAME)
            self._checked = True
        return loss, parts

    def before_optimizer_step(self, ctx: TrainContext) -> None:
        if not self.active(ctx.epoch):
            return
        for m, coefficient in self.coefficients().items():
            for p in self.parameters[m]:
                if p.grad is not None:
                    p.grad.mul_(coefficient)

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        scores = validation(ctx, self.options.split, NAME)
        accuracy = {m: float(scores[m]["acc"]) for m in self.modalities}
        for m in self.modalities:
            if len(self.memory[m]) < self.options.memory:
                self.memory[m].append(accuracy[m])
            else:  # the ratio replaces the previous one; then the oldest accuracy leaves the memory
                self.ratio[m] = mslr_ratio(accuracy[m], self.memory[m])
                self.memory[m] = [*self.memory[m][1:], accuracy[m]]
        entry[NAME] = {"acc": accuracy, "ratio": dict(self.ratio), "coefficient": self.coefficients()}

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        for m, coefficient in self.coefficients().items():
            values[f"{NAME}/coefficient/{m}"] = coefficient if self.active(ctx.epoch) else 1.0
            values[f"{NAME}/ratio/{m}"] = self.ratio[m]

    # ------------------------------------------------------------------ values
    def active(self, epoch: int) -> bool:
        """Whether ``epoch``'s steps are modulated (``start_epoch <= epoch <= end_epoch``)."""
        end = self.options.end_epoch
        return self.options.start_epoch <= epoch and (end is None or epoch <= end)

    def coefficients(self) -> dict[str, float]:
        """base_m x ratio_m per modality."""
        return {m: float(self.options.base.get(m, 1.0)) * self.ratio[m] for m in self.modalities}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"memory": {m: list(v) for m, v in self.memory.items()}, "ratio": dict(self.ratio)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.memory = {m: [float(x) for x in v] for m, v in state["memory"].items()}
        self.ratio = {m: float(v) for m, v in state["ratio"].items()}

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "plugin": self.name,
            "base": dict(o.base),
            "memory": o.memory,
            "start_epoch": o.start_epoch,
            "end_epoch": o.end_epoch,
            "split": o.split,
        }
