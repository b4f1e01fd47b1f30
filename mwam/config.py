"""Hyper-parameters of MWAM, validated on construction (imports no torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .choices import FRM_RULES, INTERVENTIONS, PAIRINGS, T_RULES, FRMRule, Intervention, Pairing, TRule
from .validation import check_choice, check_fraction, check_patch_window, check_positive, check_weight_parameters


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
    detect_blank_inputs: a sample whose input is constant (all zeros or a fill value) counts as absent.
    sync_ranks: under torch.distributed, sum the FRMs over ranks before weighting, so every rank uses
        the K of the global batch. Without it each rank weights its own shard (and code that edits
        gradients after DDP's all-reduce, as the released code would, lets the replicas drift apart).
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
