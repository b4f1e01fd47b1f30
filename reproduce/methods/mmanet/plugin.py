"""MMANet's hooks (the package docstring says what they do), its auxiliary term and the search's divergence."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Dependency, FinishedRun, Plugin, StepData, register_method
from reproduce.methods.mmanet.options import AUX_LOSSES, MMANetOptions, candidate_subsets, teacher_dependency
from reproduce.methods.mmanet.teacher import load_teacher
from reproduce.subsets import subset_key

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext

log = logging.getLogger(__name__)


def auxiliary_loss(per_sample: Any, in_weak_set: Any, mode: str) -> Any:
    """MMANet's auxiliary (weak-combination) term from the (B,) auxiliary cross-entropies and the (B,) bool "sample's
    subset is in the weak set".

    ``intended``: ``sum_i CE_i [i weak] / B`` (MMANet paper, Eq. 14). ``released``: ``n_weak * mean_i CE_i``, what
    the authors' ``x_loss_batch * weak_index`` with ``weak_index`` of shape (B, 1, 1, 1) sums to (summed over the
    weak set's combinations, each weak sample counted once; their three auxiliary passes give identical logits).
    """
    batch = per_sample.shape[0]
    if mode == "intended":
        return (per_sample * in_weak_set).sum() / batch
    if mode == "released":
        return in_weak_set.sum() * per_sample.sum() / batch
    raise ValueError(f"aux_loss must be one of {', '.join(AUX_LOSSES)}; got {mode!r}")


def histogram_divergence(histogram: Any, reference: Any) -> float:
    """``KL(softmax(histogram) || softmax(reference))``, as the authors' ``F.kl_div(log_softmax(ref),
    softmax(h))`` computes it (Eq. 12-13 of the MMANet paper)."""
    import torch.nn.functional as F

    p = F.softmax(histogram.double(), dim=0)
    return float((p * (p.log() - F.log_softmax(reference.double(), dim=0))).sum())


@register_method("mmanet")
class MMANet(Plugin):
    """The standard loss plus MMANet's teacher, weak-combination search and loss (see the module docstring).

    Not reproduced, without effect: the authors run ``auxi_bone`` three times per training step on the same input
    (one copy per weak combination). The three outputs are identical, so the loss and the gradients equal one pass
    with the summed loss; only the auxiliary trunk's BatchNorm running statistics are updated three times, and they
    are never read (the trunk runs in training only, with batch statistics). Tested in ``tests/test_mmanet.py``."""

    options_class = MMANetOptions

    # ------------------------------------------------------------------ planning
    @classmethod
    def dependencies(cls, config: Any) -> dict[str, Dependency]:
        """The teacher: the student's run with the teacher host and seed, the standard method, no MWAM or SDE, and
        ``teacher_run`` on top."""
        return {"teacher": teacher_dependency(config, config.method.resolved_options())}

    # ------------------------------------------------------------------ set-up and state
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, FinishedRun]) -> None:
        o = self.options
        epochs = ctx.config.train.epochs
        if epochs <= o.begin_epoch + 1:
            raise ValueError(
                f"MMANet: epochs={epochs} leaves no epoch after begin_epoch={o.begin_epoch}; "
                "lower begin_epoch / search_epochs in method.options or train longer"
            )
        self.device = ctx.device
        self.modalities = tuple(ctx.host.modalities)
        self.candidates = candidate_subsets(self.modalities)
        self.divergence = [0.0] * (len(self.candidates) - 1)
        self.weak_set = None
        self.teacher_run = dependencies["teacher"]
        self.teacher = self._load_teacher(ctx, self.teacher_run)

    def _load_teacher(self, ctx: TrainContext, teacher: FinishedRun) -> Any:
        return load_teacher(ctx, teacher)

    def state_dict(self) -> dict[str, Any]:
        return {"divergence": list(self.divergence), "weak_set": self.weak_set}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.divergence = list(state["divergence"])
        self.weak_set = state["weak_set"]

    @property
    def weak_set(self) -> list[tuple[str, ...]] | None:
        """The weak combination and its single modalities (None until chosen after ``begin_epoch``)."""
        return self._weak_set

    @weak_set.setter
    def weak_set(self, value: list[tuple[str, ...]] | None) -> None:
        """Also builds ``weak_masks`` (W, M) on the device once, not at every step."""
        import torch

        self._weak_set = None if value is None else [tuple(s) for s in value]
        self.weak_masks = None
        if self._weak_set is not None:
            rows = [[m in s for m in self.modalities] for s in self._weak_set]
            self.weak_masks = torch.tensor(rows, dtype=torch.bool, device=self.device)

    # ------------------------------------------------------------------ loss
    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        if ctx.epoch <= self.options.begin_epoch:
            return loss, parts
        import torch

        from reproduce.methods.mmanet.distillation import margin_aware_distillation

        output = step.output
        extras = output.extras or {}
        missing = [k for k in ("layer4", "auxiliary") if k not in extras]
        if missing or output.present is None:
            raise ValueError(
                f"the MMANet method needs a host that returns extras['layer4'], extras['auxiliary'] and its applied "
                f"mask (HostOutput.present); {ctx.config.host.name!r} lacks {missing or ['present']} "
                "(use host 'mmanet')"
            )
        with torch.no_grad():
            teacher = self.teacher(step.inputs, None)
        distill = margin_aware_distillation(extras["layer4"], teacher.extras["layer4"], teacher.logits)
        per_sample = ctx.task.per_sample_loss(extras["auxiliary"], step.batch)
        in_weak_set = (output.present[:, None, :] == self.weak_masks[None]).all(dim=2).any(dim=1)
        o = self.options
        auxiliary = auxiliary_loss(per_sample, in_weak_set, o.aux_loss)
        total = loss + o.lambda_auxiliary * auxiliary + o.lambda_distill * distill
        parts.update(
            {
                "loss/auxiliary": auxiliary.detach(),
                "loss/distill": distill.detach(),
                "mmanet/weak_fraction": in_weak_set.float().mean().detach(),
                "loss/total": total.detach(),
            }
        )
        return total, parts

    # ------------------------------------------------------------------ weak-combination search
    def predicted_label_histograms(self, ctx: TrainContext) -> dict[str, Any]:
        """The student's predicted-label fractions on the validation split for every candidate combination."""
        import torch

        from reproduce.metrics.label_histogram import PredictedLabelHistogram

        num_classes = ctx.task.num_classes
        values = ctx.evaluate_subsets(
            "val",
            subsets=self.candidates,
            new_metric=lambda: PredictedLabelHistogram(num_classes),
            description="MMANet weak-combination search",
        )
        return {k: torch.tensor([v[f"class_{i}"] for i in range(num_classes)]) for k, v in values.items()}

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        o = self.options
        report: dict[str, Any] = {}
        if epoch in o.search_epochs:
            histograms = self.predicted_label_histograms(ctx)
            keys = [subset_key(s) for s in self.candidates]
            full = histograms[keys[-1]]
            for i, key in enumerate(keys[:-1]):
                value = histogram_divergence(histograms[key], full)
                self.divergence[i] += 0.0 if math.isnan(value) else value
            report["histograms"] = {k: [float(x) for x in histograms[k]] for k in keys}
            report["divergence"] = dict(zip(keys[:-1], self.divergence, strict=True))
            ctx.tracker.log({f"mmanet/divergence/{k}": v for k, v in report["divergence"].items()}, ctx.global_step)
        if epoch == o.begin_epoch:
            if max(self.divergence) <= 1e-12:  # float noise: the candidates' label histograms are identical
                log.warning("MMANet: every candidate predicts like the full set; taking the first pair as weak")
            weak_pair = self.candidates[self.divergence.index(max(self.divergence))]
            self.weak_set = [weak_pair, *((m,) for m in weak_pair)]
            report["weak_set"] = [subset_key(s) for s in self.weak_set]
            log.info("MMANet weak combination: %s", report["weak_set"])
            ctx.tracker.summary({"mmanet/weak_combination": subset_key(weak_pair)})
        if report:
            entry["mmanet"] = report

    def on_train_start(self, ctx: TrainContext) -> None:
        result = self.teacher_run.result
        full = list(result["subsets"].values())[-1]
        ctx.tracker.summary(
            {
                "mmanet/teacher_run": self.teacher_run.config.key,
                "mmanet/teacher_host": self.options.teacher_host,
                f"mmanet/teacher_test_full_{result['primary']}": full[result["primary"]],
            }
        )

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "method": "mmanet",
            "aux_loss": o.aux_loss,
            "lambda_auxiliary": o.lambda_auxiliary,
            "lambda_distill": o.lambda_distill,
            "search_epochs": list(o.search_epochs),
            "begin_epoch": o.begin_epoch,
            "teacher_run": self.teacher_run.config.key,
            "weak_set": [subset_key(s) for s in self.weak_set] if self.weak_set else None,
            "divergence": dict(zip([subset_key(s) for s in self.candidates[:-1]], self.divergence, strict=True)),
        }
