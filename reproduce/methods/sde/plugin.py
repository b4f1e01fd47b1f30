"""The SDE plug-in (see the package docstring); torch is imported by the hooks, not by this module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, StepData, register_plugin

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext


@register_plugin("sde", kind="builtin")
class SDEPlugin(Plugin):
    """Spectral Disentanglement and Enhancement on the host's feature branches (package docstring)."""

    order = 20

    def __init__(self, options: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        super().__init__(None)
        self.sde_options = dict(options or {})
        self.seed = seed
        self.enhancer: Any = None
        self.epoch_terms: list[dict[str, Any]] = []  # this epoch's loss terms per step (device tensors, no sync)
        self.epoch_energy: list[dict[str, float]] = []  # the energy fractions of this epoch's logged steps

    @classmethod
    def from_run(cls, config: Any, runtime: Any) -> SDEPlugin | None:
        return cls(config.sde.options, seed=config.seed) if config.sde.enabled else None

    def setup(self, ctx: TrainContext, dependencies: Mapping[str, Any]) -> None:
        from reproduce.methods.sde.enhancer import BranchEnhancer

        self.enhancer = BranchEnhancer(ctx.host.feature_branches(), self.sde_options, seed=self.seed)

    def before_forward(self, ctx: TrainContext, inputs: Mapping[str, Any]) -> None:
        self.enhancer.begin_step(ctx.progress)

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        sde_loss, sde_parts = self.enhancer.loss(step.output)
        loss = loss + sde_loss
        sde_parts = {k if k.startswith("sde/") else f"sde/{k}": v.detach() for k, v in sde_parts.items()}
        self.epoch_terms.append(sde_parts)
        return loss, {**parts, **sde_parts, "loss/total": loss.detach()}

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        energy = self.enhancer.energy()
        self.epoch_energy.append(energy)
        values.update(energy)

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        """The epoch's mean loss terms (every step) and energy fractions (the logged steps), then a fresh epoch."""
        import torch

        means: dict[str, float] = {}
        if self.epoch_terms:
            for key in self.epoch_terms[0]:
                means[key] = float(torch.stack([p[key].float() for p in self.epoch_terms]).mean())
        if self.epoch_energy:
            for key in self.epoch_energy[0]:
                means[key] = sum(e[key] for e in self.epoch_energy) / len(self.epoch_energy)
        entry["sde"] = means
        ctx.tracker.log({f"epoch/{k}": v for k, v in means.items()}, step=ctx.global_step)
        self.epoch_terms, self.epoch_energy = [], []

    def process_state_dict(self) -> dict[str, Any]:
        return {"sde": self.enhancer.state_dict(), "epoch_terms": self.epoch_terms, "epoch_energy": self.epoch_energy}

    def load_process_state_dict(self, state: Mapping[str, Any]) -> None:
        self.enhancer.load_state_dict(state["sde"])
        self.epoch_terms, self.epoch_energy = list(state["epoch_terms"]), list(state["epoch_energy"])

    def describe(self) -> dict[str, Any]:
        return {"options": dict(self.sde_options), "feature_branches": list(self.enhancer.modalities)}
