"""Learning-rate schedule: linear warm-up, then step decay at milestone epochs (Sec. 5.2, A.3)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence


def lr_factor(epoch: int, warmup_epochs: int, milestones: Sequence[int], gamma: float) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based).

    Warm-up: ``(epoch + 1) / warmup_epochs`` for the first ``warmup_epochs`` epochs; afterwards
    ``gamma ** (number of milestones <= epoch)`` -- with milestones (30, 60, 90) the rate is divided by 10
    every 30 epochs, as the paper states for SF-MD + MWAM.
    """
    if epoch < warmup_epochs:
        return (epoch + 1) / warmup_epochs
    return gamma ** bisect.bisect_right(list(milestones), epoch)
