"""LFM's two lambda schedules without torch: the fitted polynomial and the learnable step's rate and bounds."""

from __future__ import annotations

#: lambda_c(epoch) = sum_i c_i epoch^i: ``coef_alpha1`` of njustkmg/NeurIPS24-LFM ``Crema_epoch.py`` l.49 (its
#: ``coef_alpha2``, l.50, is 1 minus this polynomial term by term: lambda_g = 1 - lambda_c).
FITTED_COEFFICIENTS = (2.04623704e-01, 3.35472727e-03, 1.22989557e-04, -2.92947416e-06, 2.23835486e-08, -5.39717505e-11)
#: The learnable step's bounds on lambda_g (``Crema_epoch_learnable.py`` l.93).
LAMBDA_G_BOUNDS = (0.05, 0.95)


def fitted_polynomial(epoch: float) -> float:
    """The official polynomial at ``epoch`` (0-based, as the official loop's ``range(epochs)``), unclipped."""
    return sum(c * epoch**i for i, c in enumerate(FITTED_COEFFICIENTS))


def fitted_lambdas(epoch: int) -> tuple[float, float]:
    """(lambda_c, lambda_g) of the fitted schedule: the polynomial clipped to [0, 1] (it exceeds 1 at epochs 177-188,
    up to 1.011, and is negative from epoch 227 on: it was fitted to the official 200 epochs), lambda_g = 1 -
    lambda_c."""
    lambda_c = min(1.0, max(0.0, fitted_polynomial(epoch)))
    return lambda_c, 1.0 - lambda_c


def learnable_rate(epoch: int, lr_alpha: float, halve_every: int) -> float:
    """The learnable step's rate at ``epoch``: the official ``if epoch % 20 == 0 and epoch != 0: lr_alpha /= 2``
    run at every epoch is ``lr_alpha / 2 ** (epoch // 20)``."""
    return lr_alpha / 2 ** (epoch // halve_every)


def learnable_step(lambda_g: float, hypergradient: float, rate: float) -> tuple[float, float]:
    """The official update: lambda_g -= rate x hypergradient, clipped to [0.05, 0.95]; lambda_c = 1 - lambda_g."""
    low, high = LAMBDA_G_BOUNDS
    lambda_g = max(low, min(high, lambda_g - rate * hypergradient))
    return 1.0 - lambda_g, lambda_g
