"""LFM's loss and the learnable schedule's hypergradient (torch; imported by the plug-in's hooks).

The alignment term is the official ``Alignment`` (njustkmg/NeurIPS24-LFM ``Crema_epoch.py`` l.38-45):
``0.5 * (kl_div(log p, m) + kl_div(log q, m))`` with ``m = (p + q) / 2`` and ``batchmean``. ``F.kl_div(input,
target)`` is ``sum target * (log target - input)``, so each term is KL(m || p): the code's "JS" is
``0.5 * [KL(m||p) + KL(m||q)]``, not the textbook ``0.5 * [KL(p||m) + KL(q||m)]``. This module computes the code's
form (with ``log_softmax`` for ``log p``: the same value, without ``log(0)`` when a probability underflows).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _kl_to(mean: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """``F.kl_div(log_p, mean, reduction="batchmean")``: sum over classes of mean * (log mean - log p), over B."""
    return F.kl_div(log_p, mean, reduction="batchmean")


def pair_alignment(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The official two-distribution term of logits ``a`` and ``b`` (B, C) (module docstring)."""
    log_p, log_q = F.log_softmax(a.float(), dim=-1), F.log_softmax(b.float(), dim=-1)
    mean = 0.5 * log_p.exp() + 0.5 * log_q.exp()
    return 0.5 * (_kl_to(mean, log_p) + _kl_to(mean, log_q))


def alignment(logits: Sequence[torch.Tensor], divergence: str = "pairwise") -> torch.Tensor:
    """The alignment term of M >= 2 modalities' logits: ``pairwise`` -- the two-distribution term averaged over the
    M(M-1)/2 pairs (BalanceBenchmark ``LFM_trainer.py``: the sum over ``manual_combinations`` divided by their
    count) -- or ``mean`` -- (1/M) sum_m KL(mean distribution || p_m), the official form with the mean of all M.
    Both are the official term for M = 2."""
    logits = list(logits)
    if len(logits) < 2:
        raise ValueError(f"LFM aligns at least two modalities' predictions, got {len(logits)}")
    if divergence == "pairwise":
        pairs = [(i, j) for i in range(len(logits)) for j in range(i + 1, len(logits))]
        return sum(pair_alignment(logits[i], logits[j]) for i, j in pairs) / len(pairs)
    if divergence == "mean":
        logs = [F.log_softmax(x.float(), dim=-1) for x in logits]
        mean = torch.stack([x.exp() for x in logs]).mean(0)
        return sum(_kl_to(mean, x) for x in logs) / len(logs)
    raise ValueError(f"divergence must be 'pairwise' or 'mean', got {divergence!r}")


def loss_terms(
    logits: Sequence[torch.Tensor],
    target: torch.Tensor,
    divergence: str = "pairwise",
    fused: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(CE, alignment): the cross-entropy of the mean of the unimodal ``logits`` (official ``0.5 * o_v + 0.5 *
    o_a``) -- or of ``fused`` when given (BalanceBenchmark's ``unimodal_result['output']``) -- and the alignment."""
    logits = list(logits)
    cls_logits = torch.stack([x.float() for x in logits]).mean(0) if fused is None else fused.float()
    return F.cross_entropy(cls_logits, target), alignment(logits, divergence)


def lfm_loss(ce: torch.Tensor, align: torch.Tensor, lambda_c: float, lambda_g: float) -> torch.Tensor:
    """The training loss ``2 * (lambda_c * CE + lambda_g * alignment)`` (``Crema_epoch.py`` l.71)."""
    return 2 * (lambda_c * ce + lambda_g * align)


def first_parameter_hypergradient(
    parameters: Sequence[torch.Tensor], ce: torch.Tensor, align: torch.Tensor, lambda_c: float, lambda_g: float
) -> float:
    """The learnable step's signal (``Crema_epoch_learnable.py`` l.73-87): the Hessian of ``lambda_c * CE +
    lambda_g * alignment`` times the gradient of CE, restricted to the first parameter, averaged over its
    entries.

    The official code takes ``grad(theta_grads, parameters, grad_outputs=cls_grads)[0]``: row block 0 of the
    Hessian times the CE gradient. Asking autograd for the first parameter only gives the same numbers without the
    other blocks. Parameters that a term does not reach contribute zero (``allow_unused``).
    """
    parameters = list(parameters)
    if not parameters:
        raise ValueError("the learnable LFM step needs at least one trainable parameter")
    total = lambda_c * ce + lambda_g * align
    theta = torch.autograd.grad(total, parameters, create_graph=True, allow_unused=True)
    cls = torch.autograd.grad(ce, parameters, retain_graph=True, allow_unused=True)
    outputs, vectors = [], []
    for g, v in zip(theta, cls, strict=True):
        if g is not None and v is not None and g.requires_grad:
            outputs.append(g)
            vectors.append(v.detach())
    if not outputs:
        return 0.0
    (block,) = torch.autograd.grad(outputs, [parameters[0]], grad_outputs=vectors, allow_unused=True)
    return 0.0 if block is None else float(block.mean())
