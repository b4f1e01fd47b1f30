"""Margin-aware distillation (MAD) of MMANet (Wei et al., 2023): relation distillation weighted by the teacher's
uncertainty."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def teacher_entropy_weights(teacher_logits: torch.Tensor) -> torch.Tensor:
    """(B,) weights ``H_i / sum_j H_j`` of the teacher's predictive entropies ``H_i``.

    Computed from ``log_softmax`` (the authors' ``-p * log(p)`` is NaN once a probability underflows to 0); a batch
    in which the teacher is certain of every sample (all entropies 0) gets uniform weights instead of 0 / 0.
    """
    log_p = F.log_softmax(teacher_logits.float(), dim=1)
    entropy = -(log_p.exp() * log_p).sum(dim=1)
    total = entropy.sum()
    uniform = torch.full_like(entropy, 1.0 / entropy.numel())
    return torch.where(total > 0, entropy / total.clamp_min(torch.finfo(entropy.dtype).tiny), uniform)


def margin_aware_distillation(
    student_map: torch.Tensor, teacher_map: torch.Tensor, teacher_logits: torch.Tensor
) -> torch.Tensor:
    """MMANet's MAD loss: ``sum_ij (G^s_ij - G^t_ij)^2 w_j``.

    ``G`` is the batch's (B, B) Gram matrix of the flattened feature maps, each row L2-normalised (the
    similarity-preserving relation of Tung & Mori, 2019); ``w`` are :func:`teacher_entropy_weights`, which put the
    weight on the samples near the teacher's decision margin. Computed in float32 whatever the autocast dtype.
    The weight multiplies the columns of the squared difference, as the authors' broadcasting does.
    """
    if student_map.shape[0] != teacher_map.shape[0] or student_map.shape[0] != teacher_logits.shape[0]:
        raise ValueError(
            f"batch sizes differ: student {tuple(student_map.shape)}, teacher {tuple(teacher_map.shape)}, "
            f"logits {tuple(teacher_logits.shape)}"
        )
    batch = student_map.shape[0]
    with torch.autocast(student_map.device.type, enabled=False):
        s = student_map.float().reshape(batch, -1)
        t = teacher_map.float().reshape(batch, -1)
        gram_s = F.normalize(s @ s.T, p=2, dim=1)
        gram_t = F.normalize(t @ t.T, p=2, dim=1)
        weights = teacher_entropy_weights(teacher_logits)
        return ((gram_s - gram_t).pow(2) * weights).sum()
