"""The BraTS hosts' segmentation losses (RFNet ``utils/criterions.py``; mmFormer and GSS use the same), on softmax
probabilities and one-hot targets of shape (B, C, D, H, W)."""

from __future__ import annotations

import torch

#: The authors clamp probabilities to [0.005, 1] before the logarithm.
PROBABILITY_FLOOR = 0.005
DICE_EPS = 1e-7


def softmax_weighted_loss(probabilities: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """Class-frequency-weighted cross-entropy (``softmax_weighted_loss``): per sample b and class c the weight
    ``1 - |class c in b| / |voxels of b|``; the mean over samples and voxels of ``-sum_c w_bc t log(clamp(p))``."""
    target = onehot.float()
    voxels = target.sum(dim=(1, 2, 3, 4), keepdim=True)
    weights = 1.0 - target.sum(dim=(2, 3, 4), keepdim=True) / voxels  # (B, C, 1, 1, 1)
    log_p = torch.log(torch.clamp(probabilities.float(), min=PROBABILITY_FLOOR, max=1.0))
    return (-(weights * target * log_p).sum(dim=1)).mean()


def dice_loss(probabilities: torch.Tensor, onehot: torch.Tensor, eps: float = DICE_EPS) -> torch.Tensor:
    """Soft Dice over the whole batch (``dice_loss``): ``1 - mean_c 2 sum(p t) / (sum p + sum t + eps)``."""
    p, t = probabilities.float(), onehot.float()
    dims = (0, 2, 3, 4)
    dice = 2.0 * (p * t).sum(dim=dims) / (p.sum(dim=dims) + t.sum(dim=dims) + eps)
    return 1.0 - dice.mean()


def segmentation_loss(probabilities: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """The authors' per-output term: weighted cross-entropy plus soft Dice."""
    return softmax_weighted_loss(probabilities, onehot) + dice_loss(probabilities, onehot)


def segmentation_loss_per_sample(probabilities: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """:func:`segmentation_loss` of each sample on its own (B,): its weighted cross-entropy (mean over its voxels)
    plus its soft Dice (sums over its voxels); the batch's term is not their mean (Dice pools the batch)."""
    target, p = onehot.float(), probabilities.float()
    voxels = target.sum(dim=(1, 2, 3, 4), keepdim=True)
    weights = 1.0 - target.sum(dim=(2, 3, 4), keepdim=True) / voxels
    log_p = torch.log(torch.clamp(p, min=PROBABILITY_FLOOR, max=1.0))
    cross_entropy = (-(weights * target * log_p).sum(dim=1)).flatten(1).mean(dim=1)
    dims = (2, 3, 4)
    dice = 2.0 * (p * target).sum(dim=dims) / (p.sum(dim=dims) + target.sum(dim=dims) + DICE_EPS)
    return cross_entropy + 1.0 - dice.mean(dim=1)
