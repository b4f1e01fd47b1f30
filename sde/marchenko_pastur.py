"""The Marchenko-Pastur law as the noise model of the spectral split.

For an m x n matrix of i.i.d. entries with variance sigma^2, the singular values fill the bulk
``[sigma |sqrt(m) - sqrt(n)|, sigma (sqrt(m) + sqrt(n))]`` as m, n grow; the upper end is the "theoretical
bound for random covariance matrices" the text uses. sigma is estimated from the spectrum itself with the
median rule of Gavish & Donoho (2014): ``sigma = median singular value / sqrt(N * mu_beta)``, N the larger
dimension, mu_beta the median of the MP law of aspect ratio beta = min / max.
"""

from __future__ import annotations

import functools
import math

import torch

_GRID = 20_000


def mp_edge(m: int, n: int, sigma: float) -> float:
    """Upper edge of the MP bulk of an m x n noise matrix: ``sigma (sqrt(m) + sqrt(n))`` (0 if m or n is 0)."""
    if m <= 0 or n <= 0:
        return 0.0
    return float(sigma) * (math.sqrt(m) + math.sqrt(n))


def tw_scale(m: int, n: int, sigma: float) -> float:
    """Tracy-Widom scale of the largest noise singular value: ``sigma (1/sqrt(m) + 1/sqrt(n))^(1/3) / 2``.

    Johnstone (2001): lambda_max of Z^T Z is ``(sqrt m + sqrt n)^2 + s TW1`` with
    ``s = (sqrt m + sqrt n)(1/sqrt m + 1/sqrt n)^(1/3)``; in singular-value units s / (2 (sqrt m + sqrt n)).
    P(TW1 > 2.02) ~ 1 %: a pure-noise matrix crosses ``edge + 2 tw_scale`` about once in a hundred.
    """
    if m <= 0 or n <= 0:
        return 0.0
    return float(sigma) * (1 / math.sqrt(m) + 1 / math.sqrt(n)) ** (1 / 3) / 2


@functools.lru_cache(maxsize=256)
def mp_median(beta: float) -> float:
    """Median of the Marchenko-Pastur law with ratio ``beta`` in (0, 1] and unit variance.

    The density ``sqrt((b - x)(x - a)) / (2 pi beta x)`` on ``[a, b] = [(1 - sqrt beta)^2, (1 + sqrt beta)^2]`` is
    the law of the eigenvalues of ``X^T X / N`` (X is N x p, beta = p / N). Substituting
    ``x = c + h cos(theta)`` (c, h the centre and half-width) removes the square-root end points, so a
    midpoint rule on 20 000 points gives the median to ~1e-9; the median is found by interpolation.
    Float64, no SciPy. ``mp_median(1.0)`` is 0.6528 (Gavish & Donoho's table).
    """
    beta = float(beta)
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta!r}")
    a, b = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    c, h = (a + b) / 2, (b - a) / 2
    theta = (torch.arange(_GRID, dtype=torch.float64) + 0.5) * (math.pi / _GRID)
    # sin^2 / x written as (1 - cos)(1 + cos) / x keeps beta = 1 (x -> 0 at theta -> pi) finite
    x = c + h * torch.cos(theta)
    density = h * h * (1 - torch.cos(theta)) * (1 + torch.cos(theta)) / (2 * math.pi * beta * x)
    mass = density * (math.pi / _GRID)  # mass[i] belongs to x[i]; x decreases along theta
    cdf_from_top = torch.cumsum(mass, 0)  # P(X >= x[i]) up to the cell boundary
    total = float(cdf_from_top[-1])
    index = int(torch.searchsorted(cdf_from_top, torch.tensor([total / 2], dtype=torch.float64)))
    lower = float(cdf_from_top[index - 1]) if index > 0 else 0.0
    fraction = (total / 2 - lower) / float(mass[index])
    theta_median = (index + fraction) * (math.pi / _GRID)
    return c + h * math.cos(theta_median)


def estimate_noise_sigma(singular_values: torch.Tensor, m: int, n: int) -> float:
    """Gavish-Donoho: ``median(singular_values) / sqrt(max(m, n) * mp_median(min / max))``.

    ``singular_values`` are the min(m, n) values of the effective noise matrix (m x n); robust to a few
    large signal values as long as the signal rank is well below min(m, n). 0 when m or n is 0.
    """
    r = min(m, n)
    if r <= 0 or singular_values.numel() == 0:
        return 0.0
    beta = r / max(m, n)
    median = float(torch.quantile(singular_values[:r].to(torch.float64), 0.5))
    return median / math.sqrt(max(m, n) * mp_median(beta))
