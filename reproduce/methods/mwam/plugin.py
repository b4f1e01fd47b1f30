"""The MWAM plug-in (see the package docstring); torch is imported by the hooks, not by this module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, register_plugin

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext

#: Interventions that rescale branch gradients, and those that weight the per-modality loss terms (Eq. 7).
GRADIENT_INTERVENTIONS = ("grad", "hybrid")
LOSS_INTERVENTIONS = ("loss", "hybrid")


@register_plugin("mwam", kind="builtin")
class MWAMPlugin(Plugin):
    """MWAM measured every step and applied as its intervention says (package docstring).

    intervention: ``none`` / ``grad`` / ``loss`` / ``hybrid``; options: ``mwam.MWAMConfig`` overrides; deferred:
    apply the gradient edit in ``before_optimizer_step`` (mean K of the micro-batches measured since the last
    optimiser step) instead of through tensor hooks during backward.
    """

    order = 10

    def __init__(
        self, intervention: str = "none", options: Mapping[str, Any] | None = None, deferred: bool = False
    ) -> None:
        super().__init__(None)
        self.intervention = intervention
        self.mwam_options = dict(options or {})
        self.deferred = deferred
        self.mwam: Any = None
        self.window: list[Any] = []
        self.applied: Any = None

    @classmethod
    def from_run(cls, config: Any, runtime: Any) -> MWAMPlugin | None:
        settings = config.mwam
        if settings.intervention == "off":
            return None
        return cls(settings.intervention, settings.options)

    # ------------------------------------------------------------------ hooks
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, Any]) -> None:
        """MWAM on the host's branches (gradient interventions) or on its modalities alone (measuring, Eq. 7), reading
        the inputs in the host's ``input_layouts()`` (a run's ``options.layouts`` overrides them per modality)."""
        from mwam import MWAM

        host = ctx.host
        options = dict(self.mwam_options)
        # the host's input layouts (Host.input_layouts: e.g. video clips), the run's options.layouts overriding them
        declared = host.input_layouts() if hasattr(host, "input_layouts") else {}
        layouts = {**declared, **dict(options.get("layouts") or {})}
        if layouts:
            options["layouts"] = layouts
        if self.intervention in GRADIENT_INTERVENTIONS:
            mwam = MWAM(
                modalities=host.modalities,
                branches=host.branches(),
                intervention=self.intervention,
                gradient_hooks=not self.deferred,
                **options,
            )
        else:
            mwam = MWAM(modalities=host.modalities, intervention=self.intervention, **options)
        self.mwam = mwam.to(ctx.device)

    def before_forward(self, ctx: TrainContext, inputs: Mapping[str, Any]) -> None:
        """FRM of the step's inputs -> bank -> T -> K (Alg. 1 lines 3-5); deferred: K kept for the optimiser step."""
        self.mwam.step(inputs)
        if self.deferred:
            self.window.append(self.mwam.grad_scale.clone())

    def combine_terms(self, ctx: TrainContext, terms: Any) -> Any:
        """Eq. 7, ``L = L(y, y_o) + sum_i K_i L(y, y_i)``, under ``loss`` / ``hybrid`` when the host has per-modality
        terms; otherwise None (the plain sum)."""
        if self.intervention not in LOSS_INTERVENTIONS or not terms.per_modality:
            return None
        return self.mwam.weighted_loss(terms.fused, terms.per_modality)

    def before_optimizer_step(self, ctx: TrainContext) -> None:
        """Deferred only: the accumulated branch gradients times the mean K of the measured micro-batches."""
        if not self.deferred or self.intervention not in GRADIENT_INTERVENTIONS or not self.window:
            return
        import torch

        scale = torch.stack(self.window).mean(0)
        self.window.clear()
        self.mwam.scale_gradients(scale)
        self.applied = scale

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        values.update(self.mwam.record().log_dict())
        if self.applied is not None:
            applied = zip(self.mwam.modalities, self.applied, strict=True)
            values.update({f"mwam/K_applied/{m}": float(k) for m, k in applied})

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return self.mwam.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.mwam.load_state_dict(state)

    def describe(self) -> dict[str, Any]:
        return {"intervention": self.intervention, "options": dict(self.mwam_options), "deferred": self.deferred}
