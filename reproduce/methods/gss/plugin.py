"""GSS's hooks (the package docstring says what they do)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Dependency, FinishedRun, Plugin, StepData, register_method
from reproduce.methods.gss.options import GSSOptions, stage_dependencies

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext

log = logging.getLogger(__name__)


def _sha256(path: str) -> str:
    """The file's SHA-256 (recorded beside its path: the run's key holds only the path)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@register_method("gss")
class GSS(Plugin):
    """The task's loss with GSS's weights plus the group self-support term, from the previous stage's weights (see
    the module docstring)."""

    options_class = GSSOptions

    @classmethod
    def dependencies(cls, config: Any) -> dict[str, Dependency]:
        return stage_dependencies(config)

    # ------------------------------------------------------------------ set-up
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, FinishedRun]) -> None:
        """Check the host and task, switch the fused term on from the first epoch, load the starting weights."""
        o = self.options
        modalities = tuple(ctx.host.modalities)
        unknown = sorted({m for g in o.groups for m in g} - set(modalities))
        if unknown:
            raise ValueError(f"GSS groups name modalities {unknown} the host {ctx.config.host.name!r} lacks")
        if len(o.groups) != ctx.task.num_classes:
            raise ValueError(
                f"GSS needs one teacher group per class: {ctx.task.num_classes} classes, {len(o.groups)} groups"
            )
        if not hasattr(ctx.task, "fused_loss_start_epoch"):
            raise ValueError(f"GSS trains a 3-D segmentation task, not {type(ctx.task).__name__}")
        ctx.task.fused_loss_start_epoch = 0  # train_GSS.py: the fused term from the first epoch
        self.source = self._load_start(ctx, dependencies)

    def _load_start(self, ctx: TrainContext, dependencies: Mapping[str, FinishedRun]) -> dict[str, Any]:
        """Load the starting weights into the run's host (a resumed run then loads its checkpoint over them)."""
        from reproduce.checkpoints import load_checkpoint

        o = self.options
        if o.init_weights is not None:
            state = load_checkpoint(o.init_weights, ctx.device)
            weights = state.get("host", state.get("state_dict", state))
            weights = {k.removeprefix("module."): v for k, v in weights.items()}
            try:
                ctx.host.load_state_dict(weights)
            except RuntimeError as error:
                host = ctx.config.host.name
                raise ValueError(f"GSS init_weights {o.init_weights}: not a {host} checkpoint: {error}") from None
            return {"init_weights": str(o.init_weights), "init_weights_sha256": _sha256(o.init_weights)}
        role = "previous" if o.stage > 1 else "init"
        start = dependencies[role]
        state = load_checkpoint(start.weights, ctx.device)
        if state.get("config_key") != start.config.key:
            raise ValueError(f"{start.weights} holds run {state.get('config_key')}, not {start.config.key}")
        ctx.host.load_state_dict(state["host"])
        return {role: start.config.key}

    # ------------------------------------------------------------------ loss
    def loss_terms(self, ctx: TrainContext, terms: Any) -> Any:
        """The separate decoders' terms times ``sep_weight`` (0.7)."""
        from reproduce.tasks.base import LossTerms

        weight = self.options.sep_weight
        return LossTerms(terms.fused, {m: weight * value for m, value in terms.per_modality.items()})

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        import torch

        from reproduce.methods.gss.group_self_support import group_soft_target, self_support_loss

        o = self.options
        aux = step.output.aux or {}
        missing = sorted(set(ctx.host.modalities) - set(aux))
        if missing:
            raise ValueError(
                f"GSS needs the separate decoders' logits of every modality (HostOutput.aux); "
                f"{ctx.config.host.name!r} returns none for {missing}"
            )
        logits = {m: aux[m].float() for m in ctx.host.modalities}
        softened = {m: torch.softmax(v / o.temperature, dim=1) for m, v in logits.items()}
        with torch.no_grad():
            probabilities = {m: torch.softmax(v, dim=1) for m, v in logits.items()}
            target = group_soft_target(
                probabilities,
                {m: v.detach() for m, v in softened.items()},
                o.groups,
                o.confident,
                o.others_confident,
                o.blend,
                o.target_rule,
            )
        soft = self_support_loss(softened, target, o.mask_ratio)
        total = loss + o.soft_weight * o.temperature**2 / 10.0 * soft
        parts.update({"loss/soft_sep": soft.detach(), "loss/total": total.detach()})
        return total, parts

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "method": "gss",
            "stage": o.stage,
            "target_rule": o.target_rule,
            "temperature": o.temperature,
            "sep_weight": o.sep_weight,
            "soft_weight": o.soft_weight,
            "groups": [list(g) for g in o.groups],
            **self.source,
        }
