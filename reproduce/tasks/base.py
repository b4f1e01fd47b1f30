"""The Task contract: what the trainer asks of a task kind (classification, 2-D / 3-D segmentation, detection)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import Dataset

from models.host import HostOutput
from reproduce.metrics.base import TaskMetric
from reproduce.subsets import dataset as dataset_info
from reproduce.subsets import subsets


class Task(ABC):
    """A task owns its data sets, its loss, its metric and the subset order of the paper's tables."""

    name: str = ""

    def __init__(self, dataset: str, data_root: str, seed: int, data_options: dict[str, Any] | None = None) -> None:
        self.dataset = dataset
        self.data_root = data_root
        self.seed = seed
        self.data_options = dict(data_options or {})
        self.modalities = dataset_info(dataset).modalities

    @property
    def subsets(self) -> list[tuple[str, ...]]:
        return subsets(self.dataset)

    @abstractmethod
    def build_dataset(self, split: str, train: bool) -> Dataset:
        """The data set of ``split``; its items are dicts with one tensor per modality and the targets."""

    def inputs(self, batch: Mapping[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        return {m: batch[m].to(device, non_blocking=True) for m in self.modalities}

    @abstractmethod
    def loss(
        self, output: HostOutput, batch: Mapping[str, Any], mwam: Any
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss and its named parts (detached) for logging."""

    @abstractmethod
    def new_metric(self) -> TaskMetric:
        """A fresh metric accumulator."""

    @abstractmethod
    def update_metric(self, metric: TaskMetric, output: HostOutput, batch: Mapping[str, Any]) -> None:
        """Feed one evaluated batch to ``metric``."""
