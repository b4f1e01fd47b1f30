"""Evaluate a host on every missing-modality subset, in the paper's row order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from mwam_harness.models.host import Host
from reproduce.engine.distributed import Distributed, current
from reproduce.metrics.base import TaskMetric, merge_states
from reproduce.subsets import subset_key
from reproduce.tasks.base import Task


def to_channels_last(inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """4-D inputs in channels-last memory format; other ranks (3-D volumes, vectors) unchanged."""
    return {m: x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for m, x in inputs.items()}


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def _eval_batches(
    host: Host,
    task: Task,
    loader: Iterable[Mapping[str, Any]],
    device: torch.device,
    channels_last: bool,
    progress: bool,
    description: str,
    distributed: Distributed,
) -> Iterator[tuple[Mapping[str, Any], dict[str, torch.Tensor]]]:
    """``(batch, inputs on the device)`` of ``loader`` with the host in eval mode (its mode restored afterwards)."""
    from tqdm.auto import tqdm

    was_training = host.training
    host.eval()
    try:
        for batch in tqdm(loader, desc=description, leave=False, disable=not progress or not distributed.is_main):
            inputs = task.inputs(batch, device)
            yield batch, (to_channels_last(inputs) if channels_last else inputs)
    finally:
        host.train(was_training)


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
    distributed: Distributed | None = None,
) -> dict[str, dict[str, float]]:
    """``{subset_key: metric dict}`` for every subset of the task's modalities (or of ``subsets``), in order; by
    default the paper's order, full set last, with the task's metric (or ``new_metric()``).

    Each subset is evaluated by passing the host its presence mask (the host zeroes the missing modalities'
    features as its authors do); the inputs themselves are never altered. The task predicts every subset of a
    batch at once (``Task.predict_subsets``: a host with ``encode`` / ``fuse`` runs its encoders once per batch).
    Under DDP each process evaluates its shard of ``loader``'s data and the metric states are merged in rank
    order, so every process returns the numbers of the whole split.
    """
    distributed = distributed or current()
    columns = task.modalities
    subsets = list(task.subsets if subsets is None else subsets)
    keys = [subset_key(subset) for subset in subsets]
    masks = torch.tensor([[m in subset for m in columns] for subset in subsets], dtype=torch.bool, device=device)
    make_metric = new_metric or task.new_metric
    metrics = [make_metric() for _ in keys]
    # One pass over the data (each batch read and decoded once), every subset evaluated on each batch.
    for batch, inputs in _eval_batches(host, task, loader, device, channels_last, progress, description, distributed):
        size = next(iter(inputs.values())).shape[0]
        with torch.inference_mode(), _autocast(device, autocast_dtype):
            outputs = task.predict_subsets(host, inputs, [mask.expand(size, -1) for mask in masks])
        for output, metric in zip(outputs, metrics, strict=True):
            task.update_metric(metric, output, batch)
    if distributed.enabled:
        states = distributed.gather([metric.state() for metric in metrics])
        metrics = [merge_states(make_metric(), [s[i] for s in states]) for i in range(len(keys))]
    return {key: metric.compute() for key, metric in zip(keys, metrics, strict=True)}


def evaluate_with_dropout(
    host: Host,
    task: Task,
    loader: Iterable[Mapping[str, Any]],
    device: torch.device,
    generator: torch.Generator,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
    channels_last: bool = False,
    description: str = "eval",
    distributed: Distributed | None = None,
) -> dict[str, float]:
    """The task's metric on ``loader`` with every sample's modalities masked by the host's own training-time
    dropout (``Host.training_dropout``, drawn from ``generator``), the host in eval mode: the authors' validation of
    SF-MD / MMANet on CASIA-SURF (their ``modality_drop`` draws subsets in eval mode too). Merged over processes."""
    distributed = distributed or current()
    metric = task.new_metric()
    for batch, inputs in _eval_batches(host, task, loader, device, channels_last, progress, description, distributed):
        present = host.training_dropout(host.full_presence(inputs), generator)
        with torch.inference_mode(), _autocast(device, autocast_dtype):
            output = task.predict(host, inputs, present)
        task.update_metric(metric, output, batch)
    if distributed.enabled:
        metric = merge_states(task.new_metric(), distributed.gather(metric.state()))
    return metric.compute()
