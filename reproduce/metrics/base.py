"""The accumulator protocol every task metric of the harness follows (the metrics of Sec. A.4).

A metric is fed batch by batch with ``update(...)`` (tensors on any device), summarised with
``compute() -> dict[str, float]`` and cleared with ``reset()``. Each class names, as class attributes,
the key of its primary value in ``compute()``'s dict, the name the paper's tables print for it and
whether higher is better. Values the paper prints as percentages (Acc, Dice, MIoU) are returned in
percent; mAP50 is returned as a fraction in [0, 1], as Table 12 prints it.

NaN convention shared by all metrics: a ratio whose denominator is zero (no samples of a class, no
data at all) is NaN, never 0 or 1 by accident, and the docstring of each metric says when that happens.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

_REQUIRED = ("primary", "display_name", "higher_is_better")


class TaskMetric(ABC):
    """Base class of the harness's metric accumulators: ``reset`` / ``update`` / ``compute``.

    Subclasses must define the class attributes

    - ``primary``: the key of the headline value in ``compute()``'s dict (e.g. ``"acc"``, ``"wt"``);
    - ``display_name``: what the paper's tables call it (e.g. ``"Acc"``, ``"Dice"``, ``"MIoU"``, ``"mAP50"``);
    - ``higher_is_better``: the direction in which the metric improves;

    and are checked for them when the class is created.
    """

    primary: ClassVar[str]
    display_name: ClassVar[str]
    higher_is_better: ClassVar[bool]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in _REQUIRED if not hasattr(cls, name)]
        if missing:
            raise TypeError(f"{cls.__name__} must define the class attribute(s) {', '.join(missing)}")

    @abstractmethod
    def reset(self) -> None:
        """Forget everything accumulated so far."""

    @abstractmethod
    def update(self, *args: Any, **kwargs: Any) -> None:
        """Accumulate one batch."""

    @abstractmethod
    def compute(self) -> dict[str, float]:
        """Named values over everything accumulated since the last ``reset``; contains ``self.primary``."""

    def primary_value(self) -> float:
        """``compute()[self.primary]``."""
        return self.compute()[self.primary]


def ratio(numerator: float, denominator: float, scale: float = 1.0) -> float:
    """``scale * numerator / denominator``, or NaN when the denominator is zero (the shared NaN convention)."""
    if denominator == 0:
        return math.nan
    return scale * float(numerator) / float(denominator)
