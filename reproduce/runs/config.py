"""The run configuration (schema 2): everything that determines one trained model and its numbers, as pure data.

A :class:`RunConfig` is built from sections -- data, host, optim, schedule, train, eval, method, plugins, mwam, sde
-- and a seed; how a run is executed (device, workers, logging, W&B, the table and column it fills) lives apart, in
:class:`reproduce.runs.runtime.Runtime`, and is never hashed. Validation happens on construction: unknown keys
(at any level) and bad values are errors that name the key. Building one imports no torch: the libraries' option
classes (``mwam.MWAMConfig``, ``sde.SDEConfig``), the plug-ins' option classes and the data-set specs are
torch-free. The plug-ins' options are validated through the harness's catalog (``mwam_harness.catalog.PLUGINS``),
which finds each plug-in's options class; this package imports no plug-in module.

The registry key hashes :meth:`RunConfig.identity`: every section without the values equal to their defaults, the
data set named by its name and the fingerprint of its split files (not by its path), and the schema number. A field
added later with a default therefore leaves every existing key unchanged, and moving the data keeps them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwam_harness.catalog import PLUGINS
from reproduce.runs.options import options_without_defaults, plain, without_defaults
from reproduce.runs.schedules import ANNEALS, INTERVALS, SCHEDULE_FIELDS

#: Bumped when the meaning of an existing field changes; part of every key.
SCHEMA = 3
INTERVENTIONS = ("off", "none", "grad", "loss", "hybrid")
AMP_MODES = ("auto", "off", "bf16", "fp16")
SELECTIONS = ("last", "best_val", "epoch:N")
_EPOCH_SELECTION = re.compile(r"epoch:(0|[1-9][0-9]*)")
SELECTION_INPUTS = ("full", "training_dropout")
OPTIMIZER_FIELDS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov"),
    "adam": ("betas", "eps", "amsgrad"),
    "adamw": ("betas", "eps", "amsgrad"),
}


class ConfigError(ValueError):
    """A run configuration that cannot be used; the message names the key."""


def _integer(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _number(value: Any, name: str, positive: bool = False) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or (positive and not value > 0):
        raise ConfigError(f"{name} must be a number{' > 0' if positive else ''}, got {value!r}")
    return float(value)


def _choice(value: Any, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _validated_options(config_class: type, options: Any, label: str, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """``options`` (a mapping) checked against ``config_class`` and without its defaults; ConfigError otherwise."""
    try:
        return options_without_defaults(config_class, _mapping(options, label), label, exclude)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None


def _only_used(section: Any, name: str) -> None:
    """Fields of an ``optim`` / ``schedule`` section that its kind does not read must keep their defaults (else the
    setting would be silently ignored)."""
    kinds, always = KINDED_SECTIONS[name]
    used = kinds[section.name]
    for f in dataclasses.fields(section):
        if f.name in used or f.name in always:
            continue
        if plain(getattr(section, f.name)) != plain(f.default):
            raise ConfigError(
                f"{name} {section.name!r} does not use {f.name!r} (it reads {', '.join(used) or 'nothing else'})"
            )


@dataclass(frozen=True)
class DataConfig:
    """The data: a registered data set, where it lies, the modalities used and the loader options.

    root: the data root (real data). synthetic: instead of a root, the name of a preset whose synthetic stand-in
        is used (generated under the results root when missing). Neither is part of the run's identity: the
        fingerprint of the split files is (``fingerprint()``).
    modalities: the modalities used, a subset of the data set's (None: all of them), kept in its order.
    options: keyword arguments of the data set's loader (CASIA-SURF: ``resize`` / ``crop``).
    """

    dataset: str
    root: str | None = None
    synthetic: str | None = None
    modalities: tuple[str, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from mwam_harness.datasets.registry import dataset_spec

        try:
            spec = dataset_spec(self.dataset)
        except ValueError as error:
            raise ConfigError(f"data.dataset: {error}") from None
        if self.root is not None and self.synthetic is not None:
            raise ConfigError("data: give either root (real data) or synthetic (a preset's stand-in), not both")
        if self.synthetic is not None:
            presets = [name for name, p in spec.presets.items() if p.synthetic]
            _choice(self.synthetic, tuple(presets), "data.synthetic")
        if self.root is not None:
            object.__setattr__(self, "root", str(self.root))
        if self.modalities is not None:
            chosen = list(self.modalities) if not isinstance(self.modalities, str) else [self.modalities]
            unknown = [m for m in chosen if m not in spec.modalities]
            if unknown or not chosen or len(set(chosen)) != len(chosen):
                raise ConfigError(
                    f"data.modalities must be distinct modalities of {self.dataset} ({', '.join(spec.modalities)}), "
                    f"got {chosen}"
                )
            ordered = tuple(m for m in spec.modalities if m in chosen)
            object.__setattr__(self, "modalities", None if ordered == spec.modalities else ordered)
        object.__setattr__(self, "options", _mapping(self.options, "data.options"))

    @property
    def spec(self) -> Any:
        """The registered :class:`datasets.registry.DatasetSpec`."""
        from mwam_harness.datasets.registry import dataset_spec

        return dataset_spec(self.dataset)

    @property
    def used_modalities(self) -> tuple[str, ...]:
        return self.modalities or self.spec.modalities

    def locate(self, generate: bool = True) -> Path:
        """The data root: ``root``, or the synthetic stand-in of preset ``synthetic`` (written when missing and
        ``generate``). ConfigError when neither is set."""
        if self.root is not None:
            return Path(self.root)
        if self.synthetic is None:
            raise ConfigError(f"data: no root for {self.dataset} (set data.root, --data-root or data.synthetic)")
        from reproduce.paths import synthetic_dir

        directory = synthetic_dir(self.dataset, self.synthetic)
        if generate:
            return self.spec.write_synthetic(directory, **self.spec.preset(self.synthetic).generator)
        return directory

    def fingerprint(self) -> str:
        """The fingerprint of the data (its split files, and a synthetic set's parameters). Within
        :func:`synthetic_data_not_kept` (``--dry-run``) a synthetic set not generated yet is fingerprinted from a
        scratch copy that is deleted at once: the same fingerprint, no file left behind."""
        if self.root is None and self.synthetic is not None and _NOTHING_KEPT.get():
            if not self.spec.is_synthetic(self.locate(generate=False)):
                return scratch_synthetic(self.dataset, self.synthetic)[0]
        return _fingerprint(self.dataset, self.locate())

    def identity(self) -> dict[str, Any]:
        values = without_defaults(self)
        for name in ("root", "synthetic"):
            values.pop(name, None)
        values["fingerprint"] = self.fingerprint()
        return values


_FINGERPRINTS: dict[tuple, str] = {}
_NOTHING_KEPT: ContextVar[bool] = ContextVar("synthetic_data_not_kept", default=False)
_SCRATCH: dict[tuple[str, str, str], tuple[str, dict[str, int]]] = {}


@contextlib.contextmanager
def synthetic_data_not_kept() -> Iterator[None]:
    """Within the block, run keys of synthetic presets whose data are not generated yet come from a scratch copy
    (:func:`scratch_synthetic`) instead of the results root's cache: ``--dry-run`` writes nothing."""
    token = _NOTHING_KEPT.set(True)
    try:
        yield
    finally:
        _NOTHING_KEPT.reset(token)


def scratch_synthetic(dataset: str, preset: str) -> tuple[str, dict[str, int]]:
    """``(fingerprint, {split: listed samples})`` of preset ``preset``'s synthetic ``dataset``, generated in a
    temporary directory that is deleted before returning (once per process and generator setting). The fingerprint
    hashes the list files and the generator's marker, which name no absolute path: the same as the cached copy's."""
    from mwam_harness.datasets.registry import dataset_spec

    spec = dataset_spec(dataset)
    generator = spec.preset(preset).generator
    cache_key = (dataset, preset, json.dumps(plain(generator), sort_keys=True, default=str))
    if cache_key not in _SCRATCH:
        with tempfile.TemporaryDirectory(prefix="mwam-dry-run-") as scratch:
            root = spec.write_synthetic(Path(scratch) / f"{dataset}_{preset}", **generator)
            counts = {split: spec.listed_samples(root, split) for split in spec.splits}
            _SCRATCH[cache_key] = (spec.fingerprint(root), counts)
    return _SCRATCH[cache_key]


def _fingerprint(dataset: str, root: Path) -> str:
    """Cached per (data set, root, state of its split files): large list files are hashed once per process."""
    from mwam_harness.datasets.registry import SYNTHETIC_MARKER, dataset_spec

    spec = dataset_spec(dataset)
    stamps = []
    for path in [*spec.split_files(root), root / SYNTHETIC_MARKER]:
        stat = path.stat() if path.is_file() else None
        stamps.append((str(path.resolve()), stat.st_mtime_ns if stat else None, stat.st_size if stat else None))
    cache_key = (dataset, *stamps)
    if cache_key not in _FINGERPRINTS:
        _FINGERPRINTS[cache_key] = spec.fingerprint(root)
    return _FINGERPRINTS[cache_key]


@dataclass(frozen=True)
class HostConfig:
    """A registered host (``models.build(name, **options)``); the options are checked by the host when built."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"host.name must be a host's registered name, got {self.name!r}")
        object.__setattr__(self, "options", plain(_mapping(self.options, "host.options")))


@dataclass(frozen=True)
class OptimConfig:
    """The optimiser: ``sgd`` (momentum, nesterov), ``adam`` / ``adamw`` (betas, eps, amsgrad); defaults are the
    paper's CASIA-SURF SGD (Sec. 5.2 / A.3: lr 1e-3, momentum 0.9, weight decay 5e-4, Nesterov)."""

    name: str = "sgd"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    amsgrad: bool = False

    def __post_init__(self) -> None:
        _choice(self.name, tuple(OPTIMIZER_FIELDS), "optim.name")
        _number(self.lr, "optim.lr", positive=True)
        if _number(self.weight_decay, "optim.weight_decay") < 0 or _number(self.momentum, "optim.momentum") < 0:
            raise ConfigError("optim.weight_decay and optim.momentum must be >= 0")
        betas = tuple(float(b) for b in self.betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", betas)
        _number(self.eps, "optim.eps", positive=True)
        for name in ("nesterov", "amsgrad"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"optim.{name} must be true or false")
        _only_used(self, "optim")


@dataclass(frozen=True)
class ScheduleConfig:
    """The learning-rate schedule (``reproduce.runs.schedules``), stepped per ``epoch`` or per ``iteration``.

    preset: a named schedule of the run's data set (``DatasetSpec.schedules``, e.g. CASIA-SURF's ``paper`` and
        ``released``), resolved for the run's host when the run configuration is built: the preset's fields,
        then the fields given here on top. The MMANet teacher of a student with a preset gets the preset's
        schedule for the teacher's host.
    skip_epochs: the first epochs train no batch (the authors' CASIA-SURF loops: ``if epoch == 0: continue``);
        their end of epoch (validation, the method's hook, the scheduler step) still runs.
    Defaults: A.3's SF-MD schedule, "divided by 10 every 30 epochs" (milestones 30, 60, 90), no warm-up.
    """

    name: str = "step"
    interval: str = "epoch"
    preset: str | None = None
    skip_epochs: int = 0
    warmup_start: int = 0
    warmup_epochs: int = 0
    milestones: tuple[int, ...] = (30, 60, 90)
    gamma: float = 0.1
    power: float = 0.9
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"
    cycle_momentum: bool = False
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    def __post_init__(self) -> None:
        _choice(self.name, tuple(SCHEDULE_FIELDS), "schedule.name")
        _choice(self.interval, INTERVALS, "schedule.interval")
        if self.preset is not None and (not isinstance(self.preset, str) or not self.preset):
            raise ConfigError(f"schedule.preset must name a schedule preset of the data set, got {self.preset!r}")
        _integer(self.skip_epochs, "schedule.skip_epochs", 0)
        _integer(self.warmup_start, "schedule.warmup_start", 0)
        _integer(self.warmup_epochs, "schedule.warmup_epochs", 0)
        milestones = tuple(_integer(m, "schedule.milestones[]", 0) for m in self.milestones)
        if list(milestones) != sorted(milestones):
            raise ConfigError(f"schedule.milestones must be increasing, got {list(milestones)}")
        object.__setattr__(self, "milestones", milestones)
        for name in ("gamma", "power", "div_factor", "final_div_factor"):
            _number(getattr(self, name), f"schedule.{name}", positive=True)
        if not 0 < _number(self.pct_start, "schedule.pct_start") < 1:
            raise ConfigError(f"schedule.pct_start must lie in (0, 1), got {self.pct_start}")
        _choice(self.anneal, ANNEALS, "schedule.anneal")
        if not isinstance(self.cycle_momentum, bool):
            raise ConfigError(f"schedule.cycle_momentum must be true or false, got {self.cycle_momentum!r}")
        if not 0 <= _number(self.base_momentum, "schedule.base_momentum") <= self.max_momentum < 1:
            raise ConfigError("schedule: need 0 <= base_momentum <= max_momentum < 1")
        _only_used(self, "schedule")

    def used_fields(self) -> dict[str, Any]:
        """The settings this kind of schedule reads (plus ``name``, ``interval``, ``preset``, ``skip_epochs``), as
        plain data: the resolved schedule that ``--dry-run``, W&B and the run's record show."""
        kinds, always = KINDED_SECTIONS["schedule"]
        used = set(kinds[self.name]) | set(always)
        return {k: v for k, v in plain(self).items() if k in used}

    @property
    def explicit(self) -> dict[str, Any]:
        """The settings given on top of the preset (all non-default settings when there is no preset)."""
        given = getattr(self, "_explicit", None)
        if given is not None:
            return dict(given)
        return {k: v for k, v in without_defaults(self).items() if k != "preset"}

    def resolved(self, dataset: Any, host: str) -> ScheduleConfig:
        """This schedule with its ``preset`` resolved for ``host`` on ``dataset`` (a ``DatasetSpec``); itself when
        it names no preset."""
        if self.preset is None:
            return self
        explicit = self.explicit
        try:
            fields = dict(dataset.schedule_preset(self.preset, host))
        except ValueError as error:
            raise ConfigError(f"schedule.preset: {error}") from None
        if "name" in explicit and explicit["name"] != fields.get("name", "step"):
            return _section(ScheduleConfig, explicit, "schedule")  # another kind of schedule: the preset is dropped
        resolved = _section(ScheduleConfig, {**fields, **explicit, "preset": self.preset}, "schedule")
        object.__setattr__(resolved, "_explicit", explicit)
        return resolved


@dataclass(frozen=True)
class TrainConfig:
    """How long and how: ``batch_size`` is the global batch (split over the processes of a DDP run);
    ``iterations_per_epoch`` a fixed count (RFNet: 150, drawing from successive shuffles) or None for one pass
    (incomplete last batch dropped, as the authors). ``amp``: ``off`` (default) = fp32, as the authors trained,
    with PyTorch's default TF32 behaviour (TF32 convolutions on Ampere+ GPUs, fp32 matmuls); ``bf16`` / ``fp16``
    autocast as a speed option; ``auto`` = bf16 on CUDA, off on CPU. The run's record says which it used
    (``precision``, ``tf32``). ``channels_last``: on CUDA when None (4-D inputs only); ``deterministic``: torch's
    deterministic algorithms.

    ``batchnorm_shards``: over how many shards of the global batch BatchNorm computes its statistics. 1 (the
    default, every key from before this setting) when the batch is normalised whole: one process, or DDP on CUDA
    with SyncBatchNorm. N when N processes each normalise their own shard (DDP without SyncBatchNorm: CPU process
    groups, or ``runtime.sync_batchnorm: false``): such a run trains other numbers than one process does, so it is
    another run with its own key. Set by :meth:`RunConfig.for_processes` for ``--nproc N`` (and under torchrun);
    the trainer's preflight refuses a run whose process layout contradicts it (for a host with BatchNorm)."""

    epochs: int = 100
    batch_size: int = 64
    iterations_per_epoch: int | None = None
    amp: str = "off"
    channels_last: bool | None = None
    deterministic: bool = False
    batchnorm_shards: int = 1

    def __post_init__(self) -> None:
        _integer(self.epochs, "train.epochs", 1)
        _integer(self.batch_size, "train.batch_size", 1)
        if self.iterations_per_epoch is not None:
            _integer(self.iterations_per_epoch, "train.iterations_per_epoch", 1)
        if self.amp is False:  # YAML 1.1 reads a bare `off` as false
            object.__setattr__(self, "amp", "off")
        _choice(self.amp, AMP_MODES, "train.amp")
        if self.channels_last is not None and not isinstance(self.channels_last, bool):
            raise ConfigError("train.channels_last must be true, false or null")
        if not isinstance(self.deterministic, bool):
            raise ConfigError("train.deterministic must be true or false")
        _integer(self.batchnorm_shards, "train.batchnorm_shards", 1)


@dataclass(frozen=True)
class EvalConfig:
    """The final evaluation: every subset of the used modalities on ``split``, ``batch_size`` samples a batch, of
    the weights ``select`` chooses.

    select: ``last`` -- the last epoch's weights; ``best_val`` -- the weights of the epoch after ``select_after``
        with the best ``select_metric`` on ``select_split`` (``select_mode``: ``max`` or ``min``; ties keep the
        earlier epoch), the authors' CASIA-SURF rule (``accuracy_test > accuracy_best and epoch > 30`` on
        ``val_private_list.txt``); ``epoch:N`` -- the weights after epoch ``N`` (0-based, as the trainer counts;
        ``N < train.epochs``), e.g. the authors' NYUv2 test script loading their epoch-298 checkpoint of 300.
    select_inputs: what that validation feeds the host: ``full`` (every modality) or ``training_dropout`` (the
        host's own training-time modality dropout, drawn from a generator of its own: the authors' ``modality_drop``
        draws random subsets in eval mode too, so their SF-MD / MMANet validation ran under random dropout, their SF
        on full inputs). The ``select_*`` settings mean nothing unless ``select: best_val`` and are then dropped.
    """

    split: str = "test"
    batch_size: int = 64
    select: str = "last"
    select_metric: str = "acc"
    select_mode: str = "max"
    select_after: int = 30
    select_split: str = "val"
    select_inputs: str = "full"

    def __post_init__(self) -> None:
        if not isinstance(self.split, str) or not self.split:
            raise ConfigError(f"eval.split must name a split, got {self.split!r}")
        _integer(self.batch_size, "eval.batch_size", 1)
        if self.select not in SELECTIONS[:-1] and self.fixed_epoch is None:
            raise ConfigError(
                f"eval.select must be last, best_val or epoch:N (N an epoch, 0-based, no leading zeros); "
                f"got {self.select!r}"
            )
        _choice(self.select_mode, ("max", "min"), "eval.select_mode")
        _choice(self.select_inputs, SELECTION_INPUTS, "eval.select_inputs")
        _integer(self.select_after, "eval.select_after", -1)
        for name in ("select_metric", "select_split"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"eval.{name} must be a non-empty string, got {getattr(self, name)!r}")
        if self.select != "best_val":
            for f in dataclasses.fields(self):
                if f.name.startswith("select_"):
                    object.__setattr__(self, f.name, f.default)

    @property
    def fixed_epoch(self) -> int | None:
        """``N`` of ``select: epoch:N``; None for ``last`` and ``best_val``."""
        match = _EPOCH_SELECTION.fullmatch(self.select) if isinstance(self.select, str) else None
        return int(match.group(1)) if match else None


def _plugin_options(name: Any, options: Any, kind: str, label: str) -> dict[str, Any]:
    """``options`` of the plug-in ``name`` (which must be of ``kind``) validated against its options class and
    without the entries equal to their defaults; ConfigError naming ``label`` otherwise."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{label}.name must name a registered {kind} plug-in, got {name!r}")
    if name not in PLUGINS:
        known = ", ".join(n for n, c in PLUGINS.items() if c.kind == kind)
        raise ConfigError(f"{label}.name: unknown {kind} {name!r}; known: {known}")
    cls = PLUGINS.get(name)
    if cls.kind != kind:
        known = ", ".join(n for n, c in PLUGINS.items() if c.kind == kind)
        where = {"method": "method.name", "plugin": "plugins", "builtin": "its own section (mwam / sde)"}[cls.kind]
        raise ConfigError(f"{label}: {name!r} is a {cls.kind} plug-in, set by {where}; the {kind} plug-ins: {known}")
    options = _mapping(options, f"{label}.options")
    if cls.options_class is None:
        if options:
            raise ConfigError(f"{kind} {name!r} takes no options, got {sorted(options)}")
        return {}
    return _validated_options(cls.options_class, options, f"{label}.options of {name!r}")


def _resolved(name: str, options: dict[str, Any]) -> Any:
    cls = PLUGINS.get(name).options_class
    return None if cls is None else cls(**options)


@dataclass(frozen=True)
class MethodConfig:
    """The training method (a plug-in of kind ``method``: ``standard``, ``mmanet`` ...) and its options, validated
    against the plug-in's options dataclass; options equal to their defaults are dropped."""

    name: str = "standard"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _plugin_options(self.name, self.options, "method", "method"))

    def resolved_options(self) -> Any:
        """The method's options dataclass with these options (None for a method without options)."""
        return _resolved(self.name, self.options)


@dataclass(frozen=True)
class PluginConfig:
    """One plug-in a run lists (``plugins: [{name: ..., options: {...}}]``): a plug-in of kind ``plugin`` (a
    balancing method, ``modality_gradient_scale``, one's own) and its options (defaults dropped)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _plugin_options(self.name, self.options, "plugin", "plugins[]"))

    def resolved_options(self) -> Any:
        return _resolved(self.name, self.options)


def _plugins(values: Any, source: str) -> tuple[PluginConfig, ...]:
    """The ``plugins`` list: each entry a mapping (``{name, options}``) or a plug-in's name; each plug-in once."""
    if isinstance(values, str | Mapping) or not isinstance(values, list | tuple):
        raise ConfigError(f"{source}: plugins must be a list of {{name: ..., options: {{...}}}}, got {values!r}")
    out = []
    for value in values:
        if isinstance(value, PluginConfig):
            out.append(value)
        elif isinstance(value, str):
            out.append(PluginConfig(value))
        else:
            out.append(_section(PluginConfig, value, f"{source}: plugins[]"))
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: plugins lists {names}; each plug-in at most once")
    return tuple(out)


@dataclass(frozen=True)
class MWAMSettings:
    """MWAM: ``off`` (no MWAM at all), ``none`` (measure FRM / T / K and log them, change nothing), ``grad``,
    ``loss`` or ``hybrid``; ``options`` override ``mwam.MWAMConfig`` (defaults dropped)."""

    intervention: str = "none"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.intervention is False:  # YAML 1.1 reads a bare `off` as false
            object.__setattr__(self, "intervention", "off")
        _choice(self.intervention, INTERVENTIONS, "mwam.intervention")
        options = _mapping(self.options, "mwam.options")
        if self.intervention == "off" and options:
            raise ConfigError("mwam.options given but mwam.intervention is off")
        from mwam.config import MWAMConfig

        object.__setattr__(self, "options", _validated_options(MWAMConfig, options, "mwam.options", ("intervention",)))


@dataclass(frozen=True)
class SDESettings:
    """Spectral Disentanglement and Enhancement as a variant (``enabled``); ``options`` override
    ``sde.SDEConfig`` (defaults dropped; the seed defaults to the run's)."""

    enabled: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"sde.enabled must be true or false, got {self.enabled!r}")
        options = _mapping(self.options, "sde.options")
        if options and not self.enabled:
            raise ConfigError("sde.options given but sde.enabled is false")
        from sde.config import SDEConfig

        object.__setattr__(self, "options", _validated_options(SDEConfig, options, "sde.options"))


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "host": HostConfig,
    "optim": OptimConfig,
    "schedule": ScheduleConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "method": MethodConfig,
    "mwam": MWAMSettings,
    "sde": SDESettings,
}


@dataclass(frozen=True)
class RunConfig:
    """One training + evaluation of one host variant (see the module docstring). ``task`` overrides the data set's
    task kind (None: the data set's)."""

    data: DataConfig
    host: HostConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    plugins: tuple[PluginConfig, ...] = ()
    mwam: MWAMSettings = field(default_factory=MWAMSettings)
    sde: SDESettings = field(default_factory=SDESettings)
    seed: int = 0
    task: str | None = None

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        _integer(self.seed, "seed", 0)
        object.__setattr__(self, "plugins", _plugins(self.plugins, "plugins"))
        if self.task is not None and not isinstance(self.task, str):
            raise ConfigError(f"task must name a task kind, got {self.task!r}")
        object.__setattr__(self, "schedule", self.schedule.resolved(self.data.spec, self.host.name))
        epochs = self.train.epochs
        if self.schedule.skip_epochs >= epochs:
            raise ConfigError(f"schedule.skip_epochs={self.schedule.skip_epochs} skips all {epochs} epochs")
        if self.eval.select == "best_val" and not self.eval.select_after < epochs - 1:
            raise ConfigError(
                f"eval.select: best_val picks among the epochs after select_after={self.eval.select_after}; "
                f"with train.epochs={epochs} (epochs 0 .. {epochs - 1}) none is left: lower eval.select_after"
            )
        if self.eval.fixed_epoch is not None and not self.eval.fixed_epoch < epochs:
            raise ConfigError(
                f"eval.select: {self.eval.select} names an epoch the run never reaches: train.epochs={epochs} trains "
                f"epochs 0 .. {epochs - 1} (0-based)"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> RunConfig:
        """Build from nested data (a parsed YAML file); unknown keys at any level are errors naming them."""
        values = _mapping(values, source)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown keys {unknown}; known keys: {sorted(known)}")
        for required in ("data", "host"):
            if required not in values:
                raise ConfigError(f"{source}: missing section {required!r}")
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            section = SECTIONS.get(name)
            if name == "plugins":
                kwargs[name] = _plugins(value, source)
            else:
                kwargs[name] = value if section is None else _section(section, value, f"{source}: {name}")
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        """A run configuration file (a top-level ``runtime:`` mapping, if any, is read by ``Runtime.from_yaml``)."""
        return cls.from_dict(read_yaml(path, drop=("runtime",)), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Every setting, resolved (the form ``config.yaml`` beside each run holds); settings a chosen optimiser
        or schedule does not read are left out."""
        values = plain(self)
        for section, (kinds, always) in KINDED_SECTIONS.items():
            values[section] = _used_fields(values[section], kinds[values[section]["name"]], always)
        if self.schedule.preset is not None:  # the preset's name and what was given on top (resolved again on load)
            values["schedule"] = {"preset": self.schedule.preset, **plain(self.schedule.explicit)}
        if self.eval.select != "best_val":
            values["eval"] = {k: v for k, v in values["eval"].items() if not k.startswith("select_")}
        return values

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "overrides") -> RunConfig:
        """A copy with nested ``overrides`` merged in (``{"train": {"batch_size": 4}}``, :func:`merge_settings`),
        validated again."""
        return RunConfig.from_dict(merge_settings(self.to_dict(), overrides), source=source)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def for_processes(self, nproc: int, batchnorm_synchronised: bool) -> RunConfig:
        """This run as trained in ``nproc`` processes: ``train.batchnorm_shards`` is ``nproc`` where each process
        normalises BatchNorm over its own shard (``batchnorm_synchronised`` false: DDP without SyncBatchNorm, see
        ``Runtime.batchnorm_synchronised``), else 1. One process, or synchronised BatchNorm, keeps the run (and its
        key) as it is; the result is the same when applied twice."""
        _integer(nproc, "nproc", 1)
        shards = 1 if nproc == 1 or batchnorm_synchronised else nproc
        if shards == self.train.batchnorm_shards:
            return self
        return self.replace(train=dataclasses.replace(self.train, batchnorm_shards=shards))

    # ------------------------------------------------------------------ identity
    def identity(self) -> dict[str, Any]:
        """What the key hashes: every setting that differs from its default (sections whose settings all are
        default disappear), the data set by name and fingerprint instead of its location, and the schema number."""
        values: dict[str, Any] = {"schema": SCHEMA}
        for name, value in without_defaults(self).items():
            values[name] = self.data.identity() if name == "data" else value
        if "schedule" in values:  # the resolved schedule, not the preset's name (the same schedule is the same run)
            values["schedule"].pop("preset", None)
            if not values["schedule"]:
                del values["schedule"]
        return values

    @property
    def key(self) -> str:
        """A short stable hash of :meth:`identity`: the run's name in the registry."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ derived
    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the run uses, in the data set's order."""
        return self.data.used_modalities

    @property
    def task_name(self) -> str:
        return self.task or self.data.spec.task

    @property
    def variant(self) -> str:
        """A short name of the host variant (``sf_md+ogm_ge+mwam-hybrid+sde``), for records and logs."""
        name = "+".join([self.host.name, *(p.name for p in self.plugins)])
        if self.mwam.intervention not in ("none", "off"):
            name = f"{name}+mwam-{self.mwam.intervention}"
        return f"{name}+sde" if self.sde.enabled else name


#: Sections whose ``name`` selects a kind with its own fields: (fields per kind, fields every kind reads).
KINDED_SECTIONS: dict[str, tuple[dict[str, tuple[str, ...]], tuple[str, ...]]] = {
    "optim": (OPTIMIZER_FIELDS, ("name", "lr", "weight_decay")),
    "schedule": (SCHEDULE_FIELDS, ("name", "interval", "preset", "skip_epochs")),
}


def merge_settings(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Nested ``overrides`` merged over nested ``base`` settings. Where an override names another host or method,
    the base's options of the old one are dropped; where it switches the optimiser or the schedule to another kind
    (``schedule.name: poly`` over a ``step`` schedule), the base's settings the new kind does not read are dropped
    (the override's own are kept, and validated)."""
    from reproduce.runs.overrides import deep_merge

    merged = deep_merge(base, overrides)
    for section in ("host", "method", *KINDED_SECTIONS):
        new, old = overrides.get(section), base.get(section)
        switched = (
            isinstance(new, Mapping)
            and isinstance(old, Mapping)
            and new.get("name", old.get("name")) != old.get("name")
        )
        if not switched:
            continue
        if section in KINDED_SECTIONS:
            kinds, always = KINDED_SECTIONS[section]
            used = set(kinds.get(new["name"], ())) | set(always) | set(new)
        else:
            used = {"name", *new}
        merged[section] = {k: v for k, v in merged[section].items() if k in used}
        if "options" in new:
            merged[section]["options"] = dict(new["options"])
    return merged


def _used_fields(values: dict[str, Any], used: tuple[str, ...], always: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in used or k in always}


def _section(cls: type, value: Any, source: str) -> Any:
    values = _mapping(value, source)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}; known keys: {sorted(known)}")
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from None


def _unique_key_loader() -> type:
    """A ``yaml.SafeLoader`` whose mappings refuse a key given twice (YAML would keep the last value silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            if isinstance(node, yaml.MappingNode):  # the mapping's own keys (a merged ``<<: *base`` may be overridden)
                seen: dict[Any, Any] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.get(key)
                    except TypeError:  # an unhashable key: the base class reports it
                        continue
                    if first is not None:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"duplicated key {key!r} on line {key_node.start_mark.line + 1} (first given on line "
                            f"{first.start_mark.line + 1}): YAML would silently keep the last value; remove one",
                            key_node.start_mark,
                        )
                    seen[key] = key_node
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def load_yaml_text(text: str) -> Any:
    """``yaml.safe_load`` of ``text``, except that a mapping key given twice is a ``yaml.YAMLError`` naming the key
    and both lines."""
    import yaml

    return yaml.load(text, Loader=_unique_key_loader())  # a SafeLoader subclass


def read_yaml(path: str | Path, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A YAML mapping from ``path`` (ConfigError naming the file otherwise: also for a key given twice in one
    mapping, with the key and its lines), without the top-level keys ``drop``."""
    import yaml

    path = Path(path)
    try:
        values = load_yaml_text(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error})") from None
    except yaml.constructor.ConstructorError as error:
        if error.problem and error.problem.startswith("duplicated key"):
            raise ConfigError(f"{path}: {error.problem}") from None
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of run settings")
    return {k: v for k, v in values.items() if k not in drop}
