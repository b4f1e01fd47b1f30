"""Multi-class accuracy for the many-class classification data sets (UCF-101, Stanford Dogs, FGVC-Aircraft).

From (B, K) logits and (B,) labels in 0..K-1, in percent:

- ``acc``: top-1 accuracy, the argmax prediction (ties go to the lowest class index, as ``torch.argmax``);
- ``top{k}``: the fraction of samples whose label is among the ``top_k`` highest logits, ties broken the same
  way (towards the lower class index), so a top-1 hit is always a top-k hit. Only present when
  ``top_k < num_classes``: otherwise every sample would be a hit;
- ``mean_class_acc``: the mean over classes of the per-class recall (hits / samples of that class). Classes
  with no sample are left out of that mean (their recall is undefined), also when they are predicted.

Every value is NaN while no sample was accumulated (the NaN convention of ``base``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import torch

from .base import State, TaskMetric, check_state, ratio
from .confusion import ConfusionCounts


class MulticlassAccuracy(TaskMetric):
    """Top-1, top-k and mean per-class accuracy in percent over ``num_classes`` classes; see the module docstring.

    ``compute()`` keys: ``acc``, ``top{top_k}`` (when ``top_k < num_classes``), ``mean_class_acc``.
    ``state()``: ``{"confusion": (K, K) int64, "topk_hits": () int64, "top_k": () int64}``.
    """

    primary: ClassVar[str] = "acc"
    display_name: ClassVar[str] = "Acc"

    def __init__(self, num_classes: int, top_k: int = 5) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.num_classes = num_classes
        self.top_k = top_k
        self._counts = ConfusionCounts(num_classes)
        self._topk_hits = 0
        self.reset()

    @property
    def reports_top_k(self) -> bool:
        """Whether ``compute()`` has the ``top{k}`` key (``top_k < num_classes``)."""
        return self.top_k < self.num_classes

    def reset(self) -> None:
        """Forget all accumulated samples."""
        self._counts.reset()
        self._topk_hits = 0

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: ``logits`` (B, K) float, ``targets`` (B,) integer labels in 0..K-1."""
        n = self.num_classes
        if logits.ndim != 2 or logits.shape[1] != n or not logits.is_floating_point():
            raise ValueError(f"logits must be float (B, {n}), got {logits.dtype} {tuple(logits.shape)}")
        if targets.ndim != 1 or targets.is_floating_point() or targets.dtype == torch.bool:
            raise ValueError(f"targets must be integer labels (B,), got {targets.dtype} {tuple(targets.shape)}")
        if targets.shape[0] != logits.shape[0]:
            raise ValueError(f"{logits.shape[0]} predictions for {targets.shape[0]} targets")
        targets = targets.long().to(logits.device)
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= n):
            raise ValueError(f"targets must lie in 0..{n - 1}")
        logits = logits.detach()
        if bool(logits.isnan().any()):
            raise ValueError("logits contain NaN")
        self._counts.add(targets, logits.argmax(dim=1))
        if self.reports_top_k:
            own = logits.gather(1, targets[:, None])
            lower = torch.arange(n, device=logits.device)[None, :] < targets[:, None]
            rank = (logits > own).sum(dim=1) + ((logits == own) & lower).sum(dim=1)  # 0 = the argmax
            self._topk_hits += int((rank < self.top_k).sum())

    @property
    def confusion_matrix(self) -> torch.Tensor:
        """(K, K) top-1 counts, rows = target, columns = prediction (CPU)."""
        return self._counts.matrix

    def per_class_acc(self) -> torch.Tensor:
        """(K,) float64 recall of each class in [0, 1]; NaN for a class with no sample."""
        cm = self.confusion_matrix
        support = cm.sum(dim=1)
        recall = cm.diag().double() / support.clamp_min(1).double()
        return torch.where(support > 0, recall, torch.full_like(recall, math.nan))

    def state(self) -> State:
        """The top-1 ``confusion`` matrix, the number of top-k hits ``topk_hits`` and the configuration ``top_k``."""
        return {
            "confusion": self.confusion_matrix.clone(),
            "topk_hits": torch.tensor(self._topk_hits, dtype=torch.long),
            "top_k": torch.tensor(self.top_k, dtype=torch.long),
        }

    def merge(self, state: Mapping[str, torch.Tensor]) -> None:
        """Add another ``MulticlassAccuracy``'s counts (same ``num_classes`` and ``top_k``); order does not matter."""
        n = self.num_classes
        layout = {"confusion": (torch.long, (n, n)), "topk_hits": (torch.long, ())}
        check_state(self, state, layout, {"top_k": torch.tensor(self.top_k, dtype=torch.long)})
        self._counts.add_matrix(state["confusion"])
        self._topk_hits += int(state["topk_hits"])

    def compute(self) -> dict[str, float]:
        """``acc``, ``top{k}`` and ``mean_class_acc`` in percent; all NaN before any sample (module docstring)."""
        cm = self.confusion_matrix
        total = int(cm.sum())
        values = {"acc": ratio(int(cm.diag().sum()), total, 100.0)}
        if self.reports_top_k:
            values[f"top{self.top_k}"] = ratio(self._topk_hits, total, 100.0)
        recall = self.per_class_acc()
        present = recall[~recall.isnan()]
        values["mean_class_acc"] = float(present.mean()) * 100.0 if present.numel() else math.nan
        return values
