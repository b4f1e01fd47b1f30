"""The distribution of predicted labels (MMANet's weak-combination search, Eq. 10-11 of the MMANet paper)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch

from .base import State, TaskMetric, check_state


class PredictedLabelHistogram(TaskMetric):
    """Counts the argmax predictions of (B, K) logits; ``compute()`` gives each class's fraction (``class_k``) and
    ``samples``. Targets passed to ``update`` are ignored: the histogram describes the predictions only.
    ``state()``: ``{"predicted_counts": (K,) int64}``."""

    primary: ClassVar[str] = "samples"
    display_name: ClassVar[str] = "Predicted-label histogram"

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self.counts = torch.zeros(self.num_classes, dtype=torch.long)

    def update(self, predictions: torch.Tensor, targets: torch.Tensor | None = None) -> None:
        if predictions.ndim != 2 or predictions.shape[1] != self.num_classes:
            raise ValueError(f"expected logits (B, {self.num_classes}), got {tuple(predictions.shape)}")
        labels = predictions.detach().argmax(dim=1).cpu()
        self.counts += torch.bincount(labels, minlength=self.num_classes)

    def state(self) -> State:
        """``{"predicted_counts": (K,) int64}``, a copy of ``counts``."""
        return {"predicted_counts": self.counts.clone()}

    def merge(self, state: Mapping[str, torch.Tensor]) -> None:
        """Add another histogram's counts (same ``num_classes``); order does not matter."""
        check_state(self, state, {"predicted_counts": (torch.long, (self.num_classes,))})
        self.counts += state["predicted_counts"].cpu()

    def fractions(self) -> torch.Tensor:
        """(K,) float64 fractions; NaN when nothing was counted."""
        total = int(self.counts.sum())
        if total == 0:
            return torch.full((self.num_classes,), float("nan"), dtype=torch.float64)
        return self.counts.double() / total

    def compute(self) -> dict[str, float]:
        values = {f"class_{k}": float(v) for k, v in enumerate(self.fractions())}
        values["samples"] = float(self.counts.sum())
        return values
