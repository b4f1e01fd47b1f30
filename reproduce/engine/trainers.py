"""Training methods by name (the run's ``trainer``): subclasses of :class:`Trainer` that override its hooks.

``standard``: the task's loss, with MWAM as configured. ``mmanet``: MMANet's distillation method
(``reproduce.engine.mmanet``). A method's options are a dataclass (``options_class``); options equal to their
defaults are dropped from the run's configuration, so they do not change its registry key.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reproduce.engine.mmanet import MMANetTrainer
from reproduce.engine.trainer import StepCallback, Trainer
from reproduce.runs.config import RunConfig
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
    known = {f.name for f in dataclasses.fields(options_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"trainer_options of {name!r}: unknown options {unknown}; known: {sorted(known)}")
    checked = options_class(**options)
    defaults = options_class()
    out = {}
    for key in sorted(options):
        value = getattr(checked, key)
        if value != getattr(defaults, key):
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def build_trainer(
    config: RunConfig,
    registry: Registry | None = None,
    wandb_mode: str | None = None,
    callbacks: list[StepCallback] | None = None,
) -> Trainer:
    """The trainer of ``config.trainer`` for ``config``."""
    return TRAINERS[config.trainer](config, registry, wandb_mode=wandb_mode, callbacks=callbacks)
