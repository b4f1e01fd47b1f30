"""MMANet-seg's hooks (the package docstring says what they do)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Dependency, FinishedRun, Plugin, StepData, register_method
from reproduce.methods.mmanet.options import teacher_dependency
from reproduce.methods.mmanet.teacher import load_teacher
from reproduce.methods.mmanet_seg.options import MMANetSegOptions
from reproduce.subsets import subset_key

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext

log = logging.getLogger(__name__)


@register_method("mmanet_seg")
class MMANetSeg(Plugin):
    """The task's loss plus MMANet-seg's teacher, search and terms (see the module docstring)."""

    options_class = MMANetSegOptions

    @classmethod
    def dependencies(cls, config: Any) -> dict[str, Dependency]:
        import dataclasses

        from reproduce.runs.overrides import deep_merge

        o = config.method.resolved_options()
        # teacher_select sets the teacher run's eval.select (teacher_run, the user's own overrides, on top of it).
        o = dataclasses.replace(o, teacher_run=deep_merge({"eval": o.teacher_eval()}, o.teacher_run))
        return {"teacher": teacher_dependency(config, o, "MMANet-seg teacher")}

    def setup(self, ctx: TrainContext, dependencies: Mapping[str, FinishedRun]) -> None:
        o = self.options
        if ctx.config.train.epochs <= o.begin_epoch + 1:
            raise ValueError(
                f"MMANet-seg: epochs={ctx.config.train.epochs} leaves no epoch after begin_epoch={o.begin_epoch}"
            )
        self.modalities = tuple(ctx.host.modalities)
        self.candidates = [*((m,) for m in self.modalities), self.modalities]
        self.distance = [0.0] * len(self.modalities)
        self.device = ctx.device
        self.weak = None
        self.teacher_run = dependencies["teacher"]
        self.teacher = load_teacher(ctx, self.teacher_run, train_mode=o.teacher_batchnorm == "batch")

    @property
    def weak(self) -> tuple[str, ...] | None:
        """The weak combination (None until chosen after ``begin_epoch``)."""
        return self._weak

    @weak.setter
    def weak(self, value: tuple[str, ...] | None) -> None:
        """Also builds ``weak_row`` (M,) on the device once, not at every step."""
        import torch

        self._weak = None if value is None else tuple(value)
        self.weak_row = None
        if self._weak is not None:
            self.weak_row = torch.tensor([m in self._weak for m in self.modalities], device=self.device)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"distance": list(self.distance), "weak": self.weak}
        if self.options.teacher_batchnorm == "batch":  # its running statistics move: keep them for exact resume
            state["teacher_buffers"] = {k: v.clone() for k, v in self.teacher.named_buffers()}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.distance = list(state["distance"])
        self.weak = state["weak"]
        buffers = dict(self.teacher.named_buffers())
        for name, value in state.get("teacher_buffers", {}).items():
            buffers[name].copy_(value)

    # ------------------------------------------------------------------ loss
    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        o = self.options
        output = step.output
        if ctx.epoch <= o.begin_epoch and o.teacher_batchnorm == "running":
            return loss, parts
        import torch

        from mwam_harness.models.host import HostOutput
        from reproduce.methods.mmanet.distillation import pixel_margin_aware_distillation

        with torch.no_grad():  # the authors' teacher runs every step (its batch statistics move from the start)
            full = torch.ones(output.logits.shape[0], len(self.modalities), dtype=torch.bool, device=self.device)
            teacher = self.teacher(step.inputs, full)
        if ctx.epoch <= o.begin_epoch:
            return loss, parts
        extras = output.extras or {}
        missing = [k for k in ("encoder", "auxiliary") if k not in extras]
        if missing or output.present is None:
            raise ValueError(
                f"the MMANet-seg method needs a host returning extras['encoder'], extras['auxiliary'] and its applied "
                f"mask; {ctx.config.host.name!r} lacks {missing or ['present']} (use host 'mmanet_seg')"
            )
        scores = teacher.extras["decoder"][2]
        distill = sum(
            pixel_margin_aware_distillation(s, t, scores, o.grid)
            for s, t in zip(extras["encoder"], teacher.extras["encoder"], strict=True)
        )
        distill = torch.where(torch.isfinite(distill), distill, torch.zeros_like(distill))
        in_weak = (output.present == self.weak_row.to(output.present.device)).all(dim=1)
        auxiliary = HostOutput(
            extras["auxiliary"][in_weak], extras={"side": [s[in_weak] for s in extras.get("auxiliary_side") or []]}
        )
        weak_batch = {"label": ctx.task.target(step.batch, in_weak.device)[in_weak]}
        aux = ctx.task.loss(auxiliary, weak_batch, ctx.step).fused  # 0 without a weak sample (the weights' guard)
        total = loss + o.lambda_distill * distill + o.lambda_auxiliary * aux
        parts.update(
            {
                "loss/distill": distill.detach(),
                "loss/auxiliary": aux.detach(),
                "mmanet/weak_fraction": in_weak.float().mean().detach(),
                "loss/total": total.detach(),
            }
        )
        return total, parts

    # ------------------------------------------------------------------ search
    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        o = self.options
        report: dict[str, Any] = {}
        if epoch in o.search_epochs:
            values = ctx.evaluate_subsets(
                o.search_split, subsets=self.candidates, description="MMANet-seg weak-combination search"
            )
            keys = [subset_key(s) for s in self.candidates]
            primary = ctx.task.new_metric().primary
            miou = {k: values[k][primary] for k in keys}
            for i, key in enumerate(keys[:-1]):
                gap = (miou[keys[-1]] - miou[key]) ** 2
                self.distance[i] += 0.0 if math.isnan(gap) else gap
            report["miou"] = miou
            report["distance"] = dict(zip(keys[:-1], self.distance, strict=True))
            ctx.tracker.log({f"mmanet/distance/{k}": v for k, v in report["distance"].items()}, ctx.global_step)
        if epoch == o.begin_epoch:
            self.weak = self.candidates[self.distance.index(max(self.distance))]
            report["weak"] = subset_key(self.weak)
            log.info("MMANet-seg weak combination: %s", report["weak"])
            ctx.tracker.summary({"mmanet/weak_combination": report["weak"]})
        if report:
            entry["mmanet"] = report

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "method": "mmanet_seg",
            "lambda_distill": o.lambda_distill,
            "lambda_auxiliary": o.lambda_auxiliary,
            "search_epochs": list(o.search_epochs),
            "begin_epoch": o.begin_epoch,
            "search_split": o.search_split,
            "teacher_batchnorm": o.teacher_batchnorm,
            "teacher_run": self.teacher_run.config.key,
            "teacher_select": o.teacher_select,
            "teacher_selection": self.teacher_run.result.get("selection"),  # which epoch the teacher's weights are
            "weak": subset_key(self.weak) if self.weak else None,
            "distance": dict(zip([subset_key(s) for s in self.candidates[:-1]], self.distance, strict=True)),
        }
