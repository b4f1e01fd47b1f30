"""GSS's category-aware group self-support (Qiu et al., ICCV 2023): the soft target the per-modality decoders
teach each other, and the loss on it.

Facts from the authors' code (qysgithubopen/GSS: ``GSS_choice.py``, ``random_mask.py``, ``train_GSS.py``); the
code below is this repository's. Per voxel and class ``c``, with ``p_m`` the probability of class ``c`` from
modality ``m``'s separate decoder (softmax at temperature 1) and ``s_m`` the softened one (softmax of the logits
over ``T``):

* **single teacher** ``t`` (BraTS: FLAIR for the background, T1ce for NCR/NET and ET): where ``p_t > confident``
  (0.75) the target is ``s_t``; where the teacher is not confident but *every* other modality is
  (``p_m > others_confident``, 0.85) the authors meant the others' mean -- their code computes it on a mask that
  excludes exactly that region, so the term is identically 0 and the target there is 0 (``released``); everywhere
  else ``min_m s_m`` over all four modalities.
* **double teacher** ``a, b`` (oedema: FLAIR and T2): where both are confident ``max(s_a, s_b)``; where one is
  ``max - blend * (max - min)`` (blend 0.3); where neither is but both others are, their mean; elsewhere the
  minimum over all four. The authors' code adds the one-confident blend on the whole confident region, so where
  both are confident their target is ``max + blended`` (``released``).
* the four class targets are divided by their sum (the target sums to 1 over the classes).

``rule="intended"`` computes what the variable names and masks evidently meant (the others' mean where they are
confident; the blend only where exactly one teacher is), ``released`` (the default of the GSS method) what the
code computes, which produced GSS's published numbers. Loss (``train_GSS.py``): per modality the weighted
cross-entropy of the softened prediction against the target (:func:`softmax_weighted_loss`), with a random 20 % of
each sample's voxels (drawn with replacement, the same for every class, anew for every modality) removed from both,
summed over the modalities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from reproduce.tasks.segmentation_losses import softmax_weighted_loss

RULES = ("released", "intended")


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"GSS target rule must be one of {', '.join(RULES)}; got {rule!r}")


def single_teacher_target(
    probabilities: Mapping[str, torch.Tensor],
    softened: Mapping[str, torch.Tensor],
    teacher: str,
    confident: float,
    others_confident: float,
    rule: str = "released",
) -> torch.Tensor:
    """One class's unnormalised target with one teacher modality (``GSS_choice.singel_teacher``); the mappings
    hold that class's maps per modality, all of one shape."""
    _check_rule(rule)
    others = [m for m in probabilities if m != teacher]
    sure = probabilities[teacher] > confident
    others_sure = ~sure & torch.stack([probabilities[m] > others_confident for m in others]).all(dim=0)
    lowest = torch.stack([softened[m] for m in probabilities]).amin(dim=0)
    if rule == "released":
        group = torch.zeros_like(lowest)
    else:
        group = torch.stack([softened[m] for m in others]).mean(dim=0)
    return torch.where(sure, softened[teacher], torch.where(others_sure, group, lowest))


def double_teacher_target(
    probabilities: Mapping[str, torch.Tensor],
    softened: Mapping[str, torch.Tensor],
    teachers: tuple[str, str],
    confident: float,
    others_confident: float,
    blend: float,
    rule: str = "released",
) -> torch.Tensor:
    """One class's unnormalised target with two teacher modalities (``GSS_choice.double_teacher``)."""
    _check_rule(rule)
    a, b = teachers
    others = [m for m in probabilities if m not in teachers]
    sure_a, sure_b = probabilities[a] > confident, probabilities[b] > confident
    both, either = sure_a & sure_b, sure_a | sure_b
    high, low = torch.maximum(softened[a], softened[b]), torch.minimum(softened[a], softened[b])
    blended = high - blend * (high - low)
    on_both = high + blended if rule == "released" else high
    others_sure = ~either & torch.stack([probabilities[m] > others_confident for m in others]).all(dim=0)
    group = torch.stack([softened[m] for m in others]).mean(dim=0)
    lowest = torch.stack([softened[m] for m in probabilities]).amin(dim=0)
    rest = torch.where(others_sure, group, lowest)
    return torch.where(both, on_both, torch.where(either, blended, rest))


def group_soft_target(
    probabilities: Mapping[str, torch.Tensor],
    softened: Mapping[str, torch.Tensor],
    groups: Sequence[Sequence[str]],
    confident: float = 0.75,
    others_confident: float = 0.85,
    blend: float = 0.3,
    rule: str = "released",
) -> torch.Tensor:
    """The (B, C, *spatial) soft target from each modality's (B, C, *spatial) probabilities and softened
    probabilities; ``groups[c]`` names class ``c``'s teacher(s) (one or two modalities)."""
    num_classes = next(iter(probabilities.values())).shape[1]
    if len(groups) != num_classes:
        raise ValueError(f"GSS needs one teacher group per class: {num_classes} classes, {len(groups)} groups")
    per_class = []
    for c, teachers in enumerate(groups):
        p = {m: v[:, c] for m, v in probabilities.items()}
        s = {m: v[:, c] for m, v in softened.items()}
        if len(teachers) == 1:
            per_class.append(single_teacher_target(p, s, teachers[0], confident, others_confident, rule))
        elif len(teachers) == 2:
            pair = (teachers[0], teachers[1])
            per_class.append(double_teacher_target(p, s, pair, confident, others_confident, blend, rule))
        else:
            raise ValueError(f"a GSS teacher group has one or two modalities, class {c} has {list(teachers)}")
    target = torch.stack(per_class, dim=1)
    # The class targets are positive wherever a softened probability is; the floor only keeps a sum that
    # underflowed to 0 from giving NaN (the authors' division would).
    return target / target.sum(dim=1, keepdim=True).clamp_min(torch.finfo(target.dtype).tiny)


def random_voxel_mask(
    shape: Sequence[int],
    ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A bool mask of ``shape`` (B, *spatial), True at the removed voxels: per sample ``int(N * ratio)`` of its N
    voxels drawn uniformly *with replacement* (``random_mask.randn_sampling``: about 18 % distinct at 0.2)."""
    batch, *spatial = shape
    voxels = 1
    for size in spatial:
        voxels *= int(size)
    count = int(voxels * ratio)
    removed = torch.zeros(batch, voxels, dtype=torch.bool, device=device)
    if count:
        index = torch.randint(voxels, (batch, count), generator=generator, device=device)
        removed.scatter_(1, index, True)
    return removed.view(batch, *spatial)


def self_support_loss(
    softened: Mapping[str, torch.Tensor],
    target: torch.Tensor,
    mask_ratio: float = 0.2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``sum_m CE_w(s_m, target)`` with each modality's own random voxel mask removed from prediction and target
    (a removed voxel contributes nothing and is not counted in the class weights; it still counts in the mean over
    voxels, as the authors' ``softmax_weighted_loss`` on zeroed tensors)."""
    total = target.new_zeros(())
    for prediction in softened.values():
        removed = random_voxel_mask((target.shape[0], *target.shape[2:]), mask_ratio, generator, target.device)
        kept = target * (~removed).unsqueeze(1)
        total = total + softmax_weighted_loss(prediction, kept)
    return total
