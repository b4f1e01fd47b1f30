"""A toy host, data set and task for the engine's tests: real trainer, registry and methods, seconds per run.

``toy_config(root, **sections)`` builds a run of host ``toy`` on task ``toy`` (an in-memory three-modality data
set); ``root`` is a folder with CASIA-SURF's list files (``toy_root``) so that the run has a data fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mwam_harness.catalog import HOSTS, TASKS
from mwam_harness.datasets.casia_surf import SPLITS
from mwam_harness.models import Host, HostOutput
from mwam_harness.models.registry import ModelInfo
from reproduce.runs.config import RunConfig, merge_settings
from reproduce.runs.runtime import Runtime
from reproduce.tasks.classification import ClassificationTask

MODALITIES = ("rgb", "depth", "ir")
RUNTIME = Runtime(device="cpu", progress=False, log_every=2, wandb="disabled", table=4, column="SF-MD")


class ToyHost(Host):
    """Three conv branches, feature zeroing, a linear head; in training a random per-sample modality draw (like
    SF-MD: it exercises the RNG state on resume) unless ``dropout=False``."""

    modalities = MODALITIES

    def __init__(self, aux_heads: bool = False, dropout: bool = True) -> None:
        super().__init__()
        self.dropout = dropout
        self.branch = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
                for m in MODALITIES
            }
        )
        self.head = nn.Linear(12, 2)
        self.aux = nn.ModuleDict({m: nn.Linear(4, 2) for m in MODALITIES}) if aux_heads else None

    def branches(self) -> dict[str, nn.Module]:
        return dict(self.branch.items())

    @classmethod
    def example_inputs(cls, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return {m: torch.randn(batch, 3, 16, 16, generator=generator) for m in MODALITIES}

    def training_dropout(self, present: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.dropout:
            return present
        if generator is not None:
            return present & (torch.rand(present.shape, generator=generator) > 0.3).to(present.device)
        return present & (torch.rand(present.shape, device=present.device) > 0.3)

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor | None = None) -> HostOutput:
        present = self.check_inputs(inputs, present)
        if self.training:
            present = self.training_dropout(present)
        return self.fuse(self.encode(inputs), present)

    def encode(self, inputs):
        return {m: self.branch[m](inputs[m]) for m in MODALITIES}

    def fuse(self, features, present):
        fused = torch.cat([features[m] * present[:, i, None] for i, m in enumerate(MODALITIES)], dim=1)
        aux = {m: self.aux[m](features[m]) for m in MODALITIES} if self.aux is not None else None
        return HostOutput(self.head(fused), aux=aux, present=present)


class ToyData(torch.utils.data.Dataset):
    def __init__(self, size: int, seed: int, train: bool) -> None:
        g = torch.Generator().manual_seed(seed + (0 if train else 1))
        self.labels = torch.randint(0, 2, (size,), generator=g)
        self.x = {
            m: torch.randn(size, 3, 16, 16, generator=g) + self.labels.view(-1, 1, 1, 1) * k
            for k, m in zip((0.2, 1.0, 0.5), MODALITIES, strict=True)
        }
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {m: self.x[m][i] for m in MODALITIES}
        item["label"] = self.labels[i]
        return item


class ToyTask(ClassificationTask):
    def build_dataset(self, split: str, train: bool) -> ToyData:
        return ToyData(24 if train else 16, self.seed, train)


def toy_root(directory: Path) -> Path:
    """A folder with CASIA-SURF's three list files and a synthetic marker: the toy run's data fingerprint."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, name in SPLITS.items():
        (directory / name).write_text(f"toy {split}\n", encoding="utf-8")
    (directory / "synthetic.json").write_text(json.dumps({"kind": "toy"}), encoding="utf-8")
    return directory


def register_toy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register host ``toy`` and task ``toy`` for one test."""
    HOSTS.discover()  # the real hosts first: the toy joins them (discovery later would not remove it)
    TASKS.discover()
    monkeypatch.setitem(HOSTS.entries, "toy", ModelInfo("toy", ToyHost))
    monkeypatch.setitem(TASKS.entries, "toy", ToyTask)


BASE: dict[str, Any] = {
    "host": {"name": "toy", "options": {"aux_heads": True}},
    "task": "toy",
    "train": {"epochs": 3, "batch_size": 5, "deterministic": True},
    "optim": {"lr": 0.05},
    "schedule": {"warmup_epochs": 1, "milestones": [2]},
    "eval": {"batch_size": 8},
    "mwam": {"intervention": "hybrid"},
}


def toy_config(root: Path, **sections: Any) -> RunConfig:
    """The toy run on data ``root`` with nested ``sections`` merged over :data:`BASE` (``train={"epochs": 1}``)."""
    values = merge_settings({"data": {"dataset": "casia_surf", "root": str(root)}, **BASE}, sections)
    return RunConfig.from_dict(values)


def weights(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def use_tiny_smoke_preset(monkeypatch: pytest.MonkeyPatch, train: dict[str, Any] | None = None, **changes: Any) -> None:
    """Shrink CASIA-SURF's smoke preset for one test (24 images of 48 px, 36 px crops, 3 iterations an epoch);
    ``train`` settings and preset fields (``methods=...``) on top."""
    import dataclasses

    import mwam_harness.datasets.casia_surf as surf

    smoke = surf.PRESETS["smoke"]
    run = {
        **smoke.run,
        "data": {"options": {"resize": 48, "crop": 36}},
        "train": {**smoke.run["train"], "iterations_per_epoch": 3, **(train or {})},
    }
    generator = {"num_train": 24, "num_val": 8, "num_test": 8, "size": 48}
    monkeypatch.setitem(surf.PRESETS, "smoke", dataclasses.replace(smoke, run=run, generator=generator, **changes))
