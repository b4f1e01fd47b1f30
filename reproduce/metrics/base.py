"""The accumulator protocol every task metric of the harness follows (the metrics of Sec. A.4).

A metric is fed batch by batch with ``update(...)`` (tensors on any device), summarised with
``compute() -> dict[str, float]`` and cleared with ``reset()``. Each class names, as class attributes,
the key of its primary value in ``compute()``'s dict and the name the paper's tables print for it.
Values the paper prints as percentages (Acc, Dice, MIoU) are returned in percent; mAP50 is returned as a
fraction in [0, 1], as Table 12 prints it.

Sharded evaluation (several processes, DDP): ``state()`` is everything accumulated, as a dict of CPU
tensors that pickles (``torch.distributed.all_gather_object``), and ``merge(state)`` adds another
accumulator's state of the same class and configuration; ``merge_states`` merges a list of them in
order. Merged counts equal the counts of one accumulator fed every batch, so metrics computed from
counts come out bit-identical; each metric's ``merge`` says what it preserves when order matters.

NaN convention shared by all metrics: a ratio whose denominator is zero (no samples of a class, no
data at all) is NaN, never 0 or 1 by accident, and the docstring of each metric says when that happens.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

import torch

_REQUIRED = ("primary", "display_name")

State = dict[str, torch.Tensor]
M = TypeVar("M", bound="TaskMetric")


class TaskMetric(ABC):
    """Base class of the harness's metric accumulators: ``reset`` / ``update`` / ``compute`` / ``state`` / ``merge``.

    Subclasses must define the class attributes

    - ``primary``: the key of the headline value in ``compute()``'s dict (e.g. ``"acc"``, ``"wt"``);
    - ``display_name``: what the paper's tables call it (e.g. ``"Acc"``, ``"Dice"``, ``"MIoU"``, ``"mAP50"``);

    and are checked for them when the class is created.
    """

    primary: ClassVar[str]
    display_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in _REQUIRED if not hasattr(cls, name)]
        if missing:
            raise TypeError(f"{cls.__name__} must define the class attribute(s) {', '.join(missing)}")

    @abstractmethod
    def reset(self) -> None:
        """Forget everything accumulated so far."""

    @abstractmethod
    def update(self, *args: Any, **kwargs: Any) -> None:
        """Accumulate one batch."""

    @abstractmethod
    def compute(self) -> dict[str, float]:
        """Named values over everything accumulated since the last ``reset``; contains ``self.primary``."""

    @abstractmethod
    def state(self) -> State:
        """Everything accumulated so far as new CPU tensors (a snapshot: later updates leave it unchanged)."""

    @abstractmethod
    def merge(self, state: Mapping[str, torch.Tensor]) -> None:
        """Add another accumulator's ``state()``; ValueError for a state of another class or configuration."""


def merge_states(metric: M, states: Iterable[Mapping[str, torch.Tensor]]) -> M:
    """Merge ``states`` into ``metric`` one after the other (e.g. gathered from every rank, rank 0 first); returns
    ``metric``. Into a fresh accumulator this gives the accumulator of all shards, in the order of ``states``."""
    for state in states:
        metric.merge(state)
    return metric


def check_state(
    metric: TaskMetric,
    state: Mapping[str, torch.Tensor],
    layout: Mapping[str, tuple[torch.dtype, tuple[int | None, ...]]],
    config: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """ValueError unless ``state`` has exactly the keys of ``layout`` and ``config``, each a tensor of ``layout``'s
    dtype and shape (``None``: any size), and the values of ``config`` (the accumulator's own configuration)."""
    name = type(metric).__name__
    config = config or {}
    expected = set(layout) | set(config)
    if not isinstance(state, Mapping) or set(state) != expected:
        got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"{name}.merge: not a {name} state: expected keys {sorted(expected)}, got {got}")
    for key in sorted(expected):
        if not isinstance(state[key], torch.Tensor):
            raise ValueError(f"{name}.merge: state[{key!r}] must be a torch.Tensor, got {type(state[key]).__name__}")
    for key, (dtype, shape) in layout.items():
        value = state[key]
        if value.dtype != dtype:
            raise ValueError(f"{name}.merge: state[{key!r}] has dtype {value.dtype}, expected {dtype}")
        if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape, strict=True)):
            want = tuple("*" if s is None else s for s in shape)
            raise ValueError(
                f"{name}.merge: state[{key!r}] has shape {tuple(value.shape)}, expected {want} "
                f"(a state of a differently configured {name}?)"
            )
    for key, own in config.items():
        value = state[key]
        if value.dtype != own.dtype or value.shape != own.shape or not torch.equal(value.cpu(), own.cpu()):
            raise ValueError(
                f"{name}.merge: state of a differently configured {name}: {key} = {value.tolist()}, "
                f"this accumulator has {own.tolist()}"
            )


def ratio(numerator: float, denominator: float, scale: float = 1.0) -> float:
    """``scale * numerator / denominator``, or NaN when the denominator is zero (the shared NaN convention)."""
    if denominator == 0:
        return math.nan
    return scale * float(numerator) / float(denominator)
