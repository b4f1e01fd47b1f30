"""Batches in an order that depends only on (seed, epoch), so a run can stop anywhere and resume exactly.

The sampler cuts *global* batches from shuffles of the training set and gives each process of a DDP run its
contiguous shard of every global batch: the position in the epoch (the number of global batches done) is the
same on every process, which is what a checkpoint records.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """Shuffled (or sequential) global batches of ``batch_size``; this process gets its shard of each.

    ``iterations=None``: one pass per epoch, the incomplete last batch dropped when ``drop_last`` (the authors
    train so). ``iterations=N``: exactly N batches per epoch, cut from successive shuffles (RFNet's 150 iterations
    per epoch); for N up to one pass these are the first N batches of the epoch's shuffle.
    ``set_epoch(epoch, start)`` selects the epoch and skips the ``start`` batches already done.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = True,
        iterations: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if size < 1:
            raise ValueError("cannot sample batches from an empty data set")
        if iterations is None and drop_last and size < batch_size:
            raise ValueError(f"batch size {batch_size} is larger than the data set ({size} samples) with drop_last")
        if batch_size % world_size:
            raise ValueError(
                f"the global batch of {batch_size} cannot be split evenly over {world_size} processes; "
                "choose a batch size that is a multiple of the number of processes"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.shuffle, self.drop_last, self.iterations = shuffle, drop_last, iterations
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        """Global batches in a whole epoch (whatever ``start`` is)."""
        if self.iterations is not None:
            return self.iterations
        full, rest = divmod(self.size, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    @property
    def per_process_batch(self) -> int:
        return self.batch_size // self.world_size

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _order(self, shuffle_index: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        seed = self.seed * 1_000_003 + self.epoch
        if shuffle_index:
            seed = seed * 1_000_033 + shuffle_index
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(seed)).tolist()

    def batches(self) -> list[list[int]]:
        """The epoch's global batches."""
        if self.iterations is None:
            order = self._order(0)
            batches = [order[i : i + self.batch_size] for i in range(0, self.size, self.batch_size)]
            if self.drop_last and len(batches[-1]) < self.batch_size:
                batches.pop()
            return batches
        needed = self.iterations * self.batch_size
        stream: list[int] = []
        shuffle_index = 0
        while len(stream) < needed:
            stream += self._order(shuffle_index)
            shuffle_index += 1
        return [stream[i : i + self.batch_size] for i in range(0, needed, self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        per = self.per_process_batch
        for batch in self.batches()[self.start :]:
            yield batch[self.rank * per : (self.rank + 1) * per]

    def __len__(self) -> int:
        return max(self.batches_per_epoch - self.start, 0)
