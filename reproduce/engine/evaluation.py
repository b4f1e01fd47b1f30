"""Evaluate a host on every missing-modality subset, in the paper's row order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from typing import Any

import torch

from models.host import Host
from reproduce.subsets import subset_key
from reproduce.tasks.base import Task


def evaluate_subsets(
    host: Host,
    task: Task,
    loader: Iterable[Mapping[str, Any]],
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
    channels_last: bool = False,
    description: str = "eval",
) -> dict[str, dict[str, float]]:
    """``{subset_key: metric dict}`` for every subset of the task's data set; the full set is last.

    Each subset is evaluated by passing the host its presence mask (the host zeroes the missing modalities'
    features as its authors do); the inputs themselves are never altered.
    """
    from tqdm.auto import tqdm

    was_training = host.training
    host.eval()
    results: dict[str, dict[str, float]] = {}
    columns = host.modalities
    try:
        for subset in task.subsets:
            metric = task.new_metric()
            mask = torch.tensor([m in subset for m in columns], dtype=torch.bool, device=device)
            batches = tqdm(loader, desc=f"{description} {subset_key(subset)}", leave=False, disable=not progress)
            for batch in batches:
                inputs = task.inputs(batch, device)
                if channels_last:
                    inputs = {m: x.contiguous(memory_format=torch.channels_last) for m, x in inputs.items()}
                present = mask.expand(next(iter(inputs.values())).shape[0], -1)
                amp = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
                with torch.inference_mode(), amp:
                    output = host(inputs, present)
                task.update_metric(metric, output, batch)
            results[subset_key(subset)] = metric.compute()
    finally:
        host.train(was_training)
    return results
