"""One training + evaluation of one host variant, described by a validated, hashable configuration."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

INTERVENTIONS = ("none", "grad", "loss", "hybrid")
AMP_MODES = ("auto", "off", "bf16", "fp16")
# Fields that say where a run is shown or how it is executed, not what is trained: not part of the hash.
PRESENTATION_FIELDS = ("table", "column", "num_workers", "device", "log_every", "progress", "val_every")


def options_without_defaults(
    config_class: type, options: dict[str, Any], label: str, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``options`` validated against the dataclass ``config_class`` (unknown names and bad values are errors,
    with the class's own message), returned without the entries equal to its defaults, so that spelling out a
    default does not change a run's hash. Values are the validated ones, tuples as lists (their JSON form)."""
    known = {f.name for f in dataclasses.fields(config_class)} - set(exclude)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"{label}: unknown options {unknown}; known: {sorted(known)}")
    checked, defaults = config_class(**options), config_class()
    out = {}
    for key in sorted(options):
        value = getattr(checked, key)
        if value != getattr(defaults, key):
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run. Unknown keys are errors (``from_dict``).

    host / host_options: a registered host (``models.build(host, **host_options)``).
    dataset / data_root / synthetic: the data set key (``reproduce.subsets``), its root, and whether it is synthetic.
    data_options: keyword arguments of the data set (e.g. ``resize`` / ``crop`` for CASIA-SURF; default: the
        authors' preprocessing).
    epochs, batch_size, lr, momentum, weight_decay, nesterov: SGD as Sec. 5.2 / A.3 (batch 64, 1e-3, 0.9, 5e-4).
    warmup_epochs, milestones, lr_gamma: linear warm-up, then the learning rate times ``lr_gamma`` at each
        milestone epoch (Sec. A.3: SF-MD+MWAM divides by 10 every 30 epochs).
    mwam / mwam_options: the intervention (``none`` still measures FRM / T / K for logging) and
        ``mwam.MWAMConfig`` overrides (``window``, ``rule``, ``alpha`` ...). Options equal to MWAM's defaults are
        dropped, so ``{"window": 2}`` and ``{}`` are the same run.
    sde / sde_options: Spectral Disentanglement and Enhancement as a variant (``reproduce.engine.sde_variant``):
        enhancement of each branch's pooled embedding during training and the dual-domain loss on every pair of
        modalities present in a sample; ``sde.SDEConfig`` overrides (defaults dropped, as for MWAM).
    trainer / trainer_options: the training method (``reproduce.engine.trainers``): ``standard`` (the task's
        loss) or ``mmanet`` (teacher distillation + weak-combination auxiliary loss, options
        ``reproduce.engine.mmanet.MMANetOptions``).
    steps_per_epoch: cap on training steps per epoch (smoke runs); None = the whole split.
    eval_split, eval_batch_size: the split every subset is evaluated on, at the end of training.
    val_every: evaluate every subset on the validation split every this many epochs (0: never), for the
        per-epoch curves in W&B and the history; it draws no randomness, so it does not change training.
    amp: ``auto`` = bf16 autocast on CUDA, off on CPU. channels_last: on CUDA when None.
    deterministic: torch deterministic algorithms (exact resume on CPU is tested with it).
    """

    host: str
    dataset: str
    data_root: str
    synthetic: bool
    table: int | None = None
    column: str = ""
    host_options: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    warmup_epochs: int = 5
    milestones: tuple[int, ...] = (30, 60, 90)
    lr_gamma: float = 0.1
    mwam: str = "none"
    mwam_options: dict[str, Any] = field(default_factory=dict)
    sde: bool = False
    sde_options: dict[str, Any] = field(default_factory=dict)
    trainer: str = "standard"
    trainer_options: dict[str, Any] = field(default_factory=dict)
    steps_per_epoch: int | None = None
    eval_split: str = "test"
    eval_batch_size: int = 64
    val_every: int = 1
    seed: int = 0
    amp: str = "auto"
    channels_last: bool | None = None
    deterministic: bool = False
    num_workers: int = 0
    device: str = "auto"
    log_every: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mwam not in INTERVENTIONS:
            raise ValueError(f"mwam must be one of {INTERVENTIONS}, got {self.mwam!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        for name in ("epochs", "batch_size", "eval_batch_size", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.val_every, int) or self.val_every < 0:
            raise ValueError(f"val_every must be an integer >= 0, got {self.val_every!r}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1 or None, got {self.steps_per_epoch}")
        if self.warmup_epochs < 0 or self.lr <= 0:
            raise ValueError("warmup_epochs must be >= 0 and lr > 0")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing, got {self.milestones}")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        if self.mwam_options:
            from mwam import MWAMConfig

            options = options_without_defaults(MWAMConfig, self.mwam_options, "mwam_options", ("intervention",))
            object.__setattr__(self, "mwam_options", options)
        if not isinstance(self.sde, bool):
            raise ValueError(f"sde must be true or false, got {self.sde!r}")
        if self.sde_options:
            if not self.sde:
                raise ValueError("sde_options given but sde is false")
            from sde import SDEConfig

            object.__setattr__(
                self, "sde_options", options_without_defaults(SDEConfig, self.sde_options, "sde_options")
            )
        from reproduce.engine.trainers import check_trainer

        object.__setattr__(self, "trainer_options", check_trainer(self.trainer, self.trainer_options))

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of run settings")
        return cls.from_dict(values, source=str(path))

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["milestones"] = list(self.milestones)
        return values

    def identity(self) -> dict[str, Any]:
        """The fields that determine the trained model and its numbers (what the hash covers)."""
        values = self.to_dict()
        for name in PRESENTATION_FIELDS:
            values.pop(name)
        values["data_root"] = str(Path(self.data_root).expanduser().resolve())
        return values

    @property
    def key(self) -> str:
        """A short stable hash of :meth:`identity`: the run's name in the registry."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
