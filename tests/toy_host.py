"""A tiny two/three-branch host used by the MWAM tests (Host contract: modalities, branches())."""

from __future__ import annotations

import torch
from torch import nn


class ToyHost(nn.Module):
    def __init__(self, modalities: tuple[str, ...] = ("rgb", "depth"), channels: int = 3, aux_heads: bool = False):
        super().__init__()
        self.modalities = modalities
        self.encoders = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
                for m in modalities
            }
        )
        self.head = nn.Linear(4 * len(modalities), 2)
        self.aux = nn.ModuleDict({m: nn.Linear(4, 2) for m in modalities}) if aux_heads else None

    def branches(self) -> dict[str, nn.Module]:
        return {m: self.encoders[m] for m in self.modalities}

    def forward(self, inputs: dict[str, torch.Tensor]):
        features = {m: self.encoders[m](inputs[m]) for m in self.modalities}
        fused = self.head(torch.cat([features[m] for m in self.modalities], dim=1))
        aux = {m: self.aux[m](features[m]) for m in self.modalities} if self.aux is not None else {}
        return fused, aux


def toy_batch(batch: int = 4, size: int = 16, seed: int = 0, modalities=("rgb", "depth")) -> dict[str, torch.Tensor]:
    """rgb: white noise (high-frequency); depth: smooth ramps (low-frequency); ir: in between."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m in modalities:
        noise = torch.randn(batch, 3, size, size, generator=g)
        if m == "depth":
            ramp = torch.linspace(-1, 1, size).view(1, 1, 1, size)
            out[m] = ramp * torch.rand(batch, 3, 1, 1, generator=g) + 0.01 * noise
        elif m == "ir":
            out[m] = noise.cumsum(-1) / size
        else:
            out[m] = noise
    return out
