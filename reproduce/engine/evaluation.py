"""Evaluate a host on every missing-modality subset, in the paper's row order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from models.host import Host
from reproduce.metrics.base import TaskMetric
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
    subsets: Sequence[tuple[str, ...]] | None = None,
    new_metric: Callable[[], TaskMetric] | None = None,
) -> dict[str, dict[str, float]]:
    """``{subset_key: metric dict}`` for every subset of the task's data set (or of ``subsets``), in order; by
    default the paper's order, full set last, with the task's metric (or ``new_metric()``).

    Each subset is evaluated by passing the host its presence mask (the host zeroes the missing modalities'
    features as its authors do); the inputs themselves are never altered.
    """
    from tqdm.auto import tqdm

    was_training = host.training
    host.eval()
    columns = host.modalities
    subsets = list(task.subsets if subsets is None else subsets)
    keys = [subset_key(subset) for subset in subsets]
    masks = torch.tensor([[m in subset for m in columns] for subset in subsets], dtype=torch.bool, device=device)
    metrics = [(new_metric or task.new_metric)() for _ in keys]
    try:
        # One pass over the data (each batch read and decoded once), every subset evaluated on each batch.
        for batch in tqdm(loader, desc=description, leave=False, disable=not progress):
            inputs = task.inputs(batch, device)
            if channels_last:
                inputs = {m: x.contiguous(memory_format=torch.channels_last) for m, x in inputs.items()}
            size = next(iter(inputs.values())).shape[0]
            for mask, metric in zip(masks, metrics, strict=True):
                amp = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
                with torch.inference_mode(), amp:
                    output = host(inputs, mask.expand(size, -1))
                task.update_metric(metric, output, batch)
        results = {key: metric.compute() for key, metric in zip(keys, metrics, strict=True)}
    finally:
        host.train(was_training)
    return results
