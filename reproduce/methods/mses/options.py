"""The options of ``mses`` (torch-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass

RESTORES = ("branch", "model")
FREEZES = ("zero", "skip")
#: The AGM repository's patience, 80 epochs (``run/CREMAD_main.py`` l.719, l.731), of its author's 1500-epoch
#: CREMA-D runs (lihongcs/AGM issues #3, #5): the default patience is this fraction of a run's epochs.
AGM_PATIENCE, AGM_EPOCHS = 80, 1500


def scaled_patience(epochs: int, fraction: float) -> int:
    """``round(fraction x epochs)``, at least 1 (100 epochs at 80/1500: 5)."""
    return max(1, round(fraction * epochs))


@dataclass(frozen=True)
class MSESOptions:
    """patience: epochs without a new minimum of a modality's smoothed validation loss before it stops (stopped
    once ``epoch - best_epoch > patience``, as the AGM repository); None: ``patience_fraction`` of the run's epochs
    (at least 1; 80 is the AGM repository's of 1500 epochs). smoothing: the weight of the previous epoch's raw loss
    in the smoothed one (0.6: ``0.6 L_{t-1} + 0.4 L_t``). restore: what a stopped modality reloads from its best
    epoch, ``branch`` (its branch and own head, and their optimiser state) or ``model`` (the whole host and
    optimiser, the AGM repository's). freeze: a stopped modality's gradients are ``zero`` (multiplied by 0, the
    repository's: weight decay and momentum still move its parameters) or dropped (``skip``: the optimiser skips
    them). split: the split read after each epoch."""

    patience: int | None = None
    patience_fraction: float = AGM_PATIENCE / AGM_EPOCHS
    smoothing: float = 0.6
    restore: str = "branch"
    freeze: str = "zero"
    split: str = "val"

    def __post_init__(self) -> None:
        if self.patience is not None and (
            not isinstance(self.patience, int) or isinstance(self.patience, bool) or self.patience < 0
        ):
            raise ValueError(f"patience must be None (scaled to the run) or an integer >= 0, got {self.patience!r}")
        for name, low, high in (("patience_fraction", 0.0, 1.0), ("smoothing", 0.0, 1.0)):
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or not low <= value <= high:
                raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
        if self.patience_fraction == 0:
            raise ValueError("patience_fraction must be > 0")
        if self.restore not in RESTORES:
            raise ValueError(f"restore must be one of {', '.join(RESTORES)}; got {self.restore!r}")
        if self.freeze not in FREEZES:
            raise ValueError(f"freeze must be one of {', '.join(FREEZES)}; got {self.freeze!r}")
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"split must name a split (e.g. 'val'), got {self.split!r}")
