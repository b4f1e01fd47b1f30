"""The curriculum: alpha(t), lambda(t) and the SNR penalty as functions of training progress t in [0, 1].

The text fixes only directions: alpha(t) modulates the enhancement with progress, lambda(t) "gradually
shifts emphasis from global spectral regularization to fine-grained instance alignment", and the SNR
regularization "aggressively attenuates noise ... early in training and relaxes the penalty" later. All
three are one monotone ramp r(t) from 0 to 1 -- ``cosine`` (default, flat at both ends) or ``linear`` --
mapped onto their ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .validation import check_choice, check_progress

Shape = Literal["cosine", "linear"]
SHAPES: tuple[str, ...] = ("cosine", "linear")


def ramp(t: float, shape: Shape = "cosine") -> float:
    """0 at t = 0, 1 at t = 1, non-decreasing: ``(1 - cos(pi t)) / 2`` or ``t``. t outside [0, 1] raises."""
    t = check_progress(t)
    check_choice(shape, SHAPES, "shape")
    return t if shape == "linear" else 0.5 * (1.0 - math.cos(math.pi * t))


def interpolate(t: float, start: float, end: float, shape: Shape = "cosine") -> float:
    """``start + (end - start) * ramp(t)``."""
    return start + (end - start) * ramp(t, shape)


def alpha(t: float, shape: Shape = "cosine") -> float:
    """alpha(t) in [0, 1], rising: the enhancement of strong and weak directions grows with progress."""
    return ramp(t, shape)


def spectral_weight(t: float, start: float = 1.0, end: float = 0.1, shape: Shape = "cosine") -> float:
    """lambda(t): the weight of the spectral loss terms, from ``start`` (t = 0) to ``end`` (t = 1)."""
    return interpolate(t, start, end, shape)


def snr_penalty(t: float, start: float = 4.0, end: float = 0.25, shape: Shape = "cosine") -> float:
    """mu(t): the SNR penalty on the noise directions, strong early (``start``) and relaxed late (``end``)."""
    return interpolate(t, start, end, shape)


def noise_attenuation(penalty: float) -> float:
    """s = mu / (1 + mu): sigma' = argmin_x (x - sigma)^2 + mu x^2 = sigma / (1 + mu) = (1 - s) sigma."""
    return penalty / (1.0 + penalty)


@dataclass(frozen=True)
class Curriculum:
    """The schedule's values at one progress t: alpha, lambda, the SNR penalty mu and its attenuation s."""

    t: float
    alpha: float
    lam: float
    snr_penalty: float
    attenuation: float

    @classmethod
    def at(
        cls,
        t: float,
        *,
        shape: Shape = "cosine",
        lambda_start: float = 1.0,
        lambda_end: float = 0.1,
        snr_start: float = 4.0,
        snr_end: float = 0.25,
    ) -> Curriculum:
        t = check_progress(t)
        mu = snr_penalty(t, snr_start, snr_end, shape)
        return cls(
            t=t,
            alpha=alpha(t, shape),
            lam=spectral_weight(t, lambda_start, lambda_end, shape),
            snr_penalty=mu,
            attenuation=noise_attenuation(mu),
        )
