"""Learning-rate schedules as pure functions of the step (torch-free: the trainer and ``--dry-run`` share them).

A schedule gives the factor that multiplies the optimiser's base learning rate (``optim.lr``) at ``step``, the
number of scheduler steps taken so far: epochs when the schedule's ``interval`` is ``epoch`` (stepped once per
epoch, as the CASIA-SURF and BraTS hosts do), iterations when it is ``iteration``. The trainer wraps the factor in
``torch.optim.lr_scheduler.LambdaLR``.

- ``step``: learning rate 0 before epoch ``warmup_start`` S, a linear warm-up ``(epoch - S + 1) / W`` over the
  ``warmup_epochs`` W epochs from S on, then ``gamma ** (number of milestones <= epoch)``. The paper (A.3):
  "divided by 10 every 30 epochs" (SF-MD), "at epochs 16, 33 and 50" (MMANet), no warm-up (W = 0). The authors'
  MMANet code (``GradualWarmupScheduler(multiplier=1, total_epoch=5)`` over ``MultiStepLR([16, 33, 50])``,
  stepped with ``step(epoch=epoch)`` after each epoch) is S = 2, W = 5, milestones 22, 39, 56: epoch 1 at 0,
  epochs 2-5 at 0.2 .. 0.8, drops at 22, 39, 56 (``datasets/casia_surf`` names both as schedule presets).
- ``poly``: ``(1 - step / total) ** power`` (RFNet / mmFormer / GSS: ``lr * (1 - epoch / epochs) ** 0.9``).
- ``onecycle``: torch's ``OneCycleLR`` learning rate (two phases, ``anneal`` cosine or linear, ``pct_start``,
  ``div_factor``, ``final_div_factor``; ``optim.lr`` is the peak) and, with ``cycle_momentum`` (torch's default,
  which ESANet's and MMANet's NYUv2 scripts keep), its momentum: ``max_momentum`` down to ``base_momentum`` while
  the learning rate rises, back up while it falls (:func:`onecycle_momentum`; SGD's ``momentum`` is then
  overwritten at every scheduler step).
- ``constant``: 1.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

#: Per schedule, the ScheduleConfig fields it reads (besides ``name`` and ``interval``).
SCHEDULE_FIELDS: dict[str, tuple[str, ...]] = {
    "step": ("warmup_start", "warmup_epochs", "milestones", "gamma"),
    "poly": ("power",),
    "onecycle": (
        "pct_start",
        "div_factor",
        "final_div_factor",
        "anneal",
        "cycle_momentum",
        "base_momentum",
        "max_momentum",
    ),
    "constant": (),
}
INTERVALS = ("epoch", "iteration")
ANNEALS = ("cos", "linear")


def step_factor(
    step: int,
    steps_per_epoch: int,
    warmup_epochs: int,
    milestones: Sequence[int],
    gamma: float,
    warmup_start: int = 0,
) -> float:
    """0 before epoch ``warmup_start``, a linear warm-up over ``warmup_epochs`` epochs, then ``gamma`` at each
    milestone epoch. With one step per epoch: ``(epoch - warmup_start + 1) / warmup_epochs`` during the warm-up,
    ``gamma ** bisect_right(milestones, epoch)`` afterwards."""
    start = warmup_start * steps_per_epoch
    if step < start:
        return 0.0
    if step < start + warmup_epochs * steps_per_epoch:
        return (step - start + 1) / (warmup_epochs * steps_per_epoch)
    return gamma ** bisect.bisect_right(list(milestones), step // steps_per_epoch)


def poly_factor(step: int, total_steps: int, power: float) -> float:
    """``(1 - step / total_steps) ** power``, 0 from ``total_steps`` on."""
    return max(1.0 - step / total_steps, 0.0) ** power


def _anneal(start: float, end: float, fraction: float, kind: str) -> float:
    if kind == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
    return (end - start) * fraction + start


def onecycle_factor(
    step: int, total_steps: int, pct_start: float, div_factor: float, final_div_factor: float, anneal: str
) -> float:
    """torch's ``OneCycleLR`` (``three_phase=False``) learning rate at ``step`` divided by its peak."""
    initial = 1.0 / div_factor
    minimum = initial / final_div_factor
    phase_end = float(pct_start * total_steps) - 1
    last = float(total_steps - 1)
    if step <= phase_end:
        return _anneal(initial, 1.0, step / phase_end if phase_end > 0 else 1.0, anneal)
    return _anneal(1.0, minimum, (step - phase_end) / (last - phase_end), anneal)


def onecycle_momentum(step: int, total_steps: int, pct_start: float, base: float, maximum: float, anneal: str) -> float:
    """torch's ``OneCycleLR(cycle_momentum=True)`` momentum at ``step``: ``maximum`` -> ``base`` over the first
    phase, ``base`` -> ``maximum`` over the second."""
    phase_end = float(pct_start * total_steps) - 1
    last = float(total_steps - 1)
    if step <= phase_end:
        return _anneal(maximum, base, step / phase_end if phase_end > 0 else 1.0, anneal)
    return _anneal(base, maximum, (step - phase_end) / (last - phase_end), anneal)


def momentum_at(schedule: Any, step: int, steps_per_epoch: int, epochs: int) -> float | None:
    """The momentum ``schedule`` sets after ``step`` scheduler steps; None when it leaves momentum alone."""
    if schedule.name != "onecycle" or not schedule.cycle_momentum:
        return None
    total = epochs * steps_per_epoch
    return onecycle_momentum(
        step, total, schedule.pct_start, schedule.base_momentum, schedule.max_momentum, schedule.anneal
    )


def lr_factor(schedule: Any, step: int, steps_per_epoch: int, epochs: int) -> float:
    """The factor of ``schedule`` (a ``ScheduleConfig``) after ``step`` scheduler steps; ``steps_per_epoch`` is the
    number of scheduler steps in an epoch (1 for ``interval: epoch``)."""
    total = epochs * steps_per_epoch
    if schedule.name == "step":
        return step_factor(
            step, steps_per_epoch, schedule.warmup_epochs, schedule.milestones, schedule.gamma, schedule.warmup_start
        )
    if schedule.name == "poly":
        return poly_factor(step, total, schedule.power)
    if schedule.name == "onecycle":
        return onecycle_factor(
            step, total, schedule.pct_start, schedule.div_factor, schedule.final_div_factor, schedule.anneal
        )
    if schedule.name == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {schedule.name!r}; known: {sorted(SCHEDULE_FIELDS)}")


def scheduler_steps_per_epoch(schedule: Any, iterations_per_epoch: int) -> int:
    """How many times the scheduler steps in an epoch: once (``interval: epoch``) or once per iteration."""
    return 1 if schedule.interval == "epoch" else iterations_per_epoch


def epoch_start_lr(schedule: Any, base_lr: float, epoch: int, epochs: int, iterations_per_epoch: int) -> float:
    """The learning rate epoch ``epoch`` starts with."""
    steps = scheduler_steps_per_epoch(schedule, iterations_per_epoch)
    return base_lr * lr_factor(schedule, epoch * steps, steps, epochs)


def factor_function(schedule: Any, steps_per_epoch: int, epochs: int) -> Callable[[int], float]:
    """``step -> factor`` for ``torch.optim.lr_scheduler.LambdaLR``."""
    return lambda step: lr_factor(schedule, step, steps_per_epoch, epochs)


def lr_per_epoch(schedule: Any, base_lr: float, epochs: int, iterations_per_epoch: int) -> list[float | None]:
    """The learning rate each epoch starts with (what ``--dry-run`` prints): epoch ``e`` trains from step ``e``
    (``interval: epoch``) or ``e * iterations_per_epoch`` (``interval: iteration``); None for the epochs the
    schedule skips (``skip_epochs``: the authors' ``if epoch == 0: continue``), which train no batch."""
    return [
        None if epoch < schedule.skip_epochs else epoch_start_lr(schedule, base_lr, epoch, epochs, iterations_per_epoch)
        for epoch in range(epochs)
    ]
