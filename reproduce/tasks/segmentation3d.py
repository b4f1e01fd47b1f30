"""3-D segmentation (BraTS2020: RFNet, mmFormer, GSS): the hosts' losses, sliding-window prediction, BraTS Dice.

Loss (RFNet ``train.py``): every output is scored by weighted cross-entropy plus soft Dice on its softmax
(``segmentation_losses.py``); the fused output and the host's deep supervision (``HostOutput.extras["prm"]``:
RFNet's probabilistic region maps, mmFormer's auxiliary heads -- probabilities at full resolution) form the fused
term, the per-modality separate decoders (``HostOutput.aux``) the per-modality terms (which MWAM's Eq. 7 weights
under ``mwam: loss | hybrid``; summed otherwise, as the authors). A host with ``fused_loss_start_epoch`` (RFNet:
``region_fusion_start_epoch`` 20) has its fused output's term multiplied by 0 before that epoch, as the authors.

Prediction (RFNet / mmFormer ``predict.py``): the whole prepared volume, windows of the training crop (80^3) with
50 % overlap, the softmax averaged over the windows covering a voxel, then argmax. MONAI's
``sliding_window_inference`` with ``mode="constant"`` places the windows exactly where the authors' loop does
(starts 0, 40, 80, ... and the last at size - 80) and averages uniformly (tested against a transcription). For
the 15 subsets each window runs the encoders once (``encode`` / ``fuse``). ``HostOutput.logits`` of a prediction
holds the averaged probabilities. Metric: WT, TC, ET Dice and the post-processed ET (``BratsDiceReport``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from mwam_harness.models.host import Host, HostOutput
from reproduce.metrics.base import TaskMetric
from reproduce.tasks import register_task
from reproduce.tasks.base import LossTerms, StepContext, Task, correct_class_scores
from reproduce.tasks.segmentation_losses import segmentation_loss, segmentation_loss_per_sample

OVERLAP = 0.5


@register_task("segmentation3d")
class Segmentation3DTask(Task):
    """See the module docstring. ``options`` are the loader's (``crop``: the training window, also the
    evaluation's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = int(self.options.get("crop", 80))
        self.fused_loss_start_epoch = 0

    def attach(self, host: Host) -> None:
        """Read when the host's fused term starts (``fused_loss_start_epoch``; 0 when it has none)."""
        self.fused_loss_start_epoch = int(getattr(host, "fused_loss_start_epoch", 0))

    def onehot(self, batch: Mapping[str, Any], device: torch.device) -> torch.Tensor:
        labels = self.target(batch, device)
        return F.one_hot(labels, self.num_classes).permute(0, 4, 1, 2, 3)

    def loss(self, output: HostOutput, batch: Mapping[str, Any], ctx: StepContext) -> LossTerms:
        target = self.onehot(batch, output.logits.device)
        fused = segmentation_loss(torch.softmax(output.logits.float(), dim=1), target)
        if ctx.epoch < self.fused_loss_start_epoch:
            fused = fused * 0.0  # the authors' ``fuse_loss * 0.0``: computed, no gradient
        for probabilities in (output.extras or {}).get("prm", []):
            fused = fused + segmentation_loss(probabilities, target)
        per_modality = {
            m: segmentation_loss(torch.softmax(logits.float(), dim=1), target)
            for m, logits in (output.aux or {}).items()
        }
        return LossTerms(fused, per_modality)

    def per_sample_loss(self, logits: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
        """The authors' per-output term (weighted cross-entropy plus soft Dice) of one prediction per sample (B,)."""
        return segmentation_loss_per_sample(torch.softmax(logits.float(), dim=1), self.onehot(batch, logits.device))

    def correct_class_score(
        self, logits: torch.Tensor, batch: Mapping[str, Any], *, cosine: bool = False, correct_only: bool = False
    ) -> torch.Tensor:
        """The mean over every voxel of softmax(logits)[label] per sample (B,): BraTS labels are class indices
        0..C-1 at every voxel (0 = background, a class the loss scores like the others, no void; the crop's padding
        is background too), the same voxels the one-hot target of the loss covers; the prediction has the label's
        size (RFNet's separate decoders: full resolution)."""
        labels = self.target(batch, logits.device)
        if tuple(logits.shape[2:]) != tuple(labels.shape[1:]):
            raise ValueError(
                f"segmentation3d scores full-resolution predictions: logits {tuple(logits.shape)} vs labels "
                f"{tuple(labels.shape)}"
            )
        return correct_class_scores(logits, labels, cosine=cosine, correct_only=correct_only)

    # ------------------------------------------------------------------ prediction
    def predict(self, host: Host, inputs: Mapping[str, torch.Tensor], present: torch.Tensor) -> HostOutput:
        return self.predict_subsets(host, inputs, [present])[0]

    def predict_subsets(
        self, host: Host, inputs: Mapping[str, torch.Tensor], masks: Sequence[torch.Tensor]
    ) -> list[HostOutput]:
        """Sliding-window probabilities for every mask, one volume of the batch at a time (the masks may differ
        per sample); per window the encoders run once for all masks when the host splits ``encode`` / ``fuse``."""
        from monai.inferers import sliding_window_inference

        volume = torch.cat([inputs[m] for m in self.modalities], dim=1)  # (B, M, D, H, W)
        outputs: list[list[torch.Tensor]] = [[] for _ in masks]
        for b in range(volume.shape[0]):
            rows = [mask[b : b + 1] for mask in masks]

            def predictor(window: torch.Tensor, rows: list[torch.Tensor] = rows) -> tuple[torch.Tensor, ...]:
                parts = {m: window[:, i : i + 1] for i, m in enumerate(self.modalities)}
                count = window.shape[0]
                if host.splits_encoding:
                    features = host.encode(parts)
                    results = [host.fuse(features, row.expand(count, -1)) for row in rows]
                else:
                    results = [host(parts, row.expand(count, -1)) for row in rows]
                return tuple(torch.softmax(r.logits.float(), dim=1) for r in results)

            probabilities = sliding_window_inference(
                volume[b : b + 1], self.window, 1, predictor, overlap=OVERLAP, mode="constant"
            )
            if isinstance(probabilities, torch.Tensor):
                probabilities = (probabilities,)
            for k, p in enumerate(probabilities):
                outputs[k].append(torch.as_tensor(p))
        return [HostOutput(logits=torch.cat(parts), present=mask) for parts, mask in zip(outputs, masks, strict=True)]

    # ------------------------------------------------------------------ metric
    def new_metric(self) -> TaskMetric:
        from reproduce.metrics.brats_dice import BratsDiceReport

        return BratsDiceReport()

    def update_metric(self, metric: TaskMetric, output: HostOutput, batch: Mapping[str, Any]) -> None:
        metric.update(output.logits.argmax(dim=1), self.target(batch))
