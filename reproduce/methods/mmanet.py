"""MMANet's training method (Wei et al., CVPR 2023): ``method: {name: mmanet}``.

What the authors' ``train_knowledge_distill_patch_feature_auxi_weak`` does on CASIA-SURF, as hooks of the one
trainer (the loss and the end of each epoch):

1. **Teacher.** A full-modality model (``teacher_host``, SF by default) is a dependency: an ordinary run of the
   registry (the student's data, the teacher host and seed, no MMANet, MWAM or SDE, plus ``teacher_run``
   overrides; one teacher seed for every student seed, as the authors), trained first by the planner, then loaded
   from its ``model.pt``, frozen and kept in eval mode. A student whose schedule names a preset
   (``schedule.preset``) gets a teacher with that preset's schedule *for the teacher's host* (CASIA-SURF: SF's,
   not MMANet's); an explicit student schedule is the teacher's too.
2. **Weak-combination search.** At the end of each epoch in ``search_epochs`` the student predicts the validation
   split with each candidate combination -- every pair of modalities and the full set (RD, RI, DI, RDI on
   CASIA-SURF) -- and the histogram of its predicted labels is compared with the full set's:
   ``KL(softmax(h_pair) || softmax(h_full))`` (the authors soften the normalised histograms once more with a
   softmax; kept), summed over the search epochs. At the end of epoch ``begin_epoch`` the pair with the largest
   summed divergence is the weak combination; the weak set is that pair and its two single modalities. Under DDP
   the histograms are merged over the processes, so every process picks the same weak combination.
3. **Loss.** Up to ``begin_epoch`` the task loss alone; from epoch ``begin_epoch + 1`` on
   ``L = CE + lambda_auxiliary * L_aux + lambda_distill * MAD(layer4_s, layer4_t, teacher logits)`` -- the
   auxiliary classifier learns the weak combinations, MAD distils the teacher's batch relations weighted by its
   uncertainty. CASIA-SURF weights: (30, 0.5) (paper, Sec. A.3). ``L_aux`` (:func:`auxiliary_loss`, option
   ``aux_loss``): ``intended`` -- ``sum_i CE_aux,i [subset_i in weak set] / B``, the formula of the MMANet paper;
   ``released`` (default) -- what the authors' code computes, ``n_weak * mean_i CE_aux,i`` over *all* B samples
   (its weak-sample index has shape (B, 1, 1, 1) and broadcasts against the (B,) losses), about 50x the intended
   term at batch 64 with every sample receiving gradient. The default is ``released`` because the MWAM paper's
   MMANet numbers (with and without MWAM) were produced by that code.

MWAM combines with it as with any host (``mwam: grad`` edits the branch gradients; MMANet has no per-modality
heads). The authors' loops skip every batch of epoch 0; that is part of the ``released`` schedule preset
(``schedule.skip_epochs``). This module imports no torch at module level (the hooks import it): the planner reads
its options and teacher.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reproduce.methods.base import Dependency, FinishedRun, Method, check_run_overrides, register_method
from reproduce.subsets import subset_key

log = logging.getLogger(__name__)

#: Sections of the teacher's run that ``teacher_run`` may not set (the teacher's host, method and seed have their
#: own options; a teacher never trains with MWAM or SDE).
RESERVED_TEACHER_SECTIONS = ("host", "method", "mwam", "sde", "seed")
AUX_LOSSES = ("released", "intended")


@dataclass(frozen=True)
class MMANetOptions:
    """Options of the MMANet method (``method.options``); defaults are the authors' CASIA-SURF settings.

    teacher_host / teacher_host_options: the frozen full-modality teacher (the authors' ``SURF_Multi``).
    teacher_run: nested overrides of the teacher's own run (e.g. ``{"train": {"batch_size": 64}}`` when the
        student's batch differs, Table 10); the teacher is otherwise trained like the student.
    teacher_seed: the teacher run's seed, whatever the student's: the authors distil every student version from
        one teacher (``multi_full__2__average.pth``).
    search_epochs: the epochs after which the weak-combination search runs (authors: 2, 3, 4).
    begin_epoch: the weak combination is fixed after this epoch; the auxiliary and distillation terms apply from
        the next epoch on (authors: 5).
    lambda_distill, lambda_auxiliary: MMANet's (alpha, beta) = (30, 0.5) on CASIA-SURF (paper, Sec. A.3).
    aux_loss: ``released`` (the authors' code, which produced the paper's numbers) or ``intended`` (the MMANet
        paper's formula); see :func:`auxiliary_loss`.
    """

    teacher_host: str = "sf"
    teacher_host_options: dict[str, Any] = field(default_factory=dict)
    teacher_run: dict[str, Any] = field(default_factory=dict)
    teacher_seed: int = 0
    search_epochs: tuple[int, ...] = (2, 3, 4)
    begin_epoch: int = 5
    lambda_distill: float = 30.0
    lambda_auxiliary: float = 0.5
    aux_loss: str = "released"

    def __post_init__(self) -> None:
        if self.aux_loss not in AUX_LOSSES:
            raise ValueError(f"aux_loss must be one of {', '.join(AUX_LOSSES)}; got {self.aux_loss!r}")
        object.__setattr__(self, "search_epochs", tuple(int(e) for e in self.search_epochs))
        if not self.search_epochs:
            raise ValueError("search_epochs must name at least one epoch")
        if self.begin_epoch < 0 or min(self.search_epochs) < 0 or max(self.search_epochs) > self.begin_epoch:
            raise ValueError(
                f"search_epochs {self.search_epochs} must lie in [0, begin_epoch={self.begin_epoch}] "
                "(the weak combination is chosen after begin_epoch)"
            )
        if list(self.search_epochs) != sorted(set(self.search_epochs)):
            raise ValueError(f"search_epochs must be increasing and distinct, got {self.search_epochs}")
        for name in ("lambda_distill", "lambda_auxiliary"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        instead = "teacher_host / teacher_host_options / teacher_seed"
        check_run_overrides(self.teacher_run, "teacher_run", RESERVED_TEACHER_SECTIONS, instead)


def teacher_dependency(config: Any, options: Any, label: str = "MMANet teacher") -> Dependency:
    """The frozen teacher's run: the student's configuration with ``options.teacher_host`` (its options) and
    ``teacher_seed``, the standard method, no MWAM or SDE, and ``teacher_run`` on top (MMANet and MMANet-seg)."""
    from reproduce.runs.config import RunConfig
    from reproduce.runs.overrides import deep_merge

    values = config.to_dict()
    values["host"] = {"name": options.teacher_host, "options": dict(options.teacher_host_options)}
    values["method"] = {"name": "standard", "options": {}}
    values["mwam"] = {"intervention": "none", "options": {}}
    values["sde"] = {"enabled": False, "options": {}}
    values["seed"] = options.teacher_seed
    teacher = RunConfig.from_dict(deep_merge(values, options.teacher_run), source=f"{label} run")
    return Dependency(teacher, column=f"{options.teacher_host} ({label})")


def load_teacher(trainer: Any, teacher: FinishedRun, train_mode: bool = False) -> Any:
    """The teacher host from its run's final weights, frozen (no gradients), in eval mode unless ``train_mode``
    (batch-statistics BatchNorm, as MMANet-seg's code leaves it); building it does not shift the student's random
    stream (the student trains the same whatever was built beside it)."""
    import torch

    import models
    from reproduce.engine.checkpoint import load_checkpoint, rng_state, set_rng_state

    state = load_checkpoint(teacher.weights, trainer.device)
    if state.get("config_key") != teacher.config.key:
        raise ValueError(f"{teacher.weights} holds run {state.get('config_key')}, not the teacher {teacher.config.key}")
    saved = rng_state()
    host = models.build(teacher.config.host.name, **teacher.config.host.options)
    set_rng_state(saved)
    host.load_state_dict(state["host"])
    host.to(trainer.device).train(train_mode)
    if trainer.channels_last:
        host = host.to(memory_format=torch.channels_last)
    for p in host.parameters():
        p.requires_grad_(False)
    return host


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


def candidate_subsets(modalities: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every pair of modalities (in modality order) and the full set last: RD, RI, DI, RDI on CASIA-SURF."""
    if len(modalities) < 2:
        raise ValueError(f"MMANet needs at least two modalities, got {modalities}")
    pairs = [tuple(p) for p in itertools.combinations(modalities, 2)]
    return pairs if len(modalities) == 2 else [*pairs, tuple(modalities)]


def histogram_divergence(histogram: Any, reference: Any) -> float:
    """``KL(softmax(histogram) || softmax(reference))``, as the authors' ``F.kl_div(log_softmax(ref),
    softmax(h))`` computes it (Eq. 12-13 of the MMANet paper)."""
    import torch.nn.functional as F

    p = F.softmax(histogram.double(), dim=0)
    return float((p * (p.log() - F.log_softmax(reference.double(), dim=0))).sum())


@register_method("mmanet")
class MMANet(Method):
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
    def setup(self, trainer: Any, dependencies: Mapping[str, FinishedRun]) -> None:
        o = self.options
        epochs = trainer.config.train.epochs
        if epochs <= o.begin_epoch + 1:
            raise ValueError(
                f"MMANet: epochs={epochs} leaves no epoch after begin_epoch={o.begin_epoch}; "
                "lower begin_epoch / search_epochs in method.options or train longer"
            )
        self.device = trainer.device
        self.modalities = tuple(trainer.host.modalities)
        self.candidates = candidate_subsets(self.modalities)
        self.divergence = [0.0] * (len(self.candidates) - 1)
        self.weak_set = None
        self.teacher_run = dependencies["teacher"]
        self.teacher = self._load_teacher(trainer, self.teacher_run)

    def _load_teacher(self, trainer: Any, teacher: FinishedRun) -> Any:
        return load_teacher(trainer, teacher)

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
    def loss(self, trainer: Any, inputs: Any, output: Any, batch: Any, ctx: Any, loss: Any, parts: dict) -> tuple:
        if ctx.epoch <= self.options.begin_epoch:
            return loss, parts
        import torch
        import torch.nn.functional as F

        from reproduce.engine.distillation import margin_aware_distillation

        extras = output.extras or {}
        missing = [k for k in ("layer4", "auxiliary") if k not in extras]
        if missing or output.present is None:
            raise ValueError(
                f"the MMANet method needs a host that returns extras['layer4'], extras['auxiliary'] and its applied "
                f"mask (HostOutput.present); {trainer.config.host.name!r} lacks {missing or ['present']} "
                "(use host 'mmanet')"
            )
        with torch.no_grad():
            teacher = self.teacher(inputs, None)
        distill = margin_aware_distillation(extras["layer4"], teacher.extras["layer4"], teacher.logits)
        target = batch["label"].to(trainer.device, non_blocking=True)
        per_sample = F.cross_entropy(extras["auxiliary"].float(), target, reduction="none")
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
    def predicted_label_histograms(self, trainer: Any) -> dict[str, Any]:
        """The student's predicted-label fractions on the validation split for every candidate combination."""
        import torch

        from reproduce.metrics.label_histogram import PredictedLabelHistogram

        num_classes = trainer.task.num_classes
        values = trainer.evaluate_subsets(
            "val",
            subsets=self.candidates,
            new_metric=lambda: PredictedLabelHistogram(num_classes),
            description="MMANet weak-combination search",
        )
        return {k: torch.tensor([v[f"class_{i}"] for i in range(num_classes)]) for k, v in values.items()}

    def on_epoch_end(self, trainer: Any, epoch: int, entry: dict[str, Any]) -> None:
        o = self.options
        report: dict[str, Any] = {}
        if epoch in o.search_epochs:
            histograms = self.predicted_label_histograms(trainer)
            keys = [subset_key(s) for s in self.candidates]
            full = histograms[keys[-1]]
            for i, key in enumerate(keys[:-1]):
                value = histogram_divergence(histograms[key], full)
                self.divergence[i] += 0.0 if math.isnan(value) else value
            report["histograms"] = {k: [float(x) for x in histograms[k]] for k in keys}
            report["divergence"] = dict(zip(keys[:-1], self.divergence, strict=True))
            trainer.tracker.log(
                {f"mmanet/divergence/{k}": v for k, v in report["divergence"].items()}, trainer.global_step
            )
        if epoch == o.begin_epoch:
            if max(self.divergence) <= 1e-12:  # float noise: the candidates' label histograms are identical
                log.warning("MMANet: every candidate predicts like the full set; taking the first pair as weak")
            weak_pair = self.candidates[self.divergence.index(max(self.divergence))]
            self.weak_set = [weak_pair, *((m,) for m in weak_pair)]
            report["weak_set"] = [subset_key(s) for s in self.weak_set]
            log.info("MMANet weak combination: %s", report["weak_set"])
            trainer.tracker.summary({"mmanet/weak_combination": subset_key(weak_pair)})
        if report:
            entry["mmanet"] = report

    def on_train_start(self, trainer: Any) -> None:
        result = self.teacher_run.result
        full = list(result["subsets"].values())[-1]
        trainer.tracker.summary(
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
