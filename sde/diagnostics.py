"""Energy of each subspace -- the quantity the text reports ("strong-signal energy rises from 10.42% to 17.32%")."""

from __future__ import annotations

from typing import Any

import torch

from .spectrum import SUBSPACES, SpectralSplit, spectral_split


def energy_fractions(split_or_features: SpectralSplit | torch.Tensor, **split_kwargs: Any) -> dict[str, float]:
    """Fractions of the spectral energy ``sum sigma_i^2`` (= ||X||_F^2) in each subspace, and of the dimensions.

    Keys ``strong``, ``weak``, ``noise`` (energy, summing to 1; a zero matrix is all noise) and
    ``strong_dims``, ``weak_dims``, ``noise_dims``: the share of the n feature dimensions spanned by each
    subspace (directions beyond min(m, n) carry no energy and count as noise), the "88.7% of semantic
    energy in just 17% of dimensions" of the text. A tensor is split first with ``split_kwargs``.
    Python floats, for logging (reads the values from the device).
    """
    split = (
        split_or_features
        if isinstance(split_or_features, SpectralSplit)
        else spectral_split(split_or_features, **split_kwargs)
    )
    energy = split.S.to(torch.float64) ** 2
    total = float(energy.sum())
    n = split.Vh.shape[1]
    values: dict[str, float] = {}
    for name in SUBSPACES:
        mask = split.mask(name)
        values[name] = float(energy[mask].sum()) / total if total > 0 else float(name == "noise")
    values["noise"] = max(0.0, 1.0 - values["strong"] - values["weak"]) if total > 0 else 1.0
    values["strong_dims"] = int(split.strong.sum()) / n
    values["weak_dims"] = int(split.weak.sum()) / n
    values["noise_dims"] = 1.0 - values["strong_dims"] - values["weak_dims"]
    return values
