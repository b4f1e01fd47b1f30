"""The options of ``modality_gradient_scale`` (torch-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GradientScaleOptions:
    """scales: per modality, the factor its branch gradients are multiplied by (modalities not named keep 1; none
    named: nothing changes); start_epoch: the first epoch it applies to."""

    scales: dict[str, float] = field(default_factory=dict)
    start_epoch: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.scales, dict):
            raise ValueError(f"scales must map modalities to factors, got {self.scales!r}")
        for modality, factor in self.scales.items():
            number = isinstance(factor, int | float) and not isinstance(factor, bool)
            if not number or not math.isfinite(factor) or factor < 0:
                raise ValueError(f"scales[{modality!r}] must be a finite number >= 0, got {factor!r}")
        if not isinstance(self.start_epoch, int) or isinstance(self.start_epoch, bool) or self.start_epoch < 0:
            raise ValueError(f"start_epoch must be an integer >= 0, got {self.start_epoch!r}")
