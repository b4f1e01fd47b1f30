"""Hyper-parameters of MWAM, validated on construction (imports no torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .choices import (
    FRAME_REDUCTIONS,
    FRM_NORMALISATIONS,
    FRM_RULES,
    INTERVENTIONS,
    PAIRINGS,
    T_RULES,
    FrameReduction,
    FRMNormalisation,
    FRMRule,
    Intervention,
    Layout,
    Pairing,
    TRule,
)
from .validation import (
    check_choice,
    check_fraction,
    check_layouts,
    check_patch_window,
    check_positive,
    check_weight_parameters,
)


@dataclass(frozen=True)
class MWAMConfig:
    """Every choice MWAM makes; defaults are the paper's (Sec. 4, Sec. 5.1).

    intervention: ``grad`` scales each branch's gradients by its K (Alg. 1, parameter-free),
        ``loss`` weights auxiliary-head losses by K (Eq. 7), ``hybrid`` does both (Table 5),
        ``none`` only measures (FRM, T, K are recorded, training is untouched).
    patch, window: p and q of Sec. 4.1 (8 and 2); Table 7 varies q in {1, 2, 4, 6}.
    sigma: sigma of Eq. 4 and Eq. 6 (1e-6, the authors' value).
    rule: ``ratio`` (Eq. 4), ``low_l1`` (Eq. 3), ``sum`` (Eq. 27), ``weighted_sum`` (Eq. 28) -- Table 8.
    omega: the band weight of Eq. 28 (0.9).
    pairing: ``patch`` (authors' code) or ``map`` (Eq. 4's indices read on the whole map), see ``frm_terms``.
    momentum: omega of Eq. 2, the weight of the bank's history (0.5).
    soft_start: start the bank at (1 - momentum) F^0 as the released code does; Eq. 2 starts at F^0.
    t_rule: ``batch`` -- T over the mean of this batch's FRMs (Eq. 6); ``bank`` -- over the mean of the
        banks (released code).
    alpha, beta, lam, gamma: Eq. 5 (1.5, 1, 6, 0.7). Table 10 uses gamma = 1, lam = 4 for batch 4 and 1.
    absent_weight: K given to a modality with no usable sample in the batch (1 = untouched).
    detect_blank_inputs: without ``present=``, a sample whose input is constant within every channel (all zeros,
        a fill value, or a black frame after per-channel normalisation such as ImageNet's) counts as absent; in a
        ``video`` such frames are left out of the sample's FRM. ``present=``, when given, decides which samples count.
    sync_ranks: under torch.distributed, sum the FRMs over ranks before weighting, so every rank uses
        the K of the global batch. Without it each rank weights its own shard (and code that edits
        gradients after DDP's all-reduce, as the released code would, lets the replicas drift apart).
    layouts: ``{modality: "image" | "volume" | "video"}``, how a modality's tensor is read. ``image`` is
        (B, C, H, W); ``volume`` (B, C, D, H, W), cut into p x p x p cubes; ``video`` (B, C, T, H, W) -- channels
        before time, as torchvision's video models take it (pass ``x.transpose(1, 2)`` for (B, T, C, H, W)) --
        whose frames are each cut into p x p patches (frames folded into the batch for the DCT). A modality not
        named is read by its rank: 4-D as ``image``, 5-D as ``volume`` (the behaviour before this option).
    frame_reduction: how a video's per-frame FRMs (Eq. 4 on each frame) make the sample's FRM: ``sum`` (default;
        Eq. 4 summed over every patch of the clip, as for an image whose patches are the clip's frames side by
        side) or ``mean`` (a clip counts as one frame, whatever its length T).
    frm_normalisation: ``none`` (default) -- Eq. 4 summed over channels, patches and the window, as the paper and
        the authors' code do; a modality with more channels or pixels has a proportionally larger FRM.
        ``per_element`` -- each modality's per-sample FRM divided by its number of Eq. 4 terms
        (C x patches x q^d, x T frames for a summed video): the mean term, comparable across modalities of
        unequal size.
    """

    intervention: Intervention = "grad"
    patch: int = 8
    window: int = 2
    sigma: float = 1e-6
    rule: FRMRule = "ratio"
    omega: float = 0.9
    pairing: Pairing = "patch"
    momentum: float = 0.5
    soft_start: bool = False
    t_rule: TRule = "batch"
    alpha: float = 1.5
    beta: float = 1.0
    lam: float = 6.0
    gamma: float = 0.7
    absent_weight: float = 1.0
    detect_blank_inputs: bool = True
    sync_ranks: bool = True
    layouts: dict[str, Layout] = field(default_factory=dict)
    frame_reduction: FrameReduction = "sum"
    frm_normalisation: FRMNormalisation = "none"

    def __post_init__(self) -> None:
        check_choice(self.intervention, INTERVENTIONS, "intervention")
        check_patch_window(self.patch, self.window)
        check_positive(self.sigma, "sigma")
        check_choice(self.rule, FRM_RULES, "rule")
        check_fraction(self.omega, "omega")
        check_choice(self.pairing, PAIRINGS, "pairing")
        check_fraction(self.momentum, "momentum")
        check_choice(self.t_rule, T_RULES, "t_rule")
        check_weight_parameters(self.alpha, self.beta, self.lam, self.gamma)
        check_positive(self.absent_weight, "absent_weight")
        for name in ("soft_start", "detect_blank_inputs", "sync_ranks"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        object.__setattr__(self, "layouts", check_layouts(self.layouts))
        check_choice(self.frame_reduction, FRAME_REDUCTIONS, "frame_reduction")
        check_choice(self.frm_normalisation, FRM_NORMALISATIONS, "frm_normalisation")

    def __hash__(self) -> int:  # ``layouts`` is a dict: hash its items
        values = self.to_dict()
        values["layouts"] = tuple(sorted(self.layouts.items()))
        return hash(tuple(values.items()))

    @classmethod
    def released_code(cls, **overrides: Any) -> MWAMConfig:
        """The authors' released classification code: soft-start bank, T over the bank mean, gamma 1, lam 10."""
        values: dict[str, Any] = {"soft_start": True, "t_rule": "bank", "gamma": 1.0, "lam": 10.0}
        values.update(overrides)
        return cls(**values)

    def replace(self, **overrides: Any) -> MWAMConfig:
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
