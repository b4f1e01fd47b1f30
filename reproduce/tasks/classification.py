"""Classification (CASIA-SURF; later UCF-101, FGVC-Aircraft / Stanford Dogs): cross-entropy, accuracy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from models.host import HostOutput
from reproduce.metrics import BinaryAccuracy
from reproduce.metrics.base import TaskMetric
from reproduce.tasks.base import Task


class ClassificationTask(Task):
    """Cross-entropy on the fused logits, plus the auxiliary heads' losses when the host has them.

    With auxiliary heads the loss is Eq. 7: ``L(y, y_o) + sum_i K_i L(y, y_i)``; K comes from MWAM when its
    intervention is ``loss`` or ``hybrid`` and is 1 otherwise.
    """

    name = "classification"

    def build_dataset(self, split: str, train: bool) -> Dataset:
        if self.dataset == "casia_surf":
            from datasets.casia_surf import CasiaSurfDataset

            return CasiaSurfDataset(self.data_root, split, train=train, seed=self.seed, **self.data_options)
        raise ValueError(f"the classification task has no loader for data set {self.dataset!r} yet")

    def loss(
        self, output: HostOutput, batch: Mapping[str, Any], mwam: Any
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        target = batch["label"].to(output.logits.device, non_blocking=True)
        fused = F.cross_entropy(output.logits.float(), target)
        parts = {"loss/fused": fused.detach()}
        if not output.aux:
            return fused, parts
        aux = {m: F.cross_entropy(logits.float(), target) for m, logits in output.aux.items()}
        parts.update({f"loss/{m}": value.detach() for m, value in aux.items()})
        if mwam is not None and mwam.config.intervention in ("loss", "hybrid"):
            total = mwam.weighted_loss(fused, aux)
        else:
            total = fused + sum(aux.values())
        parts["loss/total"] = total.detach()
        return total, parts

    def new_metric(self) -> TaskMetric:
        return BinaryAccuracy()

    def update_metric(self, metric: TaskMetric, output: HostOutput, batch: Mapping[str, Any]) -> None:
        metric.update(output.logits.detach(), batch["label"])
