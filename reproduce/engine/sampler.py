"""Batches in an order that depends only on (seed, epoch), so a run can stop anywhere and resume exactly."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """Shuffled (or sequential) index batches; ``set_epoch(epoch, start)`` skips the ``start`` batches already done.

    ``drop_last`` drops an incomplete final batch (the authors train with drop_last); ``max_batches`` caps an
    epoch (smoke runs).
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = True,
        max_batches: int | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("cannot sample batches from an empty data set")
        if drop_last and size < batch_size:
            raise ValueError(f"batch size {batch_size} is larger than the data set ({size} samples) with drop_last")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.shuffle, self.drop_last, self.max_batches = shuffle, drop_last, max_batches
        self.epoch, self.start = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        """Batches in a whole epoch (whatever ``start`` is)."""
        full, rest = divmod(self.size, self.batch_size)
        count = full + (1 if rest and not self.drop_last else 0)
        return min(count, self.max_batches) if self.max_batches is not None else count

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def batches(self) -> list[list[int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        batches = [order[i : i + self.batch_size] for i in range(0, self.size, self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches[: self.max_batches] if self.max_batches is not None else batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()[self.start :]

    def __len__(self) -> int:
        return max(len(self.batches()) - self.start, 0)
