"""The optimiser and its learning-rate schedule, built together from a run's ``optim`` and ``schedule``."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from reproduce.runs.config import OptimConfig, ScheduleConfig
from reproduce.runs.schedules import factor_function, momentum_at, scheduler_steps_per_epoch


def build_optimizer(parameters: Iterable[torch.nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov when asked and momentum > 0), Adam or AdamW with the configured settings."""
    if optim.name == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=optim.lr,
            momentum=optim.momentum,
            weight_decay=optim.weight_decay,
            nesterov=optim.nesterov and optim.momentum > 0,
        )
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optim.name]
    return cls(
        parameters,
        lr=optim.lr,
        betas=optim.betas,
        eps=optim.eps,
        weight_decay=optim.weight_decay,
        amsgrad=optim.amsgrad,
    )


class ScheduledLR(torch.optim.lr_scheduler.LambdaLR):
    """``LambdaLR`` over the schedule's factor that also sets the optimiser's momentum when the schedule cycles it
    (one-cycle with ``cycle_momentum``), after every step and after loading a state (so a resumed run has it)."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: ScheduleConfig, steps: int, epochs: int) -> None:
        self.momentum = lambda step: momentum_at(schedule, step, steps, epochs)
        super().__init__(optimizer, factor_function(schedule, steps, epochs))

    def _set_momentum(self) -> None:
        value = self.momentum(self.last_epoch)
        if value is None:
            return
        for group in self.optimizer.param_groups:
            if "momentum" not in group:
                raise ValueError("schedule.cycle_momentum needs an optimiser with momentum (sgd)")
            group["momentum"] = value

    def step(self, epoch: int | None = None) -> None:  # type: ignore[override]
        super().step() if epoch is None else super().step(epoch)
        self._set_momentum()

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.pop("momentum", None)  # a function of the schedule, rebuilt with the scheduler (not picklable)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._set_momentum()


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: ScheduleConfig, iterations_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule's factor (``LambdaLR``), stepped once per epoch or once per iteration (``interval``), and its
    momentum when it cycles it."""
    steps = scheduler_steps_per_epoch(schedule, iterations_per_epoch)
    return ScheduledLR(optimizer, schedule, steps, epochs)


def build_optimization(
    parameters: Iterable[torch.nn.Parameter],
    optim: OptimConfig,
    schedule: ScheduleConfig,
    iterations_per_epoch: int,
    epochs: int,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimiser over ``parameters`` and its scheduler."""
    optimizer = build_optimizer(parameters, optim)
    return optimizer, build_scheduler(optimizer, schedule, iterations_per_epoch, epochs)
