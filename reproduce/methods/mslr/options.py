"""The options of ``mslr`` (torch-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: The AGM repository's base multipliers (lihong2303/AGM_ICCV2023 ``run/CREMAD_main.py`` l.195-196), keyed by its
#: two modalities; a run names its own modalities in ``base`` (e.g. ``{rgb: 0.9, depth: 1.1}``).
AGM_BASE = {"audio": 0.9, "visual": 1.1}


def check_epoch_window(start_epoch: object, end_epoch: object) -> None:
    """``start_epoch`` an integer >= 0, ``end_epoch`` None or an integer >= start_epoch."""
    if not isinstance(start_epoch, int) or isinstance(start_epoch, bool) or start_epoch < 0:
        raise ValueError(f"start_epoch must be an integer >= 0, got {start_epoch!r}")
    if end_epoch is not None and (
        not isinstance(end_epoch, int) or isinstance(end_epoch, bool) or end_epoch < start_epoch
    ):
        raise ValueError(f"end_epoch must be None (the whole run) or an integer >= start_epoch, got {end_epoch!r}")


@dataclass(frozen=True)
class MSLROptions:
    """base: per modality, the base multiplier of its gradients (modalities not named: 1.0; the AGM repository's
    0.9 audio / 1.1 visual are :data:`AGM_BASE`); memory: how many epochs of validation accuracy the ratio compares
    with (5); start_epoch, end_epoch: the epochs (0-based, inclusive; None: to the end) whose steps are modulated
    (the AGM repository's ``modulation_starts`` / ``modulation_ends``); split: the split read after each epoch."""

    base: dict[str, float] = field(default_factory=dict)
    memory: int = 5
    start_epoch: int = 0
    end_epoch: int | None = None
    split: str = "val"

    def __post_init__(self) -> None:
        if not isinstance(self.base, dict):
            raise ValueError(f"base must map modalities to multipliers, got {self.base!r}")
        for modality, value in self.base.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not isinstance(modality, str) or not number or not math.isfinite(value) or value < 0:
                raise ValueError(f"base[{modality!r}] must be a finite number >= 0, got {value!r}")
        if not isinstance(self.memory, int) or isinstance(self.memory, bool) or self.memory < 1:
            raise ValueError(f"memory must be an integer >= 1, got {self.memory!r}")
        check_epoch_window(self.start_epoch, self.end_epoch)
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"split must name a split (e.g. 'val'), got {self.split!r}")
