"""The hook of ``validation_loss`` (see the package docstring). Torch is imported inside the hook: importing the
plug-in (the catalog does, to validate a run) loads no torch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, register_plugin
from reproduce.methods.validation_loss.options import ValidationLossOptions

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext

log = logging.getLogger(__name__)


def split_loss(ctx: TrainContext, split: str) -> float:
    """The mean per-sample loss of the fused prediction on ``split`` (complete inputs, host in eval mode, its mode
    restored), merged over the processes; NaN for an empty split."""
    from contextlib import nullcontext

    import torch

    host, task, device = ctx.host, ctx.task, ctx.device
    dtype = ctx.autocast_dtype
    autocast = torch.autocast(torch.device(device).type, dtype=dtype) if dtype is not None else nullcontext()
    was_training = host.training
    host.eval()
    total, count = 0.0, 0
    try:
        with torch.inference_mode():
            for batch in ctx.loader(split):
                inputs = task.inputs(batch, device)
                if ctx.channels_last:  # as the engine runs the host (reproduce.engine.evaluation.to_channels_last)
                    inputs = {m: x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
                              for m, x in inputs.items()}  # fmt: skip
                present = host.full_presence(inputs)
                with autocast:
                    output = task.predict(host, inputs, present)
                losses = task.per_sample_loss(output.logits.float(), batch)
                total += float(losses.double().sum())
                count += int(losses.numel())
    finally:
        host.train(was_training)
    parts = ctx.distributed.gather((total, count))
    total, count = sum(p[0] for p in parts), sum(p[1] for p in parts)
    return total / count if count else float("nan")


@register_plugin("validation_loss")
class ValidationLoss(Plugin):
    """The fused prediction's mean loss on the validation split, per epoch, into the history (package docstring)."""

    options_class = ValidationLossOptions

    def __init__(self, options: ValidationLossOptions | None = None) -> None:
        super().__init__(options if options is not None else ValidationLossOptions())

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        key = self.options.key
        value = split_loss(ctx, self.options.split)
        entry[key] = value
        ctx.tracker.log({f"epoch/{key}": value}, step=ctx.global_step)
        if ctx.distributed.is_main:
            log.info("epoch %d: %s %.6f", epoch, key, value)

    def describe(self) -> dict[str, Any]:
        return {"plugin": self.name, "split": self.options.split}
