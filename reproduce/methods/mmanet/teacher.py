"""A frozen teacher from its finished run (MMANet, MMANet-seg)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reproduce.methods.base import FinishedRun

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext


def load_teacher(ctx: TrainContext, teacher: FinishedRun, train_mode: bool = False) -> Any:
    """The teacher host from its run's final weights, frozen (no gradients), in eval mode unless ``train_mode``
    (batch-statistics BatchNorm, as MMANet-seg's code leaves it); building it does not shift the student's random
    stream (the student trains the same whatever was built beside it)."""
    import torch

    from mwam_harness import models
    from reproduce.checkpoints import load_checkpoint, rng_state, set_rng_state

    state = load_checkpoint(teacher.weights, ctx.device)
    if state.get("config_key") != teacher.config.key:
        raise ValueError(f"{teacher.weights} holds run {state.get('config_key')}, not the teacher {teacher.config.key}")
    saved = rng_state()
    host = models.build(teacher.config.host.name, **teacher.config.host.options)
    set_rng_state(saved)
    host.load_state_dict(state["host"])
    host.to(ctx.device).train(train_mode)
    if ctx.channels_last:
        host = host.to(memory_format=torch.channels_last)
    for p in host.parameters():
        p.requires_grad_(False)
    return host
