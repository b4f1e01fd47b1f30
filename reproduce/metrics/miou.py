"""Mean IoU (Eq. 23-24) over the 40 NYUv2 classes from one data-set-level confusion matrix.

Conventions, as ESANet's ``eval.py`` / ``src/confusion_matrix.py`` (which MMANet's ESANet-MD copies):

- labels are the data set's 0..40 labelling with 0 = void; predictions are the network's 0..39 class
  indices. Void pixels are dropped, then label ``k`` (1..40) is compared with prediction ``k - 1``.
- one confusion matrix is summed over all pixels of all images; IoU_i = TP_i / (TP_i + FP_i + FN_i) per
  class from it (Eq. 24), MIoU = their mean (Eq. 23); not a mean of per-image IoUs.
- a class with zero union (absent from both ground truth and prediction) counts as IoU 0 in a mean over
  all 40 classes: ESANet computes ``intersection / union`` then ``np.nan_to_num`` then ``np.mean``. That is
  ``zero_union="zero"``, the default. torchmetrics' ``MulticlassJaccardIndex(average="macro")`` instead
  drops such classes from the mean: ``zero_union="exclude"``. On the NYUv2 test split every class occurs,
  so the two agree there.
- logits must already be at the label resolution (ESANet upsamples bilinearly before the argmax).

MIoU is returned in percent; with no non-void pixel accumulated it is NaN. Beside it, ``compute`` returns
``iou_<k>``, the IoU of data-set label ``k`` (1..C) in percent, for every class with a non-zero union (a class
absent from both the ground truth and the predictions has no entry): the per-class rows of a table
(``reproduce/tables/class_iou.py``) and W&B.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, Literal

import torch

from .base import State, TaskMetric, check_state
from .confusion import ConfusionCounts

NYUV2_CLASSES = 40
VOID = 0


class MeanIoU(TaskMetric):
    """Data-set-level MIoU (Eq. 23-24) in percent, void (label 0) ignored; see the module docstring.

    ``compute()`` keys: ``miou``, and ``iou_<k>`` per data-set label ``k`` with a non-zero union. ``state()``:
    ``{"pixel_confusion": (C, C) int64}``.
    """

    primary: ClassVar[str] = "miou"
    display_name: ClassVar[str] = "MIoU"

    def __init__(self, num_classes: int = NYUV2_CLASSES, zero_union: Literal["zero", "exclude"] = "zero") -> None:
        if zero_union not in ("zero", "exclude"):
            raise ValueError(f"zero_union must be 'zero' (ESANet) or 'exclude' (torchmetrics), got {zero_union!r}")
        self.num_classes = num_classes
        self.zero_union = zero_union
        self._counts = ConfusionCounts(num_classes)
        self.reset()

    def reset(self) -> None:
        """Forget the accumulated confusion matrix."""
        self._counts.reset()

    def update(self, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch: predictions as class indices (B, H, W) in 0..C-1 or logits (B, C, H, W); labels (B, H, W)
        in 0..C with 0 = void (label k is class index k - 1)."""
        n = self.num_classes
        if predictions.ndim == labels.ndim + 1 and predictions.shape[1] == n:
            predictions = predictions.argmax(dim=1)
        elif predictions.is_floating_point():
            raise ValueError(f"float predictions must be logits (B, {n}, H, W), got shape {tuple(predictions.shape)}")
        if predictions.shape != labels.shape:
            raise ValueError(f"prediction shape {tuple(predictions.shape)} != label shape {tuple(labels.shape)}")
        predictions = predictions.long().reshape(-1)
        labels = labels.long().reshape(-1).to(predictions.device)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > n):
            raise ValueError(f"labels must lie in 0..{n} (0 = void)")
        if predictions.numel() and (int(predictions.min()) < 0 or int(predictions.max()) >= n):
            raise ValueError(f"predicted class indices must lie in 0..{n - 1}")
        keep = labels != VOID
        target = labels[keep] - 1  # index shift: data set label k <-> network class k - 1
        self._counts.add(target, predictions[keep])

    @property
    def confusion_matrix(self) -> torch.Tensor:
        """(C, C) pixel counts, rows = ground-truth class index, columns = predicted class index (CPU)."""
        return self._counts.matrix

    def state(self) -> State:
        """``{"pixel_confusion": (C, C) int64}``, the matrix of ``confusion_matrix``."""
        return {"pixel_confusion": self.confusion_matrix.clone()}

    def merge(self, state: Mapping[str, torch.Tensor]) -> None:
        """Add another ``MeanIoU``'s pixel counts (same ``num_classes``); order does not matter. ``zero_union`` only
        enters ``compute``, so states of either setting merge, and this accumulator's setting is applied."""
        n = self.num_classes
        check_state(self, state, {"pixel_confusion": (torch.long, (n, n))})
        self._counts.add_matrix(state["pixel_confusion"])

    def iou_per_class(self) -> torch.Tensor:
        """(C,) IoU_i of Eq. 24 in [0, 1]; NaN for a class with zero union."""
        cm = self.confusion_matrix.double()
        tp = cm.diag()
        union = cm.sum(dim=0) + cm.sum(dim=1) - tp
        return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, math.nan))

    def compute(self) -> dict[str, float]:
        """MIoU of Eq. 23 in percent, zero-union classes per ``zero_union``; NaN with no non-void pixel. Also
        ``iou_<k>`` (percent) for data-set label ``k`` = class index + 1, for each class with a non-zero union."""
        if int(self.confusion_matrix.sum()) == 0:
            return {"miou": math.nan}
        iou = self.iou_per_class()
        if self.zero_union == "zero":
            miou = float(torch.nan_to_num(iou, nan=0.0).mean())
        else:
            present = iou[~iou.isnan()]
            miou = float(present.mean()) if present.numel() else math.nan
        per_class = {f"iou_{index + 1}": float(value) * 100.0 for index, value in enumerate(iou.tolist())
                     if not math.isnan(value)}  # fmt: skip
        return {"miou": miou * 100.0, **per_class}
