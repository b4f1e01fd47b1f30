"""What a training plug-in sees of a run: :class:`TrainContext` (a Protocol), and :class:`LoopContext`, a plain
implementation for loops that are not the engine's (ultralytics' trainer, a user's own loop, tests).

The engine's trainer offers the same interface through ``reproduce.engine.context.EngineContext``, whose values
follow the run as it trains; plug-ins never receive the trainer itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class TrainContext(Protocol):
    """A run in training, as the plug-ins see it.

    device, host (the unwrapped host), model (what the training forward pass goes through: the host, or its DDP
    wrapper), task, config (the ``RunConfig``), runtime, tracker (``log(values, step)``, ``summary(values)``),
    optimizer, distributed (rank, world size, collectives of ``reproduce.engine.distributed``), channels_last and
    autocast_dtype (how the engine runs the host), run_dir (where the run keeps its files; None outside the
    registry); the position -- epoch, step_in_epoch, global_step, epochs,
    steps_per_epoch and progress in [0, 1] -- and ``step`` (the same as the task's ``StepContext``); and
    ``evaluate_subsets``, the engine's missing-modality evaluation on a split; ``loader(split)``, a split's
    evaluation batches (in order, no augmentation: the training set as data to measure, e.g. CRMT's Lipschitz
    estimate, MSES's per-modality validation loss); ``finish_training(reason)``, ending training after the current
    epoch (MSES once every modality is stopped): the run is then evaluated and recorded as usual, with the epoch
    and the reason.
    """

    @property
    def device(self) -> Any: ...
    @property
    def host(self) -> Any: ...
    @property
    def model(self) -> Any: ...
    @property
    def task(self) -> Any: ...
    @property
    def config(self) -> Any: ...
    @property
    def runtime(self) -> Any: ...
    @property
    def tracker(self) -> Any: ...
    @property
    def optimizer(self) -> Any: ...
    @property
    def distributed(self) -> Any: ...
    @property
    def channels_last(self) -> bool: ...
    @property
    def autocast_dtype(self) -> Any: ...
    @property
    def run_dir(self) -> Any: ...
    @property
    def epoch(self) -> int: ...
    @property
    def step_in_epoch(self) -> int: ...
    @property
    def global_step(self) -> int: ...
    @property
    def epochs(self) -> int: ...
    @property
    def steps_per_epoch(self) -> int: ...
    @property
    def progress(self) -> float: ...
    @property
    def step(self) -> Any: ...

    def evaluate_subsets(
        self,
        split: str,
        subsets: Sequence[tuple[str, ...]] | None = None,
        new_metric: Callable[[], Any] | None = None,
        description: str | None = None,
    ) -> dict[str, dict[str, float]]: ...

    def loader(self, split: str) -> Any: ...

    def finish_training(self, reason: str) -> None: ...


class NullTracker:
    """A tracker that records nothing (``log``, ``log_table``, ``summary``, ``finish``)."""

    run_id = None

    def log(self, values: Mapping[str, Any], step: int) -> None:
        return None

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        return None

    def summary(self, values: Mapping[str, Any]) -> None:
        return None

    def finish(self) -> None:
        return None


class SingleProcess:
    """The one-process identity of ``reproduce.engine.distributed.Distributed`` (rank 0 of 1)."""

    rank, world_size, local_rank, enabled, is_main = 0, 1, 0, False, True

    def barrier(self) -> None:
        return None

    def any(self, flag: bool) -> bool:
        return bool(flag)

    def mean(self, value: float) -> float:
        return value

    def gather(self, value: Any) -> list[Any]:
        return [value]

    def broadcast(self, value: Any) -> Any:
        return value


@dataclass
class LoopContext:
    """A :class:`TrainContext` for a loop that is not the engine's: set the fields the plug-ins need and move the
    position (``epoch``, ``step_in_epoch``, ``global_step``) as the loop advances.

    ``evaluator`` is called as ``evaluator(split, subsets, new_metric, description)`` by :meth:`evaluate_subsets`
    (None: a plug-in that evaluates raises); ``loaders`` maps a split to an iterable of its batches (for
    :meth:`loader`). ``progress`` is computed from the position unless set. :meth:`finish_training` sets
    ``finished`` to its reason: the loop reads it after each epoch.
    """

    host: Any
    device: Any = "cpu"
    task: Any = None
    config: Any = None
    runtime: Any = None
    model: Any = None
    tracker: Any = field(default_factory=NullTracker)
    optimizer: Any = None
    distributed: Any = field(default_factory=SingleProcess)
    channels_last: bool = False
    autocast_dtype: Any = None
    run_dir: Any = None
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    epochs: int = 1
    steps_per_epoch: int = 1
    fixed_progress: float | None = None
    evaluator: Callable[..., dict[str, dict[str, float]]] | None = None
    loaders: Mapping[str, Any] = field(default_factory=dict)
    finished: str | None = None

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = self.host

    @property
    def progress(self) -> float:
        if self.fixed_progress is not None:
            return self.fixed_progress
        steps = max(self.steps_per_epoch, 1)
        return min((self.epoch + self.step_in_epoch / steps) / max(self.epochs, 1), 1.0)

    @property
    def step(self) -> Any:
        from reproduce.tasks.base import StepContext

        return StepContext(
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            global_step=self.global_step,
            progress=self.progress,
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
        )

    def evaluate_subsets(
        self,
        split: str,
        subsets: Sequence[tuple[str, ...]] | None = None,
        new_metric: Callable[[], Any] | None = None,
        description: str | None = None,
    ) -> dict[str, dict[str, float]]:
        if self.evaluator is None:
            raise RuntimeError("this LoopContext has no evaluator: a plug-in that evaluates needs one")
        return self.evaluator(split, subsets, new_metric, description)

    def loader(self, split: str) -> Any:
        if split not in self.loaders:
            raise RuntimeError(f"this LoopContext has no loader of split {split!r}; it has {sorted(self.loaders)}")
        return self.loaders[split]

    def finish_training(self, reason: str) -> None:
        self.finished = reason
