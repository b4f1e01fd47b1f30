"""CRMT's formulas (torch): the step-1 margin regulariser, the certified bound and its step-2 objective, and the
Lipschitz estimate. The official code: GeWu-Lab/Certifiable-Robust-Multi-modal-Training, ``train.py``.

Notation: ``unimodal`` the per-modality logits ``z^m = W~^(m) phi_m(x_m)`` (M tensors (B, K), the host's
``modality_logits``), ``scales`` the per-class scales ``a^(m)`` (M vectors (K,)), ``bias`` the head's ``b`` (K,),
``lipschitz`` (M, K) the Lipschitz constants ``tau^m_k``, ``labels`` (B,). The fused logits are
``out = sum_m a^(m) * z^m + b``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from reproduce.methods.crmt.options import LIPSCHITZ_OF, LIPSCHITZ_RULES

#: The constant inside the regulariser's logarithm (official ``train.py`` l.74).
MARGIN_EPS = 1e-5
#: The smallest denominator of the bound (only a model whose every constant is 0 reaches it: no division by 0).
MIN_DENOMINATOR = 1e-12


def _label_mask(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, K) bool, True at each sample's label."""
    return torch.nn.functional.one_hot(labels.long(), logits.shape[1]).bool()


def margin_regulariser(unimodal: Sequence[torch.Tensor], labels: torch.Tensor, eps: float = MARGIN_EPS) -> torch.Tensor:
    """``mean_i log(sum_m [sum_k e^{z^m_ik} e^{-z^m_iy} - 1] + eps)`` (official ``train.py`` l.70-74, without rho).

    ``sum_k e^{z_k} e^{-z_y} - 1`` is computed as ``sum_{k != y} e^{z_k - z_y}`` (a log-sum-exp over the other
    classes): equal in exact arithmetic, without the official form's overflow for logits above ~88 (float32) and
    its cancellation when the label's logit dominates."""
    total = None
    for z in unimodal:
        z = z.float()
        mask = _label_mask(z, labels)
        difference = z - z.gather(1, labels.long().view(-1, 1))
        term = torch.logsumexp(difference.masked_fill(mask, float("-inf")), dim=1).exp()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("the margin regulariser needs at least one modality's logits")
    return torch.log(total + eps).mean()


def runner_up(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each sample's largest class other than its label (official ``train.py`` l.277-281)."""
    return logits.detach().masked_fill(_label_mask(logits, labels), float("-inf")).argmax(dim=1)


def _stacked(unimodal: Sequence[torch.Tensor], scales: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    if len(unimodal) != len(scales) or not unimodal:
        raise ValueError(f"one scale vector per modality's logits: {len(scales)} scales, {len(unimodal)} logits")
    return torch.stack([z.float() for z in unimodal]), torch.stack([a.float() for a in scales])


def bound_against(
    unimodal: Sequence[torch.Tensor],
    scales: Sequence[torch.Tensor],
    bias: torch.Tensor,
    lipschitz: torch.Tensor,
    labels: torch.Tensor,
    other: torch.Tensor,
) -> torch.Tensor:
    """The bound of each sample against class ``other`` (B,):

        [sum_m (a^m_y z^m_y - a^m_j z^m_j) + b_y - b_j] / sqrt(sum_m (a^m_y tau^m_y + a^m_j tau^m_j)^2)

    with ``j = other`` (official step 2, ``train.py`` l.285-290, for any number of modalities)."""
    z, a = _stacked(unimodal, scales)  # (M, B, K), (M, K)
    tau = lipschitz.to(device=z.device, dtype=z.dtype)
    labels, other = labels.long(), other.long()
    rows = torch.arange(z.shape[1], device=z.device)
    numerator = (a[:, labels] * z[:, rows, labels] - a[:, other] * z[:, rows, other]).sum(0)
    numerator = numerator + bias.float()[labels] - bias.float()[other]
    denominator = (a[:, labels] * tau[:, labels] + a[:, other] * tau[:, other]).square().sum(0).sqrt()
    return numerator / denominator.clamp_min(MIN_DENOMINATOR)


def certified_radius(
    unimodal: Sequence[torch.Tensor],
    scales: Sequence[torch.Tensor],
    bias: torch.Tensor,
    lipschitz: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """The paper's certified lower bound per sample (B,): the smallest, over the classes ``k != y``, of
    ``bound_against(..., k)``. A perturbation of the inputs with ``||(x'_1 - x_1, ..., x'_M - x_M)||_2`` below it
    cannot change the prediction when ``tau^m_k`` bounds the Lipschitz constant of ``z^m_k`` (by Cauchy-Schwarz
    over the modalities); a value <= 0 means no certificate (the sample is misclassified or tied)."""
    z, a = _stacked(unimodal, scales)
    tau = lipschitz.to(device=z.device, dtype=z.dtype)
    labels = labels.long()
    rows = torch.arange(z.shape[1], device=z.device)
    fused = (a[:, None, :] * z).sum(0) + bias.float()  # (B, K)
    numerator = fused[rows, labels, None] - fused
    weighted = a * tau  # (M, K)
    denominator = (weighted[:, labels, None] + weighted[:, None, :]).square().sum(0).sqrt()  # (B, K)
    radius = numerator / denominator.clamp_min(MIN_DENOMINATOR)
    return radius.masked_fill(_label_mask(fused, labels), float("inf")).min(dim=1).values


def scale_objective(
    unimodal: Sequence[torch.Tensor],
    logits: torch.Tensor,
    scales: Sequence[torch.Tensor],
    bias: torch.Tensor,
    lipschitz: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """Step 2's loss (official ``train.py`` l.275-290): minus the batch mean of the bound against the runner-up
    class of the fused ``logits``, with the unimodal logits and the bias detached (only the scales have gradients)."""
    other = runner_up(logits, labels)
    return -bound_against([z.detach() for z in unimodal], scales, bias.detach(), lipschitz, labels, other).mean()


def lipschitz_constants(
    host: torch.nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    num_classes: int,
    of: str = "fused",
    rule: str = "fixed",
    forward: Callable[[Mapping[str, torch.Tensor]], Any] | None = None,
) -> torch.Tensor:
    """The per-modality, per-class maximum over ``batches`` (input dicts) of the per-sample input-gradient norm
    ``||d f_k / d x_m||_2`` (official ``get_lip``, ``train.py`` l.105-126): (M, K) in float32 on the host's device.

    ``of``: ``fused`` (official: ``f_k`` the fused logit ``out_k``, whose gradient carries the scale ``a^m_k`` of the
    moment) or ``unimodal`` (the paper's ``tau^m_k``: ``f_k = z^m_k``). ``rule``: ``fixed`` (each class's gradient on
    its own) or ``official_bug`` (the official loop zeroes only ``audio.grad`` -- its second modality -- and does so
    right after reading the first modality's gradient: the first modality's (and, for M > 2, every other one's)
    gradients accumulate over the classes of a batch, and the second's reads as zero, so its constants are 0).

    The host runs in eval mode (BatchNorm with running statistics, so that the summed logit's gradient is each
    sample's own), its mode restored; only the inputs get gradients (the parameters' ``.grad`` are untouched).
    ``forward(inputs)`` runs the host (default ``host(inputs, None)``)."""
    if of not in LIPSCHITZ_OF or rule not in LIPSCHITZ_RULES:
        raise ValueError(f"of must be one of {LIPSCHITZ_OF} and rule one of {LIPSCHITZ_RULES}, got {of!r}, {rule!r}")
    modalities = tuple(host.modalities)
    run = forward or (lambda inputs: host(inputs, None))
    device = next(host.parameters()).device
    constants = torch.zeros(len(modalities), num_classes, device=device)
    was_training = host.training
    host.eval()
    try:
        with torch.enable_grad():
            for inputs in batches:
                x = {m: inputs[m].detach().float().clone().requires_grad_(True) for m in modalities}
                output = run(x)
                leaves = [x[m] for m in modalities]
                batch = leaves[0].shape[0]
                accumulated: list[torch.Tensor | None] = [None] * len(modalities)
                for k in range(num_classes):
                    if of == "fused":
                        target = output.logits[:, k].float().sum()
                    else:
                        target = sum(output.modality_logits[m][:, k].float().sum() for m in modalities)
                    grads = torch.autograd.grad(target, leaves, retain_graph=k + 1 < num_classes, allow_unused=True)
                    for i, grad in enumerate(grads):
                        grad = torch.zeros_like(leaves[i]) if grad is None else grad
                        if rule == "official_bug":
                            if i == 1:
                                grad = torch.zeros_like(grad)
                            else:
                                accumulated[i] = grad if accumulated[i] is None else accumulated[i] + grad
                                grad = accumulated[i]
                        norms = grad.reshape(batch, -1).norm(dim=1)
                        constants[i, k] = torch.maximum(norms.max(), constants[i, k])
    finally:
        host.train(was_training)
    return constants
