"""Argument checks shared by the public functions; every failure says what was expected.

Imports no torch at module level: ``mwam.config`` (and so a run configuration that names MWAM options) stays
torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .choices import LAYOUTS

if TYPE_CHECKING:
    import torch


def check_image(x: object, name: str = "x") -> torch.Tensor:
    """``x`` must be a floating-point tensor of shape (B, C, H, W) or (B, C, D, H, W) with B, C >= 1."""
    import torch  # here, not at the top: the scalar checks (and so mwam.config) import no torch

    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name}: expected a torch.Tensor of shape (B, C, H, W) or (B, C, D, H, W), got {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"{name}: expected a floating-point tensor, got dtype {x.dtype}; convert it first (e.g. x.float())"
        )
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{name}: expected an image batch (B, C, H, W) or a volume batch (B, C, D, H, W), "
            f"got {x.ndim} dimensions with shape {tuple(x.shape)}"
        )
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name}: batch and channel sizes must be at least 1, got shape {tuple(x.shape)}")
    return x


def check_patch_window(patch: int, window: int) -> None:
    if not isinstance(patch, int) or isinstance(patch, bool) or patch < 1:
        raise ValueError(f"patch must be a positive integer (the paper uses 8), got {patch!r}")
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= patch:
        raise ValueError(f"window must be an integer in [1, patch={patch}] (the paper uses 2), got {window!r}")


def check_positive(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_fraction(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def check_weight_parameters(alpha: float, beta: float, lam: float, gamma: float) -> None:
    """The weights must stay positive: K lies in (alpha - beta, alpha] for beta >= 0, lam >= 0."""
    values = {"alpha": alpha, "beta": beta, "lam": lam, "gamma": gamma}
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if beta < 0 or lam < 0:
        raise ValueError(f"beta and lam must be >= 0 so that K decreases with T (Eq. 5), got beta={beta}, lam={lam}")
    if alpha - beta < 0 or alpha <= 0:
        raise ValueError(
            f"alpha={alpha}, beta={beta} allow negative or zero-only weights (K ranges over (alpha - beta, alpha]);"
            " a negative K would reverse a branch's gradient. Use alpha > 0 and alpha >= beta."
        )


def check_layouts(layouts: object) -> dict[str, str]:
    """``layouts`` must map modality names to ``image``, ``volume`` or ``video``; returns a plain dict copy."""
    if not isinstance(layouts, Mapping):
        raise ValueError(
            f"layouts must be a mapping {{modality: layout}} with layouts {', '.join(repr(c) for c in LAYOUTS)}, "
            f"e.g. {{'visual': 'video'}}; got {type(layouts).__name__}"
        )
    for name, layout in layouts.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"layouts: keys must be modality names (non-empty strings), got {name!r}")
        if layout not in LAYOUTS:
            raise ValueError(
                f"layouts[{name!r}] must be one of {', '.join(repr(c) for c in LAYOUTS)}; got {layout!r} "
                "(image: (B, C, H, W); volume: (B, C, D, H, W); video: (B, C, T, H, W))"
            )
    return dict(layouts)
