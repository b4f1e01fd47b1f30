"""Task metrics of the reproduction harness (Sec. A.4): accumulators with ``reset`` / ``update`` / ``compute``.

``build_metric("acc" | "dice_brats" | "miou" | "map50", **kw)`` builds one by its registry name. Importing
this package is cheap: MONAI is imported only when a ``BratsDice`` is built.
"""

from __future__ import annotations

from typing import Any

from .base import TaskMetric, ratio
from .brats_dice import BratsDice, postprocess_et
from .classification import BinaryAccuracy
from .detection import MeanAP50, average_precision, box_iou
from .miou import MeanIoU

METRICS: dict[str, type[TaskMetric]] = {
    "acc": BinaryAccuracy,
    "dice_brats": BratsDice,
    "miou": MeanIoU,
    "map50": MeanAP50,
}


def build_metric(name: str, **kw: Any) -> TaskMetric:
    """A new accumulator of the registered metric ``name``, built with ``kw``; ValueError for an unknown name."""
    try:
        cls = METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(METRICS))}") from None
    return cls(**kw)


__all__ = [
    "METRICS",
    "BinaryAccuracy",
    "BratsDice",
    "MeanAP50",
    "MeanIoU",
    "TaskMetric",
    "average_precision",
    "box_iou",
    "build_metric",
    "postprocess_et",
    "ratio",
]
