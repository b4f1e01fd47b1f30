"""The ultralytics training recipe (method ``ultralytics``): how the two-stream YOLOv8n of Table 12 is trained.

The run's own sections give what they can say -- ``train.epochs`` / ``batch_size`` / ``amp`` / ``deterministic``,
``optim`` (SGD, lr0, momentum, weight decay), ``seed``, ``data.options.imgsz`` -- and this method's options give the
rest of ultralytics' recipe (its warm-up, linear schedule to ``lrf``, mosaic and its closing, nominal batch), with
``extra`` for any other argument of ultralytics' ``default.yaml``. The ultralytics runner (``reproduce/yolo``)
turns both into ``YOLO(...).train`` arguments; the engine's trainer never runs this method (``setup`` says so).

MWAM in ultralytics' step (``mwam_edit``): ``optimizer_step`` (default, as the issue and Alg. 1 place it) multiplies
the accumulated branch gradients by K after ``scaler.unscale_`` and before the global ``clip_grad_norm_(10)``;
ultralytics accumulates ``nbs / batch`` (64 / 16 = 4) mini-batches per optimiser step, and each is measured, so the
K applied is the mean of their K's (exact when nothing is accumulated). ``backward`` scales each mini-batch's
gradients by its own K through MWAM's tensor hooks instead (exact under accumulation). ``mwam_clip``: ``after_scaling``
(default) clips the scaled gradients -- the clip then rescales every parameter uniformly, keeping K's ratio between
the branches and the rest but not its absolute size whenever the norm exceeds 10 -- ``before_scaling`` clips first
and applies K to the clipped gradients (K exact, the norm bound no longer guaranteed).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from reproduce.methods.base import Plugin, register_method

MWAM_EDITS = ("optimizer_step", "backward")
MWAM_CLIPS = ("after_scaling", "before_scaling")
#: Ultralytics arguments the run configuration owns (set them there, not in ``extra``).
OWNED_BY_RUN = {
    "epochs": "train.epochs",
    "batch": "train.batch_size",
    "amp": "train.amp",
    "deterministic": "train.deterministic",
    "seed": "seed",
    "optimizer": "optim.name",
    "lr0": "optim.lr",
    "momentum": "optim.momentum",
    "weight_decay": "optim.weight_decay",
    "imgsz": "data.options.imgsz",
    "data": "data.root / data.synthetic",
    "model": "host.options.cfg",
    "device": "--device (runtime)",
    "workers": "--workers (runtime)",
    "resume": "--resume",
    "project": "the results root",
    "name": "the run key",
}


@lru_cache(maxsize=1)
def ultralytics_arguments() -> frozenset[str]:
    """The argument names of the installed ultralytics' ``cfg/default.yaml`` (read without importing ultralytics)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the ultralytics recipe needs the ultralytics package (pip install -r requirements.txt)"
        )
    import yaml

    default = Path(spec.origin).parent / "cfg" / "default.yaml"
    return frozenset(yaml.safe_load(default.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class UltralyticsOptions:
    """Ultralytics' recipe beyond the run's sections; defaults are ultralytics' own (``cfg/default.yaml``).

    close_mosaic: mosaic is switched off for the last this many epochs (the fork's modified default.yaml: 0).
    warmup_epochs, warmup_momentum, warmup_bias_lr: ultralytics' linear warm-up. lrf: the final learning rate as a
    fraction of lr0 (linear decay, ``cos_lr`` for cosine). nbs: the nominal batch (gradients are accumulated over
    ``nbs / batch`` mini-batches, and weight decay scaled by ``batch * accumulate / nbs``). mosaic: its probability.
    val: validate on the val split after every epoch (selects ``best.pt``; off: the last epoch's weights).
    patience: early-stopping patience in epochs. plots: ultralytics' plots (label statistics, training batches,
    validation curves and mosaics; the table's Fig. 6 / 7 are drawn either way). extra: any other ultralytics
    train argument (``{"mixup": 0.1}``).
    mwam_edit, mwam_clip: where MWAM edits ultralytics' step (module docstring).
    """

    close_mosaic: int = 10
    warmup_epochs: float = 3.0
    warmup_momentum: float = 0.8
    warmup_bias_lr: float = 0.1
    lrf: float = 0.01
    cos_lr: bool = False
    nbs: int = 64
    mosaic: float = 1.0
    val: bool = True
    patience: int = 100
    plots: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    mwam_edit: str = "optimizer_step"
    mwam_clip: str = "after_scaling"

    def __post_init__(self) -> None:
        if self.mwam_edit not in MWAM_EDITS:
            raise ValueError(f"mwam_edit must be one of {MWAM_EDITS}, got {self.mwam_edit!r}")
        if self.mwam_clip not in MWAM_CLIPS:
            raise ValueError(f"mwam_clip must be one of {MWAM_CLIPS}, got {self.mwam_clip!r}")
        if self.close_mosaic < 0 or self.nbs < 1 or self.patience < 1:
            raise ValueError("close_mosaic must be >= 0, nbs and patience >= 1")
        if not 0.0 < self.lrf <= 1.0 or self.warmup_epochs < 0 or not 0.0 <= self.mosaic <= 1.0:
            raise ValueError("lrf must be in (0, 1], warmup_epochs >= 0 and mosaic in [0, 1]")
        if not isinstance(self.extra, dict):
            raise ValueError(f"extra must be a mapping of ultralytics arguments, got {type(self.extra).__name__}")
        owned = sorted(set(self.extra) & set(OWNED_BY_RUN))
        if owned:
            where = ", ".join(f"{k} -> {OWNED_BY_RUN[k]}" for k in owned)
            raise ValueError(f"extra may not set {owned}: the run configuration owns them ({where})")
        named = sorted(set(self.extra) & {f.name for f in fields(self)})
        if named:
            raise ValueError(f"extra repeats the options {named}; set them directly")
        unknown = sorted(set(self.extra) - ultralytics_arguments())
        if unknown:
            raise ValueError(f"extra: {unknown} are not arguments of the installed ultralytics (cfg/default.yaml)")

    def lr_per_epoch(self, lr0: float, epochs: int) -> list[float]:
        """Ultralytics' per-epoch learning rate (its ``LambdaLR``, stepped at the start of each epoch): linear from
        lr0 to ``lrf * lr0``, or cosine with ``cos_lr``; the warm-up ramps the first ``warmup_epochs`` epochs'
        iterations from 0 (the bias group from ``warmup_bias_lr``) up to these values."""
        if self.cos_lr:
            factors = [((1 - math.cos(e * math.pi / epochs)) / 2) * (self.lrf - 1) + 1 for e in range(epochs)]
        else:
            factors = [max(1 - e / epochs, 0) * (1.0 - self.lrf) + self.lrf for e in range(epochs)]
        return [lr0 * f for f in factors]

    def train_arguments(self) -> dict[str, Any]:
        """The ultralytics arguments these options set."""
        values = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "mwam_edit", "mwam_clip")
        }
        return {**values, **self.extra}


@register_method("ultralytics")
class UltralyticsRecipe(Plugin):
    """Train with ultralytics' own loop (the runner of the host); see the module docstring."""

    options_class = UltralyticsOptions

    def setup(self, ctx: Any, dependencies: Any) -> None:
        raise ValueError(
            "method 'ultralytics' is ultralytics' training loop: it runs with hosts registered with "
            "runner='ultralytics' (two_stream_yolov8n), not with the engine's trainer"
        )

    def describe(self) -> dict[str, Any]:
        options = self.options or UltralyticsOptions()
        return {"method": self.name, "mwam_edit": options.mwam_edit, "mwam_clip": options.mwam_clip}
