"""Training methods by name (the run's ``trainer``): subclasses of :class:`Trainer` that override its hooks.

``standard``: the task's loss, with MWAM as configured. ``mmanet``: MMANet's distillation method
(``reproduce.engine.mmanet``). A method's options are a dataclass (``options_class``); options equal to their
defaults are dropped from the run's configuration, so they do not change its registry key.
"""

from __future__ import annotations

from typing import Any

from reproduce.engine.mmanet import MMANetTrainer
from reproduce.engine.trainer import StepCallback, Trainer
from reproduce.runs.config import RunConfig, options_without_defaults
from reproduce.runs.registry import Registry

TRAINERS: dict[str, type[Trainer]] = {"standard": Trainer, "mmanet": MMANetTrainer}


def check_trainer(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Validate ``options`` for method ``name``; returns them without the entries equal to their defaults."""
    if name not in TRAINERS:
        raise ValueError(f"unknown trainer {name!r}; known: {sorted(TRAINERS)}")
    options_class = TRAINERS[name].options_class
    if options_class is None:
        if options:
            raise ValueError(f"trainer {name!r} takes no trainer_options, got {sorted(options)}")
        return {}
    return options_without_defaults(options_class, options, f"trainer_options of {name!r}")


def build_trainer(
    config: RunConfig,
    registry: Registry | None = None,
    wandb_mode: str | None = None,
    callbacks: list[StepCallback] | None = None,
) -> Trainer:
    """The trainer of ``config.trainer`` for ``config``."""
    return TRAINERS[config.trainer](config, registry, wandb_mode=wandb_mode, callbacks=callbacks)
