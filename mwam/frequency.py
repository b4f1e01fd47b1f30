"""Low- and high-frequency components of non-overlapping patches (Sec. 4.1, Fig. 2a).

Each spatial axis is cut into whole patches of ``p`` pixels; a remainder that is not a multiple of
``p`` (the last ``H mod p`` rows, ``W mod p`` columns, ``D mod p`` slices) is dropped, like a block
codec without padding. A 2-D input (B, C, H, W) is cut into p x p patches; a 3-D volume (B, C, D, H, W)
into p x p x p cubes with a separable 3-D DCT-II, so a volume's low block is the q x q x q corner of
lowest frequencies along all three axes and its high block the opposite corner.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from .dct import corner_kernels
from .precision import exact_float32
from .validation import check_image, check_patch_window

_warned_small: set[tuple[int, ...]] = set()


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other floating dtype (float16, bfloat16, float32) computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def frequency_components(x: torch.Tensor, patch: int = 8, window: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal DCT-II of every patch and channel; returns the sampled corners ``(low, high)``.

    Shapes are ``(B, C, *grid, *(q,) * d)`` with ``grid = (S // p for S in spatial)`` and ``d`` the number
    of spatial axes. ``low[..., a, b]`` is coefficient ``(a, b)`` of the patch (top-left q x q block);
    ``high[..., a, b]`` is coefficient ``(p-1-a, p-1-b)`` (bottom-right block flipped on both axes), so
    ``low / high`` pairs the entries exactly as Eq. 4 does. The values are computed in float32
    (float64 for float64 input) with autocast off and full-precision matmuls.
    """
    check_image(x)
    check_patch_window(patch, window)
    spatial = tuple(x.shape[2:])
    d = len(spatial)
    grid = tuple(s // patch for s in spatial)
    dtype = compute_dtype(x.dtype)
    batch, channels = x.shape[:2]
    if min(grid) == 0:
        if spatial not in _warned_small:
            _warned_small.add(spatial)
            if d == 3 and grid[0] == 0 and min(grid[1:]) > 0:
                fix = (
                    f"If this is a video (B, C, T, H, W) with T = {spatial[0]} frames, its frames must not be cut "
                    "along time: compute per frame -- MWAM(..., layouts={modality: 'video'}), or fold the frames "
                    "into the batch (x.transpose(1, 2).flatten(0, 1)). For a true volume, use a smaller patch."
                )
            else:
                fix = "Use a smaller patch."
            warnings.warn(
                f"input of spatial size {spatial} is smaller than one {patch}-pixel patch along some axis: "
                f"no patch fits, so its frequency components are empty (FRM 0). {fix}",
                stacklevel=2,
            )
        empty = x.new_zeros((batch, channels, *grid, *(window,) * d), dtype=dtype)
        return empty, empty.clone()

    crop = tuple(slice(0, g * patch) for g in grid)
    x = x[(slice(None), slice(None), *crop)].reshape(batch * channels, 1, *(g * patch for g in grid))
    no_autocast = (
        torch.autocast(device_type=x.device.type, enabled=False)
        if torch.amp.is_autocast_available(x.device.type)
        else contextlib.nullcontext()
    )
    with no_autocast, exact_float32():
        # One stride-p convolution with the 2 q**d outer-product kernels: every patch's two corners at once.
        kernels = corner_kernels(patch, window, d, dtype, x.device)
        convolve = torch.nn.functional.conv2d if d == 2 else torch.nn.functional.conv3d
        coeffs = convolve(x.to(dtype), kernels, stride=patch)
    # (B*C, 2 * q**d, *grid) -> (B, C, 2, *grid, q, .., q)
    coeffs = coeffs.reshape(batch, channels, 2, *(window,) * d, *grid)
    order = [0, 1, 2, *range(3 + d, 3 + 2 * d), *range(3, 3 + d)]
    coeffs = coeffs.permute(order)
    return coeffs[:, :, 0], coeffs[:, :, 1]
