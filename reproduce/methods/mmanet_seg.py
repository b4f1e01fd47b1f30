"""MMANet's segmentation training method (Wei et al., CVPR 2023) on NYU-Depth V2: ``method: {name: mmanet_seg}``.

What the authors' ``segmentation/train_missing_mmanet.py`` does, as hooks of the one trainer (facts in
docs/training.md, "NYU-Depth V2"). It shares with the classification method (``mmanet.py``) the teacher
dependency and its loading, and nothing else: the search, the weak set and the loss differ.

1. **Teacher.** The full-modality ESANet (host ``esanet``, MMANet's ``p = [1, 1]``): a dependency run of the
   registry (the student's run with the teacher host and seed, the standard method, no MWAM or SDE), frozen. The
   authors never switch it to eval mode, so its BatchNorm normalises with batch statistics and keeps updating its
   running statistics (``teacher_batchnorm: batch``, default, part of the method's checkpoint state); ``running``
   evaluates it in eval mode.
2. **Weak-combination search.** After each epoch of ``search_epochs`` (6-9) the student's MIoU with each single
   modality and with both on ``search_split`` (the authors' validation loader, which ESANet's ``prepare_data`` makes
   the *test* split on NYUv2) adds ``(MIoU_both - MIoU_single)^2`` per single modality; after ``begin_epoch`` (10)
   the largest sum names the weak combination, which alone is the weak set.
3. **Loss** from epoch ``begin_epoch + 1``: ``seg + lambda_distill * MAD + lambda_auxiliary * aux`` (A.3's
   alpha, beta = 4, 0.2): ``aux`` is the task's loss (all four outputs) of the auxiliary decoder on the samples
   whose applied mask is the weak combination (0 when there is none), ``MAD`` the pixel-level margin-aware
   distillation (:func:`reproduce.engine.distillation.pixel_margin_aware_distillation`) of the student's fused
   encoder outputs ``out``, ``skip3``, ``skip2`` (``HostOutput.extras["encoder"]``) towards the teacher's, each
   pooled to at most 30 x 40, weighted by the entropy of the teacher's 1/16 decoder feature
   (``extras["decoder"][2]``, the authors' ``pred_scales_t[6]``); a non-finite MAD counts 0, as theirs.

MWAM combines with it as with any host (``mwam: grad`` on the two encoders). This module imports no torch at
module level.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reproduce.methods.base import Dependency, FinishedRun, Method, check_run_overrides, register_method
from reproduce.methods.mmanet import RESERVED_TEACHER_SECTIONS, load_teacher, teacher_dependency
from reproduce.subsets import subset_key

log = logging.getLogger(__name__)

TEACHER_BATCHNORM = ("batch", "running")


@dataclass(frozen=True)
class MMANetSegOptions:
    """Options of MMANet-seg (``method.options``); defaults are the authors' NYUv2 settings
    (``train_missing_mmanet.py``, ``train_nyuv2_mmanet.sh``; A.3).

    teacher_host / teacher_host_options / teacher_run / teacher_seed: the frozen full-modality teacher's run (as in
        the classification method). teacher_batchnorm: ``batch`` (the authors' teacher, never put in eval mode) or
        ``running``.
    search_epochs, begin_epoch: the search after epochs 6-9, the weak combination fixed after epoch 10, the extra
        terms from epoch 11. search_split: where the search measures MIoU (the authors: the test split).
    lambda_distill, lambda_auxiliary: (alpha, beta) = (4.0, 0.2). grid: MAD's pooled size (30, 40).
    """

    teacher_host: str = "esanet"
    teacher_host_options: dict[str, Any] = field(default_factory=dict)
    teacher_run: dict[str, Any] = field(default_factory=dict)
    teacher_seed: int = 0
    teacher_batchnorm: str = "batch"
    search_epochs: tuple[int, ...] = (6, 7, 8, 9)
    begin_epoch: int = 10
    search_split: str = "test"
    lambda_distill: float = 4.0
    lambda_auxiliary: float = 0.2
    grid: tuple[int, int] = (30, 40)

    def __post_init__(self) -> None:
        if self.teacher_batchnorm not in TEACHER_BATCHNORM:
            raise ValueError(f"teacher_batchnorm must be one of {', '.join(TEACHER_BATCHNORM)}")
        object.__setattr__(self, "search_epochs", tuple(int(e) for e in self.search_epochs))
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        if not self.search_epochs or list(self.search_epochs) != sorted(set(self.search_epochs)):
            raise ValueError(f"search_epochs must be increasing, distinct and not empty, got {self.search_epochs}")
        if min(self.search_epochs) < 0 or max(self.search_epochs) > self.begin_epoch:
            raise ValueError(f"search_epochs {self.search_epochs} must lie in [0, begin_epoch={self.begin_epoch}]")
        if len(self.grid) != 2 or min(self.grid) < 1:
            raise ValueError(f"grid must be two positive sizes, got {self.grid}")
        for name in ("lambda_distill", "lambda_auxiliary"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        instead = "teacher_host / teacher_host_options / teacher_seed"
        check_run_overrides(self.teacher_run, "teacher_run", RESERVED_TEACHER_SECTIONS, instead)


@register_method("mmanet_seg")
class MMANetSeg(Method):
    """The task's loss plus MMANet-seg's teacher, search and terms (see the module docstring)."""

    options_class = MMANetSegOptions

    @classmethod
    def dependencies(cls, config: Any) -> dict[str, Dependency]:
        return {"teacher": teacher_dependency(config, config.method.resolved_options(), "MMANet-seg teacher")}

    def setup(self, trainer: Any, dependencies: Mapping[str, FinishedRun]) -> None:
        o = self.options
        if trainer.config.train.epochs <= o.begin_epoch + 1:
            raise ValueError(
                f"MMANet-seg: epochs={trainer.config.train.epochs} leaves no epoch after begin_epoch={o.begin_epoch}"
            )
        self.modalities = tuple(trainer.host.modalities)
        self.candidates = [*((m,) for m in self.modalities), self.modalities]
        self.distance = [0.0] * len(self.modalities)
        self.device = trainer.device
        self.weak = None
        self.teacher_run = dependencies["teacher"]
        self.teacher = load_teacher(trainer, self.teacher_run, train_mode=o.teacher_batchnorm == "batch")

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
    def loss(self, trainer: Any, inputs: Any, output: Any, batch: Any, ctx: Any, loss: Any, parts: dict) -> tuple:
        o = self.options
        if ctx.epoch <= o.begin_epoch and o.teacher_batchnorm == "running":
            return loss, parts
        import torch

        from models.host import HostOutput
        from reproduce.engine.distillation import pixel_margin_aware_distillation

        with torch.no_grad():  # the authors' teacher runs every step (its batch statistics move from the start)
            full = torch.ones(output.logits.shape[0], len(self.modalities), dtype=torch.bool, device=self.device)
            teacher = self.teacher(inputs, full)
        if ctx.epoch <= o.begin_epoch:
            return loss, parts
        extras = output.extras or {}
        missing = [k for k in ("encoder", "auxiliary") if k not in extras]
        if missing or output.present is None:
            raise ValueError(
                f"the MMANet-seg method needs a host returning extras['encoder'], extras['auxiliary'] and its applied "
                f"mask; {trainer.config.host.name!r} lacks {missing or ['present']} (use host 'mmanet_seg')"
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
        weak_batch = {"label": batch["label"].to(in_weak.device)[in_weak]}
        aux = trainer.task.loss(auxiliary, weak_batch, ctx).fused  # 0 without a weak sample (the weights' guard)
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
    def on_epoch_end(self, trainer: Any, epoch: int, entry: dict[str, Any]) -> None:
        o = self.options
        report: dict[str, Any] = {}
        if epoch in o.search_epochs:
            values = trainer.evaluate_subsets(
                o.search_split, subsets=self.candidates, description="MMANet-seg weak-combination search"
            )
            keys = [subset_key(s) for s in self.candidates]
            primary = trainer.task.new_metric().primary
            miou = {k: values[k][primary] for k in keys}
            for i, key in enumerate(keys[:-1]):
                gap = (miou[keys[-1]] - miou[key]) ** 2
                self.distance[i] += 0.0 if math.isnan(gap) else gap
            report["miou"] = miou
            report["distance"] = dict(zip(keys[:-1], self.distance, strict=True))
            trainer.tracker.log({f"mmanet/distance/{k}": v for k, v in report["distance"].items()}, trainer.global_step)
        if epoch == o.begin_epoch:
            self.weak = self.candidates[self.distance.index(max(self.distance))]
            report["weak"] = subset_key(self.weak)
            log.info("MMANet-seg weak combination: %s", report["weak"])
            trainer.tracker.summary({"mmanet/weak_combination": report["weak"]})
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
            "weak": subset_key(self.weak) if self.weak else None,
            "distance": dict(zip([subset_key(s) for s in self.candidates[:-1]], self.distance, strict=True)),
        }
