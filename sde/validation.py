"""Argument checks shared by the public functions; every failure says what was expected.

Imports no torch at module level (the tensor checks import it when called): ``sde.config`` stays torch-free, so
that a run configuration can validate SDE options without loading torch.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: The dtypes the SVD may run in, by name.
COMPUTE_DTYPES: tuple[str, ...] = ("float32", "float64")


def check_matrix(x: object, name: str = "features") -> torch.Tensor:
    """``x`` must be a floating-point tensor of shape (m samples, n dims) with m, n >= 1."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape (m, n), got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}; convert it first")
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name}: expected a matrix (m samples, n dims) with m, n >= 1, got shape {tuple(x.shape)}")
    return x


def check_finite(x: torch.Tensor, name: str = "features") -> torch.Tensor:
    """Rejects NaN / Inf: an SVD of a non-finite matrix is undefined (reads one value from the device)."""
    import torch

    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: contains NaN or Inf; SDE needs finite features")
    return x


def check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    """Paired embeddings: same shape (m samples of the same n-dim space), same device."""
    check_matrix(a, "a")
    check_matrix(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            f"paired embeddings must have the same shape (m, n), got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.device != b.device:
        raise ValueError(f"paired embeddings must be on the same device, got {a.device} and {b.device}")


def compute_dtype_name(dtype: object) -> str:
    """``"float32"`` or ``"float64"`` for that name or for ``torch.float32`` / ``torch.float64`` (no torch needed)."""
    name = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be torch.float32 or torch.float64 (or their names), got {dtype!r}")
    return name


def check_compute_dtype(dtype: object) -> torch.dtype:
    """The torch dtype of ``compute_dtype`` (a name or a torch dtype)."""
    import torch

    return getattr(torch, compute_dtype_name(dtype))


def check_progress(t: object) -> float:
    """Training progress t in [0, 1] (a Python number or a one-element tensor)."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is loaded: no import needed
    if torch is not None and isinstance(t, torch.Tensor) and t.numel() == 1:
        t = float(t)
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise ValueError(f"progress t must be a number in [0, 1] (fraction of training done), got {t!r}")
    return float(t)


def check_positive(value: object, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_non_negative(value: object, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_fraction(value: object, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def check_choice(value: object, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value  # type: ignore[return-value]


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value
