"""The Task contract: what the trainer asks of a task kind (classification, 2-D / 3-D segmentation, detection).

A task owns the data sets of a run (through the data-set registry), the loss (the fused term and the
per-modality auxiliary terms, which the plug-ins reweight and combine, e.g. MWAM's Eq. 7), the prediction on a
subset of the modalities (``predict`` / ``predict_subsets``: where a sliding-window inferer plugs in), the collation
of samples and the metric. Four accessors let a plug-in written once serve every task: ``target(batch)``,
``modality_logits(output)`` (the per-modality predictions a host has), ``per_sample_loss(logits, batch)`` and
``correct_class_score(logits, batch)`` (the mean softmax probability of the true class over a sample's labelled
positions: OGM-GE's score, dense predictions included). The subset order of the paper's tables is the data set's
(its ``DatasetSpec``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

from mwam_harness.models.host import Host, HostOutput, forward_subsets
from reproduce.metrics.base import TaskMetric
from reproduce.subsets import subsets


def correct_class_scores(
    logits: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    cosine: bool = False,
    correct_only: bool = False,
) -> torch.Tensor:
    """Per sample (B,), in float32: the mean over its labelled positions of softmax(logits)[true class].

    ``logits``: (B, C) or (B, C, *spatial); ``labels``: (B,) or (B, *spatial) class indices into C at the labelled
    positions (anything elsewhere); ``valid``: (B, *spatial) bool, the labelled positions (None: all). A sample
    without a labelled position scores 0. ``cosine``: softmax(cos(logits)) instead (BalanceBenchmark's OGM score for
    more than two modalities, ``OGM_trainer.py`` l.116: ``softmax(torch.cos(out))``, the cosine of each logit);
    ``correct_only``: a position counts only where argmax(logits) (of the logits themselves, not their cosine) is
    the true class, 0 elsewhere (the same line's ``if label[i] == torch.argmax(out[i]) else 0``). For (B, C)
    logits without ``valid`` this is softmax(logits)[y] itself (one position: no division)."""
    x = logits.float()
    probabilities = torch.softmax(torch.cos(x) if cosine else x, dim=1)
    target = labels.long()
    if valid is not None:
        target = torch.where(valid, target, torch.zeros_like(target))
    score = probabilities.gather(1, target.unsqueeze(1)).squeeze(1)
    if correct_only:
        score = torch.where(x.argmax(dim=1) == target, score, torch.zeros_like(score))
    if valid is not None:
        score = torch.where(valid, score, torch.zeros_like(score))
    if score.dim() == 1:  # one position per sample: its score (0 where unlabelled)
        return score
    flat = score.flatten(1)
    count = flat.new_full((flat.shape[0],), flat.shape[1]) if valid is None else valid.flatten(1).sum(dim=1).float()
    return flat.sum(dim=1) / count.clamp_min(1.0)


@dataclass(frozen=True)
class StepContext:
    """Where training stands at a step: the epoch, the step within it, the global step, and progress in [0, 1]
    (completed epochs plus the done fraction of this one, over all epochs)."""

    epoch: int
    step_in_epoch: int
    global_step: int
    progress: float
    epochs: int
    steps_per_epoch: int


@dataclass
class LossTerms:
    """A task's loss of one step: the fused prediction's term and, when the host has per-modality auxiliary
    heads, one term per modality (the engine weights them with MWAM's K when its intervention is ``loss`` or
    ``hybrid``, Eq. 7, and adds them with weight 1 otherwise)."""

    fused: torch.Tensor
    per_modality: dict[str, torch.Tensor]


class Task(ABC):
    """A task of a registered data set.

    ``spec``: the data set's :class:`datasets.registry.DatasetSpec`; ``root``: its data; ``modalities``: the ones
    the run uses (a subset of the data set's); ``options``: the loader's keyword arguments.
    """

    def __init__(
        self,
        spec: Any,
        root: str,
        seed: int,
        options: Mapping[str, Any] | None = None,
        modalities: Sequence[str] | None = None,
    ) -> None:
        self.spec = spec
        self.dataset = spec.name
        self.root = root
        self.seed = seed
        self.options = dict(options or {})
        self.modalities = tuple(modalities or spec.modalities)
        self.num_classes = spec.num_classes

    def attach(self, host: Host) -> None:
        """Called once the run's host is built (before training): a task may read what the host declares, e.g.
        the epoch its fused loss term starts. Default: nothing to read."""
        return None

    @property
    def subsets(self) -> list[tuple[str, ...]]:
        """The non-empty subsets of the used modalities in the paper's row order, the full set last."""
        restricted = None if self.modalities == tuple(self.spec.modalities) else self.modalities
        return subsets(self.dataset, restricted)

    def build_dataset(self, split: str, train: bool) -> Dataset:
        """The data set of ``split``; its items are dicts with one tensor per modality and the targets."""
        return self.spec.build_dataset(self.root, split, train=train, seed=self.seed, **self.options)

    def collate(self, items: list[Any]) -> Any:
        """A batch from a list of items (default: torch's ``default_collate``)."""
        return default_collate(items)

    def inputs(self, batch: Mapping[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        return {m: batch[m].to(device, non_blocking=True) for m in self.modalities}

    def target(self, batch: Mapping[str, Any], device: torch.device | str | None = None) -> torch.Tensor:
        """The batch's target -- class labels (B,), label maps (B, *spatial) -- on ``device`` when given."""
        target = batch["label"]
        return target if device is None else target.to(device, non_blocking=True)

    def modality_logits(self, output: HostOutput) -> dict[str, torch.Tensor]:
        """The per-modality predictions of ``output``, where the host has them: ``HostOutput.modality_logits`` (e.g.
        a concat head's slices), else its per-modality auxiliary predictions (``aux``: SF-MD's auxiliary heads,
        RFNet's and mmFormer's separate decoders); ``{}`` for a host without (balancing plug-ins refuse it)."""
        return dict(output.modality_logits or output.aux or {})

    @abstractmethod
    def loss(self, output: HostOutput, batch: Mapping[str, Any], ctx: StepContext) -> LossTerms:
        """The step's loss terms (:class:`LossTerms`); ``ctx`` says where training stands (e.g. a term that
        starts at some epoch)."""

    @abstractmethod
    def per_sample_loss(self, logits: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
        """The task's loss of one prediction (fused or a modality's) per sample, (B,), with gradient: what a
        plug-in scores a prediction by (MMANet's auxiliary term, the balancing methods' per-modality losses)."""

    def correct_class_score(
        self, logits: torch.Tensor, batch: Mapping[str, Any], *, cosine: bool = False, correct_only: bool = False
    ) -> torch.Tensor:
        """The mean over each sample's labelled positions of softmax(logits)[true class], (B,), float32, with the
        task's own label conventions (classification: one position; segmentation: every labelled voxel / pixel):
        OGM-GE's per-sample score term (:func:`correct_class_scores`; ``cosine`` / ``correct_only``: its
        BalanceBenchmark multi-modality reading). Not detached: a caller that only reads it detaches."""
        raise NotImplementedError(
            f"{type(self).__name__} has no correct-class score (Task.correct_class_score): the balancing plug-ins "
            "that score each modality's prediction by it (OGM-GE) do not serve this task"
        )

    def predict(self, host: Host, inputs: Mapping[str, torch.Tensor], present: torch.Tensor) -> HostOutput:
        """The host's prediction with modality mask ``present`` (B, M); default: one forward pass."""
        return host(inputs, present)

    def predict_subsets(
        self, host: Host, inputs: Mapping[str, torch.Tensor], masks: Sequence[torch.Tensor]
    ) -> list[HostOutput]:
        """One prediction per mask; a host with ``encode`` / ``fuse`` runs its encoders once for all of them
        (:func:`models.host.forward_subsets`), bit-identical to one forward pass per mask."""
        if type(self).predict is Task.predict:
            return forward_subsets(host, inputs, masks)
        return [self.predict(host, inputs, mask) for mask in masks]

    @abstractmethod
    def new_metric(self) -> TaskMetric:
        """A fresh metric accumulator."""

    @abstractmethod
    def update_metric(self, metric: TaskMetric, output: HostOutput, batch: Mapping[str, Any]) -> None:
        """Feed one evaluated batch to ``metric``."""
