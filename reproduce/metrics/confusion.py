"""A class-by-class count matrix accumulated over batches, shared by the accuracies and mIoU."""

from __future__ import annotations

import torch


class ConfusionCounts:
    """``matrix[t, p]`` = how many samples (pixels) of target class ``t`` were predicted as ``p``.

    Counts stay on the device of the first batch; later batches are moved there. ``matrix`` is on the CPU.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self._counts: torch.Tensor | None = None

    def reset(self) -> None:
        self._counts = None

    def add(self, targets: torch.Tensor, predictions: torch.Tensor) -> None:
        """Add flat integer class indices in ``0 .. num_classes - 1`` (checked by the caller)."""
        n = self.num_classes
        counts = torch.bincount(targets.reshape(-1) * n + predictions.reshape(-1), minlength=n * n).reshape(n, n)
        self.add_matrix(counts)

    def add_matrix(self, counts: torch.Tensor) -> None:
        """Add a (C, C) int64 count matrix, e.g. another accumulator's ``matrix`` (checked by the caller)."""
        if self._counts is None:
            self._counts = counts.clone()  # never an alias of the caller's tensor: later adds are in place
        else:
            self._counts += counts.to(self._counts.device)

    @property
    def matrix(self) -> torch.Tensor:
        """The (C, C) int64 counts on the CPU (may share memory with the accumulator when it is on the CPU)."""
        if self._counts is None:
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        return self._counts.cpu()
