"""Spectral enhancement: ``F' = U (Sigma + Delta) V^T`` with a diagonal, norm-bounded Delta.

The text ("Spectral Enhancement"): strong directions get "controlled adversarial noise whose intensity is
modulated by training progress alpha(t) and the relative size of the singular value"; weak singular
values are scaled down "adaptively with alpha(t)"; noise singular values are attenuated by an SNR
regularization, strongly early and relaxed later; "the Frobenius norm of Delta is bounded".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import SDEConfig
from .schedule import Curriculum
from .spectrum import SpectralSplit, spectral_split
from .svd import frobenius
from .validation import check_matrix, check_progress


@dataclass(frozen=True)
class Enhancement:
    """Result of :func:`spectral_enhance`.

    ``features``: F' = F + delta_features in the input dtype; its gradient w.r.t. F is the identity.
    ``delta_features``: U diag(Delta) V^T (m x n, input dtype, no gradient) -- add it to any tensor that
    F was pooled from. ``delta``: the diagonal of Delta (r,), compute dtype. ``scale``: the factor (<= 1)
    the bound ``||Delta||_F <= rho ||Sigma||_F`` applied (1 = not active).
    """

    features: torch.Tensor
    delta_features: torch.Tensor
    delta: torch.Tensor
    scale: float
    split: SpectralSplit
    curriculum: Curriculum


def random_signs(r: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """r Rademacher signs (+1 / -1, float64) drawn on the generator's device (CPU by default)."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, 2, (r,), generator=generator, device=device).to(torch.float64) * 2 - 1


def adversarial_signs(split: SpectralSplit, grad: torch.Tensor) -> torch.Tensor:
    """``sign(u_i^T G v_i)``: moving sigma_i this way increases the loss whose gradient w.r.t. F is G (FGSM).

    A projection at rounding level (<= 64 eps of the largest) gets sign 0: it carries no direction.
    """
    check_matrix(grad, "grad")
    if grad.shape != (split.U.shape[0], split.Vh.shape[1]):
        raise ValueError(
            f"grad must have the features' shape {(split.U.shape[0], split.Vh.shape[1])}, got {tuple(grad.shape)}"
        )
    g = grad.detach().to(split.U.dtype)
    projected = (split.U * (g @ split.Vh.T)).sum(0)
    resolvable = projected.abs() > 64 * torch.finfo(projected.dtype).eps * projected.abs().amax()
    return torch.where(resolvable, torch.sign(projected), torch.zeros_like(projected))


def delta_diagonal(
    split: SpectralSplit,
    curriculum: Curriculum,
    signs: torch.Tensor,
    *,
    strong_noise: float = 0.1,
    weak_scale: float = 0.2,
    rho: float = 0.25,
) -> tuple[torch.Tensor, float]:
    """The diagonal of Delta and the bound's scale factor.

    strong: ``signs_i * strong_noise * alpha * (sigma_i / sigma_1) * sigma_i``;
    weak:   ``-weak_scale * alpha * sigma_i``;
    noise:  ``-attenuation * sigma_i`` (attenuation = mu / (1 + mu), the SNR penalty's closed form);
    then ``Delta <- Delta * min(1, rho ||Sigma||_F / ||Delta||_F)``, so ``||Delta||_F <= rho ||Sigma||_F``.
    With strong_noise, weak_scale <= 1 every sigma_i + Delta_i stays >= 0.
    """
    S = split.S
    if signs.shape != S.shape:
        raise ValueError(f"signs must have shape {tuple(S.shape)}, got {tuple(signs.shape)}")
    signs = signs.to(device=S.device, dtype=S.dtype)
    relative = S / S[0].clamp_min(torch.finfo(S.dtype).tiny) if S.numel() else S
    a = curriculum.alpha
    strong = signs * (strong_noise * a) * relative * S
    weak = -(weak_scale * a) * S
    noise = -curriculum.attenuation * S
    zero = torch.zeros_like(S)
    delta = torch.where(split.strong, strong, torch.where(split.weak, weak, torch.where(split.noise, noise, zero)))
    bound = rho * frobenius(S) * (1 - 8 * torch.finfo(S.dtype).eps)
    norm = frobenius(delta)
    scale = min(1.0, bound / norm) if norm > 0 else 1.0
    return delta * scale, scale


def spectral_enhance(
    features: torch.Tensor,
    progress: float,
    *,
    config: SDEConfig | None = None,
    split: SpectralSplit | None = None,
    generator: torch.Generator | None = None,
    grad: torch.Tensor | None = None,
) -> Enhancement:
    """Enhance ``features`` (m x n) at training progress ``progress`` in [0, 1] (outside raises ValueError).

    Delta is built from the split (computed here unless given) as in :func:`delta_diagonal`; the strong
    signs are random (``generator`` makes them reproducible) or, with ``config.strong_sign="adversarial"``,
    the signs of ``grad`` (dLoss/dF, m x n) projected on each direction. Bound:
    ``||Delta||_F = ||delta_features||_F <= rho ||Sigma||_F`` (Sigma of the centred F when ``center``).
    U, V, Delta carry no gradient: F' = F + const, so dF'/dF = I and nothing back-propagates through the SVD.
    With centring, delta_features has zero column means (the batch mean is untouched).
    """
    config = config or SDEConfig()
    check_matrix(features)
    t = check_progress(progress)
    if split is None:
        split = spectral_split(features, **config.split_kwargs())
    elif (split.U.shape[0], split.Vh.shape[1]) != tuple(features.shape):
        raise ValueError(
            f"split was computed for shape {(split.U.shape[0], split.Vh.shape[1])}, got {tuple(features.shape)}"
        )
    curriculum = config.curriculum(t)
    with torch.no_grad():
        if config.strong_sign == "adversarial":
            if grad is None:
                raise ValueError("strong_sign='adversarial' needs grad, the loss gradient w.r.t. the features")
            signs = adversarial_signs(split, grad)
        else:
            if grad is not None:
                raise ValueError("grad is only used with strong_sign='adversarial'; this config draws random signs")
            signs = random_signs(split.S.numel(), generator)
        delta, scale = delta_diagonal(
            split, curriculum, signs, strong_noise=config.strong_noise, weak_scale=config.weak_scale, rho=config.rho
        )
        change = (split.U * delta) @ split.Vh
        limit = torch.finfo(features.dtype).max
        delta_features = change.clamp(-limit, limit).to(features.dtype)
    return Enhancement(
        features=features + delta_features,
        delta_features=delta_features,
        delta=delta,
        scale=scale,
        split=split,
        curriculum=curriculum,
    )
