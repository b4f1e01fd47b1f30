"""mAP50 for the multimodal detection experiment (Table 12): the accumulator interface and a reference AP.

The detection task may swap in ultralytics' ``ap_per_class``; this module fixes the interface it plugs
into (``update(predictions, targets)`` per image, ``compute() -> {"map50": ...}`` as a fraction in [0, 1])
and implements it for real with COCO-style AP at IoU 0.5 (pycocotools' ``COCOeval`` AP50 rules):

- per image and class, detections are taken in descending score order and each is matched to the
  still-unmatched ground-truth box of its class with the highest IoU, if that IoU is >= 0.5; otherwise it
  is a false positive (a duplicate on an already-matched box is a false positive).
- per class, detections of all images are ranked by score (stable sort, ties in arrival order), giving
  precision/recall; precision is made monotone (the running maximum from the right) and sampled at the
  101 recall points 0, 0.01, ..., 1 (the precision at the first rank reaching that recall, 0 if never
  reached); AP is the mean of the 101 samples.
- mAP50 is the mean AP over the classes that have at least one ground-truth box; detections of classes
  without ground truth are ignored (as ultralytics does). With no ground-truth box at all it is NaN.
- boxes are xyxy in pixels, IoU without the legacy "+1" pixel; no per-image detection cap (COCO's 100).

Differences from ultralytics' ``ap_per_class``: it integrates the interpolated curve with the trapezoid
rule over the 101 points after appending the point (recall 1, precision 0), so a perfect detector scores
0.995 there and 1.0 here, and its matching is IoU-greedy rather than score-greedy. Expect small gaps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch

from .base import State, TaskMetric, check_state

IOU_THRESHOLD = 0.5
RECALL_POINTS = 101

ImageBoxes = Mapping[str, torch.Tensor]  # one image's "boxes" (xyxy), "labels" and, for predictions, "scores"


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def average_precision(scores: np.ndarray, true_positive: np.ndarray, num_gt: int) -> float:
    """COCO-style 101-point interpolated AP of one class from its detections' scores and TP flags."""
    if num_gt == 0:
        return math.nan
    if scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(true_positive[order])
    fp = np.cumsum(~true_positive[order])
    recall = tp / num_gt
    precision = np.maximum.accumulate((tp / (tp + fp))[::-1])[::-1]
    thresholds = np.linspace(0.0, 1.0, RECALL_POINTS)
    idx = np.searchsorted(recall, thresholds, side="left")
    sampled = np.where(idx < recall.size, precision[np.minimum(idx, recall.size - 1)], 0.0)
    return float(sampled.mean())


def _to_numpy(value: torch.Tensor | np.ndarray | Sequence[float], shape: tuple[int, ...]) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return array.astype(np.float64).reshape(shape)


class MeanAP50(TaskMetric):
    """mAP at IoU 0.5 with 101-point interpolation, as a fraction in [0, 1]; see the module docstring.

    ``update`` takes one entry per image, in the torchmetrics ``MeanAveragePrecision`` layout:
    predictions ``{"boxes": (N, 4) xyxy, "scores": (N,), "labels": (N,)}`` and targets
    ``{"boxes": (M, 4) xyxy, "labels": (M,)}``. From ultralytics' NMS output ``d`` (N, 6):
    ``{"boxes": d[:, :4], "scores": d[:, 4], "labels": d[:, 5]}``. ``compute()`` keys: ``map50``.

    Matching happens per image in ``update``, so what is kept, and what ``state()`` holds, is: every detection's
    ``scores`` (D,) float64, ``labels`` (D,) int64 and ``true_positive`` (D,) bool, concatenated in arrival order;
    the ground-truth box count per class, ``gt_classes`` (G,) int64 (ascending) and ``gt_counts`` (G,) int64; and
    the configuration ``iou_threshold`` () float64.
    """

    primary: ClassVar[str] = "map50"
    display_name: ClassVar[str] = "mAP50"

    def __init__(self, iou_threshold: float = IOU_THRESHOLD) -> None:
        self.iou_threshold = iou_threshold
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._true_positive: list[np.ndarray] = []
        self._num_gt: dict[int, int] = {}
        self.reset()

    def reset(self) -> None:
        """Forget all accumulated images."""
        self._scores, self._labels, self._true_positive = [], [], []
        self._num_gt = {}

    def update(self, predictions: Sequence[ImageBoxes], targets: Sequence[ImageBoxes]) -> None:
        """Add a batch of images: one prediction dict and one target dict per image (layout in the class docstring)."""
        if len(predictions) != len(targets):
            raise ValueError(f"{len(predictions)} prediction entries for {len(targets)} images")
        for pred, target in zip(predictions, targets, strict=True):
            self._add_image(pred, target)

    def _add_image(self, pred: ImageBoxes, target: ImageBoxes) -> None:
        boxes = _to_numpy(pred["boxes"], (-1, 4))
        scores = _to_numpy(pred["scores"], (-1,))
        labels = _to_numpy(pred["labels"], (-1,)).astype(np.int64)
        gt_boxes = _to_numpy(target["boxes"], (-1, 4))
        gt_labels = _to_numpy(target["labels"], (-1,)).astype(np.int64)
        if not (len(boxes) == len(scores) == len(labels)) or len(gt_boxes) != len(gt_labels):
            raise ValueError("boxes, scores and labels of one image must have the same length")
        true_positive = np.zeros(len(boxes), dtype=bool)
        for cls in np.unique(np.concatenate([labels, gt_labels])):
            gt = gt_boxes[gt_labels == cls]
            self._num_gt[int(cls)] = self._num_gt.get(int(cls), 0) + len(gt)
            det = np.flatnonzero(labels == cls)
            if det.size == 0 or len(gt) == 0:
                continue
            det = det[np.argsort(-scores[det], kind="mergesort")]
            iou = box_iou(boxes[det], gt)
            matched = np.zeros(len(gt), dtype=bool)
            for row, d in enumerate(det):
                candidates = np.where(matched, -1.0, iou[row])
                best = int(np.argmax(candidates))
                if candidates[best] >= self.iou_threshold:
                    matched[best] = True
                    true_positive[d] = True
        self._scores.append(scores)
        self._labels.append(labels)
        self._true_positive.append(true_positive)

    def _detections(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores, labels and TP flags of every accumulated detection, in arrival order."""
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0)
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, dtype=np.int64)
        true_positive = np.concatenate(self._true_positive) if self._true_positive else np.zeros(0, dtype=bool)
        return scores, labels, true_positive

    def state(self) -> State:
        """Detections, ground-truth counts and ``iou_threshold`` as tensors (layout in the class docstring)."""
        scores, labels, true_positive = self._detections()
        classes = sorted(self._num_gt)
        return {
            "scores": torch.from_numpy(scores.astype(np.float64, copy=True)),
            "labels": torch.from_numpy(labels.astype(np.int64, copy=True)),
            "true_positive": torch.from_numpy(true_positive.astype(bool, copy=True)),
            "gt_classes": torch.tensor(classes, dtype=torch.long),
            "gt_counts": torch.tensor([self._num_gt[c] for c in classes], dtype=torch.long),
            "iou_threshold": torch.tensor(self.iou_threshold, dtype=torch.float64),
        }

    def merge(self, state: Mapping[str, torch.Tensor]) -> None:
        """Append another ``MeanAP50``'s detections (same ``iou_threshold``) after this one's and add its
        ground-truth counts.

        ``compute()`` is then bit-identical to that of one accumulator fed this one's images, then the state's.
        Order matters only through ties: detections of one class with equal scores are ranked in arrival order,
        so without such ties the result is the same in any order of images and merges.
        """
        layout = {
            "scores": (torch.float64, (None,)),
            "labels": (torch.long, (None,)),
            "true_positive": (torch.bool, (None,)),
            "gt_classes": (torch.long, (None,)),
            "gt_counts": (torch.long, (None,)),
        }
        config = {"iou_threshold": torch.tensor(self.iou_threshold, dtype=torch.float64)}
        check_state(self, state, layout, config)
        if not (len(state["scores"]) == len(state["labels"]) == len(state["true_positive"])):
            raise ValueError("MeanAP50.merge: scores, labels and true_positive must have the same length")
        if len(state["gt_classes"]) != len(state["gt_counts"]):
            raise ValueError("MeanAP50.merge: gt_classes and gt_counts must have the same length")
        self._scores.append(state["scores"].cpu().numpy().copy())
        self._labels.append(state["labels"].cpu().numpy().copy())
        self._true_positive.append(state["true_positive"].cpu().numpy().copy())
        for cls, n in zip(state["gt_classes"].tolist(), state["gt_counts"].tolist(), strict=True):
            self._num_gt[cls] = self._num_gt.get(cls, 0) + n

    def ap_per_class(self) -> dict[int, float]:
        """AP at the IoU threshold for every class with at least one ground-truth box."""
        scores, labels, true_positive = self._detections()
        return {
            cls: average_precision(scores[labels == cls], true_positive[labels == cls], n)
            for cls, n in sorted(self._num_gt.items())
            if n > 0
        }

    def compute(self) -> dict[str, float]:
        """mAP50 as a fraction in [0, 1]: mean AP over classes with ground truth; NaN when there is none."""
        ap = self.ap_per_class()
        return {"map50": float(np.mean(list(ap.values()))) if ap else math.nan}
