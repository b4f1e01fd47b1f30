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


def pixel_margin_aware_distillation(
    student_map: torch.Tensor,
    teacher_map: torch.Tensor,
    teacher_scores: torch.Tensor,
    grid: tuple[int, int] = (30, 40),
) -> torch.Tensor:
    """MMANet-seg's MAD on one (B, C, H, W) encoder output (``train_missing_mmanet.py`` with ``loss/kd/mad.py``):
    every pixel is a sample.

    Both maps are average-pooled to ``grid`` when taller than ``grid[0]`` (the authors' memory saving), and so are the
    teacher's (B, K, H, W) ``teacher_scores`` (whatever tensor the caller distils by: the authors pass a decoder
    feature map, see docs/training.md); the N = B * h * w pixel rows of C features form the relation
    ``G = F F^T`` computed in two column halves (pixels ``[0, N // 2)`` and ``[N // 2, N)``), each half's rows
    L2-normalised on their own; the loss is ``sum_i w_i sum_j (G^s_ij - G^t_ij)^2`` with ``w`` the teacher's
    normalised pixel entropies (:func:`teacher_entropy_weights` of the pooled scores) weighting the *rows* -- unlike
    the classification MAD above, which weights the columns of one (B, B) matrix. Float32.
    """
    if student_map.shape != teacher_map.shape:
        raise ValueError(f"student {tuple(student_map.shape)} and teacher {tuple(teacher_map.shape)} maps differ")
    with torch.autocast(student_map.device.type, enabled=False):
        s, t, scores = student_map.float(), teacher_map.float(), teacher_scores.float()
        if s.shape[2] > grid[0]:
            s, t = F.adaptive_avg_pool2d(s, grid), F.adaptive_avg_pool2d(t, grid)
        scores = F.adaptive_avg_pool2d(scores, tuple(s.shape[2:]))
        channels = s.shape[1]
        rows_s = s.permute(0, 2, 3, 1).reshape(-1, channels)
        rows_t = t.permute(0, 2, 3, 1).reshape(-1, channels)
        half = rows_s.shape[0] // 2
        per_row = rows_s.new_zeros(rows_s.shape[0])
        for part in (slice(0, half), slice(half, None)):
            gram_s = F.normalize(rows_s @ rows_s[part].T, p=2, dim=1)
            gram_t = F.normalize(rows_t @ rows_t[part].T, p=2, dim=1)
            per_row = per_row + (gram_s - gram_t).pow(2).sum(dim=1)
        weights = teacher_entropy_weights(scores.permute(0, 2, 3, 1).reshape(-1, scores.shape[1]))
        return (per_row * weights).sum()
