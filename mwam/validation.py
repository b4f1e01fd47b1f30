"""Argument checks shared by the public functions; every failure says what was expected."""

from __future__ import annotations

import math

import torch


def check_image(x: object, name: str = "x") -> torch.Tensor:
    """``x`` must be a floating-point tensor of shape (B, C, H, W) or (B, C, D, H, W) with B, C >= 1."""
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
