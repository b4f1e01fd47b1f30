"""Frequency Ratio Metric (Eq. 4) and the alternative preference rules of Table 8 (Eq. 3, 27, 28)."""

from __future__ import annotations

from typing import Literal

import torch

from .choices import FRM_RULES, PAIRINGS, FRMRule, Pairing
from .frequency import frequency_components
from .validation import check_choice, check_fraction, check_positive

__all__ = ["FRM_RULES", "PAIRINGS", "FRMRule", "Pairing", "frm", "frm_terms"]

Reduction = Literal["sum", "none"]


def frm_terms(
    low: torch.Tensor,
    high: torch.Tensor,
    rule: FRMRule = "ratio",
    sigma: float = 1e-6,
    omega: float = 0.9,
    pairing: Pairing = "patch",
) -> torch.Tensor:
    """Per-coefficient terms whose sum is the preference metric; same shape as ``low``.

    - ``ratio`` (Eq. 4): ``|low / (high + sigma)|``. A denominator that is exactly 0 (``high == -sigma``)
      is replaced by ``sigma``; a term beyond the dtype's range saturates at its largest finite value.
    - ``low_l1`` (Eq. 3): ``|low|``.
    - ``sum`` (Eq. 27): ``|low| + |high|``.
    - ``weighted_sum`` (Eq. 28): ``omega |low| + (1 - omega) |high|`` (the paper uses omega = 0.9).

    ``pairing="patch"`` pairs low(a, b) with high(p-1-a, p-1-b) of the same patch, as the authors'
    released code does. ``pairing="map"`` reads Eq. 4 literally on the reassembled (w x h) maps:
    low(a, b) is paired with high(w-1-a, h-1-b), i.e. also with the point-mirrored patch of the grid.
    Pairing only changes the ``ratio`` rule.
    """
    check_choice(rule, FRM_RULES, "rule")
    check_choice(pairing, PAIRINGS, "pairing")
    if rule == "low_l1":
        return low.abs()
    if rule == "sum":
        return low.abs() + high.abs()
    if rule == "weighted_sum":
        omega = check_fraction(omega, "omega")
        return omega * low.abs() + (1.0 - omega) * high.abs()
    sigma = check_positive(sigma, "sigma")
    if pairing == "map":
        d = (low.ndim - 2) // 2
        high = high.flip(tuple(range(2, 2 + d)))
    denominator = high + sigma
    denominator.masked_fill_(denominator == 0, sigma)
    return torch.div(low, denominator).abs_().clamp_(max=torch.finfo(low.dtype).max)


def frm(
    x: torch.Tensor,
    rule: FRMRule = "ratio",
    patch: int = 8,
    window: int = 2,
    sigma: float = 1e-6,
    reduction: Reduction = "sum",
    *,
    omega: float = 0.9,
    pairing: Pairing = "patch",
) -> torch.Tensor:
    """Modality-preference metric of a batch ``x`` (B, C, H, W) or (B, C, D, H, W).

    ``reduction="sum"`` sums over batch, channels, patches and the q x q window, as Eq. 4 and the
    authors' code do, and returns a 0-d tensor; ``reduction="none"`` returns the per-sample sums (B,).
    The terms are computed in float32 (float64 for float64 input, float32 for float16 / bfloat16) and
    summed in float64, so the result is float64 and never overflows. It is finite for every finite input
    with ``|x| <= 4e37`` (the largest value whose 8x8 DCT fits in float32); NaN or Inf in the input give a
    non-finite metric, which :class:`~mwam.FRMBank` and :class:`~mwam.MWAM` treat as a missing reading.
    """
    check_choice(reduction, ("sum", "none"), "reduction")
    low, high = frequency_components(x, patch=patch, window=window)
    terms = frm_terms(low, high, rule=rule, sigma=sigma, omega=omega, pairing=pairing)
    if reduction == "sum":
        return terms.sum(dtype=torch.float64)
    return terms.sum(dim=tuple(range(1, terms.ndim)), dtype=torch.float64)
