"""Weight allocation function (Eq. 5) and the relative preference T it is applied to (Eq. 6)."""

from __future__ import annotations

import math
from typing import overload

import torch

from .choices import T_RULES, TRule
from .validation import check_choice, check_weight_parameters

__all__ = ["T_RULES", "TRule", "check_weight_parameters", "relative_frm", "weight_fn"]


@overload
def weight_fn(
    T: torch.Tensor, alpha: float = ..., beta: float = ..., lam: float = ..., gamma: float = ...
) -> torch.Tensor: ...
@overload
def weight_fn(T: float, alpha: float = ..., beta: float = ..., lam: float = ..., gamma: float = ...) -> float: ...
def weight_fn(T, alpha=1.5, beta=1.0, lam=6.0, gamma=0.7):
    """Eq. 5: ``K = alpha - beta / (1 + exp(-lam (T - gamma)))``; defaults are the paper's (Sec. 5.1).

    Accepts a float or a tensor; evaluated with a numerically stable sigmoid, so any finite or infinite
    T gives a finite K in [alpha - beta, alpha].
    """
    check_weight_parameters(alpha, beta, lam, gamma)
    if isinstance(T, torch.Tensor):
        return alpha - beta * torch.sigmoid(lam * (T - gamma))
    z = lam * (float(T) - gamma)
    s = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return alpha - beta * s


def relative_frm(
    current: torch.Tensor,
    current_valid: torch.Tensor,
    bank: torch.Tensor,
    bank_valid: torch.Tensor,
    rule: TRule = "batch",
    sigma: float = 1e-6,
) -> torch.Tensor:
    """Eq. 6: each modality's FRM relative to the mean over modalities, for any number of modalities.

    ``current`` (M,) holds this step's FRMs, where ``current_valid`` is False the bank value stands in
    (a modality absent from the batch, Fig. 2b). The denominator is the mean of those stand-in-filled
    current values (``rule="batch"``, the paper's Eq. 6) or the mean of the banks (``rule="bank"``, the
    authors' released code). Modalities with neither reading nor bank value get T = 0 and are left out
    of the mean. Works on device without host synchronisation.
    """
    check_choice(rule, T_RULES, "rule")
    effective = torch.where(current_valid, current, bank)
    defined = current_valid | bank_valid
    reference, reference_defined = (effective, defined) if rule == "batch" else (bank, bank_valid)
    zero = torch.zeros_like(reference)
    count = reference_defined.sum().clamp(min=1).to(reference.dtype)
    mean = torch.where(reference_defined, reference, zero).sum() / count
    return torch.where(defined, effective / (mean + sigma), zero)
