"""The hook of ``modality_gradient_scale`` (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, register_plugin
from reproduce.methods.modality_gradient_scale.options import GradientScaleOptions

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext


@register_plugin("modality_gradient_scale")
class ModalityGradientScale(Plugin):
    """Each named modality's branch gradients times its fixed factor, after backward (package docstring)."""

    options_class = GradientScaleOptions

    def setup(self, ctx: TrainContext, dependencies: Mapping[str, Any]) -> None:
        branches = ctx.host.branches()
        unknown = sorted(set(self.options.scales) - set(branches))
        if unknown:
            raise ValueError(
                f"modality_gradient_scale: scales name {unknown}, which the host {type(ctx.host).__name__} has no "
                f"branch for; its branches: {sorted(branches)}"
            )
        self.parameters = {
            m: [p for p in branches[m].parameters() if p.requires_grad] for m in self.options.scales
        }

    def before_optimizer_step(self, ctx: TrainContext) -> None:
        if ctx.epoch < self.options.start_epoch:
            return
        for modality, factor in self.options.scales.items():
            for p in self.parameters[modality]:
                if p.grad is not None:
                    p.grad.mul_(factor)

    def describe(self) -> dict[str, Any]:
        return {"plugin": self.name, "scales": dict(self.options.scales), "start_epoch": self.options.start_epoch}
