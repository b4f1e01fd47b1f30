"""2-D semantic segmentation (NYU-Depth V2: ESANet-MD, MMANet-seg): the hosts' loss, prediction and MIoU.

Loss (ESANet ``src/utils.py`` ``CrossEntropyLoss2d``, which MMANet's ESANet-MD copies): per output the
class-weighted cross-entropy with void (label 0) ignored -- ``sum_pixels w_y CE / sum_pixels w_y`` over the
non-void pixels, the weights the data set's median-frequency class weights (``class_weights`` of the training data
set) -- summed over the full-resolution output and the host's side outputs (``HostOutput.extras["side"]``; ESANet:
at 1/8, 1/16 and 1/32), each scored against the label map downsampled by nearest neighbour to its size (ESANet's
``MultiScaleLabel``: ``cv2.resize(..., INTER_NEAREST)``, which picks the same pixels; tested). Per-modality
auxiliary heads (``HostOutput.aux``), when a host has them, get the same loss at full resolution (MWAM's Eq. 7).

Prediction: one forward pass per subset (the fusion is interleaved with the encoders, so there is no encode-once
split); the logits are upsampled bilinearly to the label's size when they differ. Metric: data-set-level MIoU
over the 40 classes, void ignored (:class:`reproduce.metrics.miou.MeanIoU`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from mwam_harness.models.host import HostOutput
from reproduce.metrics.base import TaskMetric
from reproduce.tasks import register_task
from reproduce.tasks.base import LossTerms, StepContext, Task, correct_class_scores

VOID = 0


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """ESANet's per-output term: ``sum w_y CE(logits, y - 1) / sum w_y`` over the non-void pixels of ``labels``
    (0 = void, 1..C); 0 (with gradient 0) for a batch without a non-void pixel, where theirs divides by 0."""
    target = labels.long() - 1  # void -> -1, ignored
    total = F.cross_entropy(logits.float(), target, weight=weights, ignore_index=-1, reduction="sum")
    divisor = weights[target.clamp_min(0)][target >= 0].sum()
    return total / divisor.clamp_min(torch.finfo(total.dtype).tiny)


def downsampled_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``labels`` (B, H, W) at ``size`` by nearest neighbour (pixel ``floor(i * H / h)``, as ``cv2.INTER_NEAREST``)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


@register_task("segmentation2d")
class Segmentation2DTask(Task):
    """See the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.weights: torch.Tensor | None = None

    def build_dataset(self, split: str, train: bool) -> Dataset:
        """The data set of ``split``; the training set's ``class_weights`` (median frequency) become the loss's."""
        dataset = super().build_dataset(split, train)
        if train:
            weights = getattr(dataset, "class_weights", None)
            if weights is None:
                raise ValueError(
                    f"the {self.dataset} training set has no class_weights (median-frequency weights, cached by "
                    "its prepare step): the segmentation2d loss needs them"
                )
            weights = torch.as_tensor(weights, dtype=torch.float32)
            if weights.shape != (self.num_classes,):
                raise ValueError(f"class_weights must have {self.num_classes} entries, got {tuple(weights.shape)}")
            self.weights = weights
        return dataset

    def _weights(self, device: torch.device) -> torch.Tensor:
        if self.weights is None:
            raise RuntimeError("segmentation2d: build the training set (build_dataset('train', True)) before the loss")
        if self.weights.device != device:
            self.weights = self.weights.to(device)
        return self.weights

    def loss(self, output: HostOutput, batch: Mapping[str, Any], ctx: StepContext) -> LossTerms:
        labels = self.target(batch, output.logits.device)
        weights = self._weights(output.logits.device)
        outputs = [output.logits, *(output.extras or {}).get("side", [])]
        fused = sum(
            weighted_cross_entropy(o, downsampled_labels(labels, tuple(o.shape[-2:])), weights) for o in outputs
        )
        per_modality = {
            m: weighted_cross_entropy(a, downsampled_labels(labels, tuple(a.shape[-2:])), weights)
            for m, a in (output.aux or {}).items()
        }
        return LossTerms(fused, per_modality)

    def per_sample_loss(self, logits: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
        """ESANet's weighted cross-entropy of one full-resolution prediction per sample (B,): ``sum w_y CE / sum
        w_y`` over each sample's non-void pixels (0 for a sample without one), labels resized to the prediction."""
        labels = downsampled_labels(self.target(batch, logits.device), tuple(logits.shape[-2:]))
        weights = self._weights(logits.device)
        target = labels.long() - 1
        per_pixel = F.cross_entropy(logits.float(), target, weight=weights, ignore_index=-1, reduction="none")
        divisor = torch.where(target >= 0, weights[target.clamp_min(0)], torch.zeros_like(per_pixel))
        total, divisor = per_pixel.flatten(1).sum(dim=1), divisor.flatten(1).sum(dim=1)
        return total / divisor.clamp_min(torch.finfo(total.dtype).tiny)

    def correct_class_score(
        self, logits: torch.Tensor, batch: Mapping[str, Any], *, cosine: bool = False, correct_only: bool = False
    ) -> torch.Tensor:
        """The mean over each sample's non-void pixels of softmax(logits)[label - 1] per sample (B,) (labels 1..C,
        0 = void; resized to the prediction by nearest neighbour, as ``per_sample_loss``); unweighted (the class
        weights are the loss's, not the score's); 0 for a sample without a non-void pixel."""
        labels = downsampled_labels(self.target(batch, logits.device), tuple(logits.shape[-2:]))
        valid = labels != VOID
        return correct_class_scores(logits, labels.long() - 1, valid, cosine=cosine, correct_only=correct_only)

    def new_metric(self) -> TaskMetric:
        from reproduce.metrics.miou import MeanIoU

        return MeanIoU(self.num_classes)

    def update_metric(self, metric: TaskMetric, output: HostOutput, batch: Mapping[str, Any]) -> None:
        labels = self.target(batch)
        logits = output.logits
        if tuple(logits.shape[-2:]) != tuple(labels.shape[-2:]):
            logits = F.interpolate(logits.float(), size=tuple(labels.shape[-2:]), mode="bilinear", align_corners=False)
        metric.update(logits.argmax(dim=1), labels.to(logits.device))
