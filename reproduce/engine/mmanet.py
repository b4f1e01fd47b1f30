"""MMANet's training method (Wei et al., CVPR 2023) as a trainer variant: ``trainer: mmanet``.

What the authors' ``train_knowledge_distill_patch_feature_auxi_weak`` does on CASIA-SURF, on this repository's
one training loop (only the loss and the end-of-epoch hook are overridden):

1. **Teacher.** A full-modality model (``teacher_host``, SF by default) is itself a run in the registry; it is
   trained first when missing (same data and schedule as the student, minus MMANet and MWAM, plus
   ``teacher_run`` overrides; one teacher seed for every student seed, as the authors), then loaded from its
   ``model.pt``, frozen, and kept in eval mode.
2. **Weak-combination search.** At the end of each epoch in ``search_epochs`` the student predicts the
   validation split with each candidate combination -- every pair of modalities and the full set (RD, RI, DI,
   RDI on CASIA-SURF) -- and the histogram of its predicted labels is compared with the full set's:
   ``KL(softmax(h_pair) || softmax(h_full))`` (the authors soften the normalised histograms once more with a
   softmax; kept), summed over the search epochs. At the end of epoch ``begin_epoch`` the pair with the largest
   summed divergence is the weak combination; the weak set is that pair and its two single modalities.
3. **Loss.** Up to ``begin_epoch`` the task loss alone; from epoch ``begin_epoch + 1`` on
   ``L = CE + lambda_auxiliary * sum_i CE_aux,i [subset_i in weak set] / B + lambda_distill * MAD(layer4_s,
   layer4_t, teacher logits)`` -- the auxiliary classifier learns the weak combinations, MAD distils the
   teacher's batch relations weighted by its uncertainty. CASIA-SURF weights: (30, 0.5) (paper, Sec. A.3).

MWAM combines with it as with any host (``mwam: grad`` edits the branch gradients; MMANet has no per-modality
heads). Deviation: the authors skip every batch of epoch 0 (``if epoch == 0: continue``); here epoch 0 trains.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

import models
from models.host import Host, HostOutput
from reproduce.engine.checkpoint import load_checkpoint, rng_state, set_rng_state
from reproduce.engine.distillation import margin_aware_distillation
from reproduce.engine.evaluation import evaluate_subsets
from reproduce.engine.trainer import Trainer
from reproduce.metrics.label_histogram import PredictedLabelHistogram
from reproduce.runs.config import RunConfig
from reproduce.subsets import subset_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MMANetOptions:
    """Options of the MMANet method (``trainer_options``); defaults are the authors' CASIA-SURF settings.

    teacher_host / teacher_host_options: the frozen full-modality teacher (the authors' ``SURF_Multi``).
    teacher_run: RunConfig overrides for the teacher's own run (e.g. its batch size when the student's differs,
        Table 10); the teacher is otherwise trained like the student.
    teacher_seed: the teacher run's seed, whatever the student's: the authors distil every student version from
        one teacher (``multi_full__2__average.pth``).
    search_epochs: the epochs after which the weak-combination search runs (authors: 2, 3, 4).
    begin_epoch: the weak combination is fixed after this epoch; the auxiliary and distillation terms apply from
        the next epoch on (authors: 5).
    lambda_distill, lambda_auxiliary: MMANet's (alpha, beta) = (30, 0.5) on CASIA-SURF (paper, Sec. A.3).
    """

    teacher_host: str = "sf"
    teacher_host_options: dict[str, Any] = field(default_factory=dict)
    teacher_run: dict[str, Any] = field(default_factory=dict)
    teacher_seed: int = 0
    search_epochs: tuple[int, ...] = (2, 3, 4)
    begin_epoch: int = 5
    lambda_distill: float = 30.0
    lambda_auxiliary: float = 0.5

    def __post_init__(self) -> None:
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
        reserved = {"host", "host_options", "trainer", "trainer_options", "mwam", "seed"}
        forbidden = sorted(set(self.teacher_run) & reserved)
        if forbidden:
            raise ValueError(
                f"teacher_run may not set {forbidden}; use teacher_host / teacher_host_options / teacher_seed"
            )
        known = {f.name for f in dataclasses.fields(RunConfig)}
        unknown = sorted(set(self.teacher_run) - known)
        if unknown:
            raise ValueError(f"teacher_run: unknown run settings {unknown}")


def candidate_subsets(modalities: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every pair of modalities (in modality order) and the full set last: RD, RI, DI, RDI on CASIA-SURF."""
    if len(modalities) < 2:
        raise ValueError(f"MMANet needs at least two modalities, got {modalities}")
    pairs = [tuple(p) for p in itertools.combinations(modalities, 2)]
    return pairs if len(modalities) == 2 else [*pairs, tuple(modalities)]


def histogram_divergence(histogram: torch.Tensor, reference: torch.Tensor) -> float:
    """``KL(softmax(histogram) || softmax(reference))``, as the authors' ``F.kl_div(log_softmax(ref),
    softmax(h))`` computes it (Eq. 12-13 of the MMANet paper)."""
    p = F.softmax(histogram.double(), dim=0)
    return float((p * (p.log() - F.log_softmax(reference.double(), dim=0))).sum())


class MMANetTrainer(Trainer):
    """The standard trainer with MMANet's teacher, weak-combination search and loss (see the module docstring)."""

    options_class = MMANetOptions

    # ------------------------------------------------------------------ teacher
    def teacher_config(self) -> RunConfig:
        """The teacher's run: the student's data and schedule, the teacher host and seed, no MWAM, ``teacher_run``."""
        o = self.options
        return self.config.replace(
            **{
                "host": o.teacher_host,
                "host_options": dict(o.teacher_host_options),
                "mwam": "none",
                "mwam_options": {},
                "trainer": "standard",
                "trainer_options": {},
                "table": None,
                "column": f"{o.teacher_host} (MMANet teacher)",
                "seed": o.teacher_seed,
                **o.teacher_run,
            }
        )

    def build_teacher(self) -> Host:
        """Train the teacher run if the registry lacks it (or its weights), then load it frozen, in eval mode."""
        config = self.teacher_config()
        weights = self.registry.weights_path(config)
        if not (self.registry.has(config) and weights.exists()):
            if self.registry.has(config):
                log.warning("teacher run %s has a result but no weights (%s): training it again", config.key, weights)
            log.info("training the MMANet teacher first: %s [%s]", config.host, config.key)
            Trainer(config, self.registry, wandb_mode=self.wandb_mode).run(
                resume=self.resume, force=self.registry.has(config)
            )
        state = load_checkpoint(weights, self.device)
        if state.get("config_key") != config.key:
            raise ValueError(f"{weights} holds run {state.get('config_key')}, not the teacher run {config.key}")
        teacher = models.build(config.host, **config.host_options)
        teacher.load_state_dict(state["host"])
        teacher.to(self.device).eval()
        if self.channels_last:
            teacher = teacher.to(memory_format=torch.channels_last)
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher_key = config.key
        self.teacher_result = self.registry.load(config)
        return teacher

    # ------------------------------------------------------------------ set-up and state
    @functools.cached_property
    def options(self) -> MMANetOptions:
        """The run's ``trainer_options``, validated once (the configuration is frozen)."""
        return MMANetOptions(**self.config.trainer_options)

    def setup(self) -> None:
        super().setup()
        if self.config.epochs <= self.options.begin_epoch + 1:
            raise ValueError(
                f"MMANet: epochs={self.config.epochs} leaves no epoch after begin_epoch={self.options.begin_epoch}; "
                "lower begin_epoch / search_epochs in trainer_options or train longer"
            )
        self.candidates = candidate_subsets(tuple(self.host.modalities))
        self.divergence = [0.0] * (len(self.candidates) - 1)
        self.weak_set = None
        # Training the teacher here (when the registry lacks it) must not shift the student's random stream: the
        # student trains the same whether its teacher was trained in this process or loaded.
        state = rng_state()
        self.teacher = self.build_teacher()
        set_rng_state(state)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["mmanet"] = {"divergence": list(self.divergence), "weak_set": self.weak_set}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.divergence = list(state["mmanet"]["divergence"])
        self.weak_set = state["mmanet"]["weak_set"]

    @property
    def weak_set(self) -> list[tuple[str, ...]] | None:
        """The weak combination and its single modalities (None until chosen after ``begin_epoch``)."""
        return self._weak_set

    @weak_set.setter
    def weak_set(self, value: list[tuple[str, ...]] | None) -> None:
        """Also builds ``weak_masks`` (W, M) on the device once, not at every step."""
        self._weak_set = None if value is None else [tuple(s) for s in value]
        self.weak_masks = None
        if self._weak_set is not None:
            rows = [[m in s for m in self.host.modalities] for s in self._weak_set]
            self.weak_masks = torch.tensor(rows, dtype=torch.bool, device=self.device)

    # ------------------------------------------------------------------ loss
    def compute_loss(
        self, inputs: dict[str, torch.Tensor], output: HostOutput, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, parts = super().compute_loss(inputs, output, batch)
        if self.epoch <= self.options.begin_epoch:
            return loss, parts
        extras = output.extras or {}
        missing = [k for k in ("layer4", "auxiliary") if k not in extras]
        if missing or output.present is None:
            raise ValueError(
                f"the MMANet method needs a host that returns extras['layer4'], extras['auxiliary'] and its applied "
                f"mask (HostOutput.present); {self.config.host!r} lacks {missing or ['present']} (use host 'mmanet')"
            )
        with torch.no_grad():
            teacher = self.teacher(inputs, None)
        distill = margin_aware_distillation(extras["layer4"], teacher.extras["layer4"], teacher.logits)
        target = batch["label"].to(self.device, non_blocking=True)
        per_sample = F.cross_entropy(extras["auxiliary"].float(), target, reduction="none")
        in_weak_set = (output.present[:, None, :] == self.weak_masks[None]).all(dim=2).any(dim=1)
        auxiliary = (per_sample * in_weak_set).sum() / per_sample.shape[0]
        o = self.options
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
    def predicted_label_histograms(self) -> dict[str, torch.Tensor]:
        """The student's predicted-label fractions on the validation split for every candidate combination."""
        num_classes = int(getattr(getattr(self.host, "config", None), "num_classes", 2))
        values = evaluate_subsets(
            self.host,
            self.task,
            self.eval_loader("val"),
            self.device,
            self.autocast_dtype,
            self.config.progress,
            self.channels_last,
            description="MMANet weak-combination search",
            subsets=self.candidates,
            new_metric=lambda: PredictedLabelHistogram(num_classes),
        )
        return {k: torch.tensor([v[f"class_{i}"] for i in range(num_classes)]) for k, v in values.items()}

    def on_epoch_end(self, epoch: int, entry: dict[str, Any]) -> None:
        o = self.options
        report: dict[str, Any] = {}
        if epoch in o.search_epochs:
            histograms = self.predicted_label_histograms()
            keys = [subset_key(s) for s in self.candidates]
            full = histograms[keys[-1]]
            for i, key in enumerate(keys[:-1]):
                value = histogram_divergence(histograms[key], full)
                self.divergence[i] += 0.0 if math.isnan(value) else value
            report["histograms"] = {k: [float(x) for x in histograms[k]] for k in keys}
            report["divergence"] = dict(zip(keys[:-1], self.divergence, strict=True))
            self.tracker.log({f"mmanet/divergence/{k}": v for k, v in report["divergence"].items()}, self.global_step)
        if epoch == o.begin_epoch:
            if max(self.divergence) <= 1e-12:  # float noise: the candidates' label histograms are identical
                log.warning("MMANet: every candidate predicts like the full set; taking the first pair as weak")
            weak_pair = self.candidates[self.divergence.index(max(self.divergence))]
            self.weak_set = [weak_pair, *((m,) for m in weak_pair)]
            report["weak_set"] = [subset_key(s) for s in self.weak_set]
            log.info("MMANet weak combination: %s", report["weak_set"])
            self.tracker.summary({"mmanet/weak_combination": subset_key(weak_pair)})
        if report:
            entry["mmanet"] = report

    def on_train_start(self) -> None:
        full = list(self.teacher_result["subsets"].values())[-1]
        self.tracker.summary(
            {
                "mmanet/teacher_run": self.teacher_key,
                "mmanet/teacher_host": self.options.teacher_host,
                f"mmanet/teacher_test_full_{self.teacher_result['primary']}": full[self.teacher_result["primary"]],
            }
        )

    def describe(self) -> dict[str, Any]:
        return {
            "method": "mmanet",
            "teacher_run": self.teacher_key,
            "weak_set": [subset_key(s) for s in self.weak_set] if self.weak_set else None,
            "divergence": dict(zip([subset_key(s) for s in self.candidates[:-1]], self.divergence, strict=True)),
        }
