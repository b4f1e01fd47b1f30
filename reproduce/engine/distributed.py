"""Process groups for multi-GPU training (torchrun / DDP), and the single-process default.

``torchrun --nproc_per_node N -m reproduce run ...`` starts N processes with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` (and the rendezvous address) in their environment; :func:`initialise` joins the process group
(NCCL on CUDA, gloo on CPU) and adds a gloo *control* group on the CPU, through which the trainer agrees on stop
requests and gathers small objects (RNG states, metric states) without synchronising the GPU stream. Without
those variables everything here is the one-process identity: ``any(flag)`` is ``flag``, ``gather(x)`` is
``[x]``, barriers do nothing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass
class Distributed:
    """This process's place in the run: rank, world size, local rank (its GPU), and the control group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    control: Any = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, registry entries, curves and W&B."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier(group=self.control)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any process (every process gets the same answer)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.control)
        return bool(value.item())

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every process, in rank order, on every process (small picklable objects)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.control)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes."""
        if not self.enabled:
            return value
        values = self.gather(value)
        return sum(values) / len(values)

    def shard(self, size: int) -> range:
        """This process's contiguous block of ``range(size)``: the blocks of rank 0, 1, ... in order are
        ``range(size)`` (no sample repeated or padded, so merged metrics equal one process's exactly)."""
        base, extra = divmod(size, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return range(start, start + base + (1 if self.rank < extra else 0))


_CURRENT = Distributed()


def current() -> Distributed:
    """The process's :class:`Distributed` (one process, unless :func:`initialise` joined a group)."""
    return _CURRENT


def environment_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def initialise(backend: str | None = None) -> Distributed:
    """Join the process group torchrun describes in the environment (or the one already initialised, as in tests
    that spawn their own processes); returns the process's :class:`Distributed`. One process: a no-op."""
    global _CURRENT
    if not dist.is_initialized():
        if environment_world_size() <= 1:
            return _CURRENT
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", rank))
    control = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
    _CURRENT = Distributed(rank, world, local, control)
    log.info("process %d of %d (local rank %d, backend %s)", rank, world, local, dist.get_backend())
    return _CURRENT


def shutdown() -> None:
    """Leave the process group (if this module joined one)."""
    global _CURRENT
    if dist.is_initialized():
        dist.destroy_process_group()
    _CURRENT = Distributed()
