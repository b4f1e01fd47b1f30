"""The engine's :class:`~reproduce.methods.context.TrainContext`: what the plug-ins of a run see of the trainer --
its device, host, task, configuration, tracker, optimiser, position and evaluation -- read live from the trainer,
which the plug-ins never receive themselves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reproduce.engine.trainer import Trainer


class EngineContext:
    """A read-only view of one :class:`~reproduce.engine.trainer.Trainer` (the ``TrainContext`` protocol)."""

    __slots__ = ("_trainer",)

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer

    # ------------------------------------------------------------------ the run
    @property
    def device(self) -> Any:
        return self._trainer.device

    @property
    def host(self) -> Any:
        return self._trainer.host

    @property
    def model(self) -> Any:
        """What the training forward pass goes through (the host, or its DDP wrapper once built)."""
        return getattr(self._trainer, "model", self._trainer.host)

    @property
    def task(self) -> Any:
        return self._trainer.task

    @property
    def config(self) -> Any:
        return self._trainer.config

    @property
    def runtime(self) -> Any:
        return self._trainer.runtime

    @property
    def tracker(self) -> Any:
        return self._trainer.tracker

    @property
    def optimizer(self) -> Any:
        return getattr(self._trainer, "optimizer", None)

    @property
    def distributed(self) -> Any:
        return self._trainer.dist

    @property
    def channels_last(self) -> bool:
        return self._trainer.channels_last

    @property
    def autocast_dtype(self) -> Any:
        return self._trainer.autocast_dtype

    @property
    def run_dir(self) -> Path:
        """Where the run keeps its files (``<results>/runs/<key>/``)."""
        return self._trainer.run_dir

    # ------------------------------------------------------------------ the position
    @property
    def epoch(self) -> int:
        return self._trainer.epoch

    @property
    def step_in_epoch(self) -> int:
        return self._trainer.step_in_epoch

    @property
    def global_step(self) -> int:
        return self._trainer.global_step

    @property
    def epochs(self) -> int:
        return self._trainer.config.train.epochs

    @property
    def steps_per_epoch(self) -> int:
        return self._trainer.sampler.batches_per_epoch

    @property
    def progress(self) -> float:
        return self._trainer.progress

    @property
    def step(self) -> Any:
        """The position as the task's ``StepContext``."""
        return self._trainer.step_context()

    # ------------------------------------------------------------------ evaluation
    def evaluate_subsets(
        self,
        split: str,
        subsets: Sequence[tuple[str, ...]] | None = None,
        new_metric: Callable[[], Any] | None = None,
        description: str | None = None,
    ) -> dict[str, dict[str, float]]:
        """``subsets`` (default: every subset of the run's modalities) on ``split``, sharded over the processes and
        merged, with the host in eval mode (its mode restored)."""
        return self._trainer.evaluate_subsets(split, list(subsets) if subsets is not None else None, new_metric,
                                              description)  # fmt: skip

    def loader(self, split: str) -> Any:
        """``split``'s evaluation loader: every sample in order, no augmentation, this process's shard."""
        return self._trainer.eval_loader(split)

    def finish_training(self, reason: str) -> None:
        """End training after the current epoch (agreed on by every process); the run is then evaluated and
        recorded, with the epoch and ``reason`` in its history and result."""
        self._trainer.request_finish(reason)
