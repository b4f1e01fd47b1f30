"""Block-by-block NumPy/SciPy reference of Sec. 4.1 and Eq. 3, 4, 27, 28 (slow, for tests only)."""

from __future__ import annotations

import itertools

import numpy as np
import scipy.fft


def reference_blocks(x: np.ndarray, patch: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """low/high of every patch via scipy.fft.dctn(norm="ortho"), layout (B, C, *grid, *(q,)*d)."""
    b, c, *spatial = x.shape
    d = len(spatial)
    grid = [s // patch for s in spatial]
    low = np.zeros((b, c, *grid, *(window,) * d), dtype=np.float64)
    high = np.zeros_like(low)
    for bi, ci in itertools.product(range(b), range(c)):
        for cell in itertools.product(*[range(g) for g in grid]):
            index = tuple(slice(k * patch, (k + 1) * patch) for k in cell)
            block = scipy.fft.dctn(x[(bi, ci, *index)].astype(np.float64), type=2, norm="ortho")
            low[(bi, ci, *cell)] = block[(slice(0, window),) * d]
            flipped = block[(slice(None, None, -1),) * d]  # coefficient p-1-a at position a
            high[(bi, ci, *cell)] = flipped[(slice(0, window),) * d]
    return low, high


def reference_frm(
    x: np.ndarray,
    rule: str = "ratio",
    patch: int = 8,
    window: int = 2,
    sigma: float = 1e-6,
    omega: float = 0.9,
    per_sample: bool = False,
) -> np.ndarray | float:
    low, high = reference_blocks(x, patch, window)
    if rule == "ratio":
        terms = np.abs(low / (high + sigma))
    elif rule == "low_l1":
        terms = np.abs(low)
    elif rule == "sum":
        terms = np.abs(low) + np.abs(high)
    elif rule == "weighted_sum":
        terms = omega * np.abs(low) + (1 - omega) * np.abs(high)
    else:
        raise ValueError(rule)
    if per_sample:
        return terms.reshape(terms.shape[0], -1).sum(axis=1)
    return float(terms.sum())
