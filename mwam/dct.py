"""Orthonormal DCT-II basis used to take the frequency components of image patches (Sec. 4.1)."""

from __future__ import annotations

import math

import torch

_CACHE: dict[tuple, torch.Tensor] = {}


def _basis_float64(size: int) -> torch.Tensor:
    k = torch.arange(size, dtype=torch.float64).unsqueeze(1)
    n = torch.arange(size, dtype=torch.float64).unsqueeze(0)
    basis = torch.cos(math.pi * (2.0 * n + 1.0) * k / (2.0 * size))
    basis[0] *= math.sqrt(1.0 / size)
    basis[1:] *= math.sqrt(2.0 / size)
    return basis


def dct_matrix(size: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """The ``size x size`` orthonormal DCT-II matrix ``C[k, n] = s_k cos(pi (2n + 1) k / 2N)``.

    ``C @ v`` equals ``scipy.fft.dct(v, type=2, norm="ortho")``; ``C @ X @ C.T`` is the 2-D transform.
    Built once in float64, then cached per (size, dtype, device).
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"DCT size must be a positive integer, got {size!r}")
    key = ("full", size, dtype, torch.device(device))
    if key not in _CACHE:
        _CACHE[key] = _basis_float64(size).to(dtype=dtype, device=device)
    return _CACHE[key]


def corner_bases(patch: int, window: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Rows of the DCT basis that produce the two sampled corners, stacked as ``(2 * window, patch)``.

    Rows ``0 .. q-1`` give the low-frequency coefficients ``0 .. q-1``. Rows ``q .. 2q-1`` give the
    high-frequency coefficients in reversed order ``p-1, p-2, .., p-q``: the high block comes out flipped
    on every axis, so high position ``a`` holds coefficient ``p-1-a`` -- the pairing of Eq. 4.
    """
    key = ("corners", patch, window, dtype, torch.device(device))
    if key not in _CACHE:
        full = _basis_float64(patch)
        rows = torch.cat([full[:window], full.flip(0)[:window]], dim=0)
        _CACHE[key] = rows.to(dtype=dtype, device=device).contiguous()
    return _CACHE[key]


def corner_kernels(patch: int, window: int, dims: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Convolution kernels ``(2 * q**d, 1, p, .., p)`` whose stride-``p`` response is the two sampled corners.

    Kernel ``(u1, .., ud)`` of the first half is the outer product of DCT rows ``u1 .. ud`` (low block);
    the second half uses rows ``p-1-u`` (high block, already flipped; see :func:`corner_bases`).
    """
    key = ("kernels", patch, window, dims, dtype, torch.device(device))
    if key not in _CACHE:
        rows = corner_bases(patch, window, torch.float64, "cpu")
        freq, pixel = "uvw"[:dims], "abc"[:dims]
        spec = ",".join(f + x for f, x in zip(freq, pixel, strict=True)) + "->" + freq + pixel
        halves = [
            torch.einsum(spec, *[part] * dims).reshape(window**dims, *(patch,) * dims)
            for part in (rows[:window], rows[window:])
        ]
        _CACHE[key] = torch.cat(halves).unsqueeze(1).to(dtype=dtype, device=device).contiguous()
    return _CACHE[key]
