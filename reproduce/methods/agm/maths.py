"""AGM's formulas (imported by the hooks only: it imports torch): the mono-modal outputs from zero-input passes,
the per-batch scores, the running means, the coefficients and the output-gradient scaling. Line numbers are in
lihong2303/AGM_ICCV2023 (5a65542) and GeWu-Lab/BalanceBenchmark (4c1482f)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations

import torch

#: The floor of softmax(o_m)[y] in the scores (``CREMAD_main.py`` l.133-141, ``AGM_trainer.py`` l.557-558).
SCORE_FLOOR = 1e-8


class _ScaleGradient(torch.autograd.Function):
    """The identity whose backward multiplies the incoming gradient by ``scale`` (the official full backward hooks
    on the identity modules ``m_a_o`` / ``m_v_o``, ``CREMAD_net.py`` l.42-51: ``grad_input * scale``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad.clone() * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` itself (its value), with ``scale`` times its gradient in backward."""
    return _ScaleGradient.apply(x, float(scale))


def two_modality_outputs(
    total: torch.Tensor, pad_first: torch.Tensor, pad_second: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official two-modality Shapley outputs (``CREMAD_net.py`` l.10-17, ``CREMAD_main.py`` l.65-66):
    o_first = 1/2 (total - pad_first + pad_second), o_second = 1/2 (total - pad_second + pad_first), where
    ``pad_m`` is the output with modality m's input zeroed (the empty coalition's value taken as 0)."""
    first = 0.5 * (total - pad_first + pad_second)
    second = 0.5 * (total - pad_second + pad_first)
    return first, second


def nonempty_coalitions(modalities: Sequence[str]) -> list[frozenset[str]]:
    """Every non-empty subset of ``modalities``, by size then in ``itertools.combinations`` order."""
    return [frozenset(c) for r in range(1, len(modalities) + 1) for c in combinations(modalities, r)]


def coalition_outputs(
    values: Mapping[frozenset[str], torch.Tensor], modalities: Sequence[str]
) -> dict[str, torch.Tensor]:
    """BalanceBenchmark's mono-modal outputs (``AGM_trainer.py::newGrad`` l.225-267): for each modality m, the sum
    over the **non-empty** coalitions T of the other modalities (``generate_all_combinations(..,
    include_empty=False)``: the empty coalition's term is left out) of |T|! (M - |T| - 1)! / M! (v(T + m) - v(T)),
    in their order (sizes 1, 2, ..., ``combinations`` of the others in the run's order). ``values[S]`` is the
    output with the modalities outside S zeroed."""
    count = len(modalities)
    out: dict[str, torch.Tensor] = {}
    for m in modalities:
        others = [o for o in modalities if o != m]
        for r in range(1, len(others) + 1):
            for combo in combinations(others, r):
                weight = math.factorial(r) * math.factorial(count - r - 1) / math.factorial(count)
                term = weight * (values[frozenset((*combo, m))] - values[frozenset(combo)])
                out[m] = term if m not in out else out[m] + term
    return out


def loss_score(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The batch mean of -log softmax(logits)[y], with the probability floored at 1e-8 (float32, detached)."""
    probs = torch.softmax(logits.detach().float(), dim=1).gather(1, target.long().unsqueeze(1)).squeeze(1)
    return -torch.log(probs.clamp_min(SCORE_FLOOR)).mean()


def running_mean(previous: float, score: float, iteration: int) -> float:
    """S_t = S_{t-1} (t - 1) / t + s_t / t (t counts from 1 over every iteration of the run)."""
    return previous * (iteration - 1) / iteration + score / iteration


def official_coefficients(
    scores: Sequence[float], running: Sequence[float], alpha: float, cap: float
) -> tuple[list[float], list[float], list[float]]:
    """``CREMAD_main.py`` l.145-152 for two modalities (a, v): ratio_a = exp(s_v - s_a), opt_a = exp(S_v - S_a),
    k_a = exp(alpha min(opt_a - ratio_a, cap)), symmetric for v. Returns (k, ratio, opt), each [first, second]."""
    (sa, sv), (ra, rv) = scores, running
    ratio = [math.exp(sv - sa), math.exp(sa - sv)]
    opt = [math.exp(rv - ra), math.exp(ra - rv)]
    k = [math.exp(alpha * min(o - r, cap)) for o, r in zip(opt, ratio, strict=True)]
    return k, ratio, opt


def balancebenchmark_coefficients(
    scores: Sequence[float], running: Sequence[float], alpha: float, cap: float
) -> tuple[list[float], list[float], list[float]]:
    """``AGM_trainer.py`` l.562-573 for M modalities: ratio_m = exp(M/(M-1) (s_m - mean s)), opt_m = exp(M/(M-1)
    (S_m - mean S)), k_m = exp(alpha min(opt_m - ratio_m, cap)). For M = 2 ratio_a = exp(s_a - s_v): the opposite
    sign of the official ratio_a = exp(s_v - s_a). Returns (k, ratio, opt) in the modalities' order."""
    count = len(scores)
    mean, running_mean_ = sum(scores) / count, sum(running) / count
    factor = count / (count - 1)
    ratio = [math.exp(factor * (s - mean)) for s in scores]
    opt = [math.exp(factor * (r - running_mean_)) for r in running]
    k = [math.exp(alpha * min(o - r, cap)) for o, r in zip(opt, ratio, strict=True)]
    return k, ratio, opt
