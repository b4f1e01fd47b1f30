"""Classification (CASIA-SURF; later UCF-101, FGVC-Aircraft / Stanford Dogs): cross-entropy, accuracy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from mwam_harness.models.host import HostOutput
from reproduce.metrics import BinaryAccuracy, MulticlassAccuracy
from reproduce.metrics.base import TaskMetric
from reproduce.tasks import register_task
from reproduce.tasks.base import LossTerms, StepContext, Task, correct_class_scores


@register_task("classification")
class ClassificationTask(Task):
    """Cross-entropy on the fused logits and, when the host has auxiliary heads, on each head's logits.

    Metric: the data set's (``DatasetSpec.metric``): ``pad`` -- presentation-attack detection, binary accuracy with
    APCER / NPCER / ACER (CASIA-SURF) -- or multi-class top-1 / top-5 / mean-class accuracy.
    """

    def loss(self, output: HostOutput, batch: Mapping[str, Any], ctx: StepContext) -> LossTerms:
        target = self.target(batch, output.logits.device)
        fused = F.cross_entropy(output.logits.float(), target)
        per_modality = {m: F.cross_entropy(logits.float(), target) for m, logits in (output.aux or {}).items()}
        return LossTerms(fused, per_modality)

    def per_sample_loss(self, logits: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
        """Cross-entropy per sample (B,)."""
        return F.cross_entropy(logits.float(), self.target(batch, logits.device), reduction="none")

    def correct_class_score(
        self, logits: torch.Tensor, batch: Mapping[str, Any], *, cosine: bool = False, correct_only: bool = False
    ) -> torch.Tensor:
        """softmax(logits)[y] per sample (B,): one position per sample (logits (B, C), labels (B,))."""
        if logits.dim() != 2:
            raise ValueError(f"classification scores (B, C) logits, got shape {tuple(logits.shape)}")
        target = self.target(batch, logits.device)
        return correct_class_scores(logits, target, cosine=cosine, correct_only=correct_only)

    def new_metric(self) -> TaskMetric:
        return BinaryAccuracy() if self.spec.metric == "pad" else MulticlassAccuracy(self.num_classes)

    def update_metric(self, metric: TaskMetric, output: HostOutput, batch: Mapping[str, Any]) -> None:
        metric.update(output.logits.detach(), self.target(batch))
