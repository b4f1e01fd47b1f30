"""The optimiser and its learning-rate schedule, built together from a run's ``optim`` and ``schedule``."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from reproduce.runs.config import OptimConfig, ScheduleConfig
from reproduce.runs.schedules import factor_function, scheduler_steps_per_epoch


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


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: ScheduleConfig, iterations_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR`` over the schedule's factor, stepped once per epoch or once per iteration (``interval``)."""
    steps = scheduler_steps_per_epoch(schedule, iterations_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor_function(schedule, steps, epochs))


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
