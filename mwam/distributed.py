"""Cross-rank reduction of MWAM's per-step statistics under torch.distributed."""

from __future__ import annotations

from typing import Any

import torch


def world_size(group: Any = None) -> int:
    """Number of ranks in ``group``; 1 when torch.distributed is unavailable or not initialised."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


def all_reduce_sum(stats: torch.Tensor, group: Any = None) -> torch.Tensor:
    """Sum ``stats`` over the ranks of ``group`` in place (no-op on a single process); returns it."""
    if world_size(group) > 1:
        torch.distributed.all_reduce(stats, op=torch.distributed.ReduceOp.SUM, group=group)
    return stats
