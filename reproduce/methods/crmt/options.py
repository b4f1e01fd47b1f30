"""The options of ``crmt`` (torch-free). Defaults: the official code (GeWu-Lab/Certifiable-Robust-Multi-modal-Training,
``cfgs/methods/CRMT_JT.yaml`` and ``train.py``) except ``lipschitz``, whose default is the corrected estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass

LIPSCHITZ_RULES = ("fixed", "official_bug")
LIPSCHITZ_OF = ("fused", "unimodal")


def _number(value: object, name: str, minimum: float, strict: bool) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {relation} {minimum}, got {value!r}")


@dataclass(frozen=True)
class CRMTOptions:
    """rho: weight of step 1's margin regulariser (``CRMT_JT.yaml``: 2.0); scale_epochs: the run's last epochs that
    are step 2 (None: ``train.epochs // 4``, so that a run of n + n // 3 epochs has n step-1 epochs); scale_lr_factor:
    step 2's learning rate over the run's ``optim.lr`` (0.03); scale_momentum (0.9) and scale_weight_decay (1e-2):
    step 2's SGD; reset_scale_optimizer: a new step-2 optimiser every epoch (official: ``the_second_step`` builds it
    per epoch); lipschitz: ``fixed`` (each class's input gradient on its own) or ``official_bug`` (only the second
    modality's gradient zeroed, right after the first's is read); lipschitz_of: ``fused`` (official: the gradient of
    the fused logit) or ``unimodal`` (the paper's tau: of the modality's own logit)."""

    rho: float = 2.0
    scale_epochs: int | None = None
    scale_lr_factor: float = 0.03
    scale_momentum: float = 0.9
    scale_weight_decay: float = 1e-2
    reset_scale_optimizer: bool = True
    lipschitz: str = "fixed"
    lipschitz_of: str = "fused"

    def __post_init__(self) -> None:
        _number(self.rho, "rho", 0.0, strict=False)
        if self.scale_epochs is not None and (
            not isinstance(self.scale_epochs, int) or isinstance(self.scale_epochs, bool) or self.scale_epochs < 0
        ):
            raise ValueError(
                "scale_epochs must be an integer >= 0 or null (train.epochs // 4, at least 1), got "
                f"{self.scale_epochs!r}"
            )
        _number(self.scale_lr_factor, "scale_lr_factor", 0.0, strict=True)
        _number(self.scale_weight_decay, "scale_weight_decay", 0.0, strict=False)
        _number(self.scale_momentum, "scale_momentum", 0.0, strict=False)
        if self.scale_momentum >= 1:
            raise ValueError(f"scale_momentum must be < 1, got {self.scale_momentum!r}")
        if not isinstance(self.reset_scale_optimizer, bool):
            raise ValueError(f"reset_scale_optimizer must be true or false, got {self.reset_scale_optimizer!r}")
        if self.lipschitz not in LIPSCHITZ_RULES:
            raise ValueError(f"lipschitz must be one of {LIPSCHITZ_RULES}, got {self.lipschitz!r}")
        if self.lipschitz_of not in LIPSCHITZ_OF:
            raise ValueError(f"lipschitz_of must be one of {LIPSCHITZ_OF}, got {self.lipschitz_of!r}")
