"""Task metrics of the reproduction harness (Sec. A.4): accumulators with ``reset`` / ``update`` / ``compute``,
and ``state`` / ``merge`` (plus ``merge_states``) to combine the accumulators of sharded evaluation exactly.

Build a metric from its class (a task's ``new_metric``). Importing this package is cheap: MONAI is imported
only when a ``BratsDice`` is built.
"""

from __future__ import annotations

from .base import State, TaskMetric, merge_states, ratio
from .brats_dice import BratsDice, postprocess_et
from .classification import BinaryAccuracy
from .detection import MeanAP50, average_precision, box_iou
from .label_histogram import PredictedLabelHistogram
from .miou import MeanIoU
from .multiclass import MulticlassAccuracy

__all__ = [
    "BinaryAccuracy",
    "BratsDice",
    "MeanAP50",
    "MeanIoU",
    "MulticlassAccuracy",
    "PredictedLabelHistogram",
    "State",
    "TaskMetric",
    "average_precision",
    "box_iou",
    "merge_states",
    "postprocess_et",
    "ratio",
]
