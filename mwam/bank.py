"""FRM bank: exponential smoothing of each modality's FRM across mini-batches (Eq. 2, Fig. 2b)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .precision import KeepsBufferDtypes
from .validation import check_fraction


class FRMBank(KeepsBufferDtypes, nn.Module):
    """``F_hat^0 = F^0`` and ``F_hat^j = w F_hat^(j-1) + (1 - w) F^j`` per modality, with w = ``momentum``.

    ``soft_start=True`` starts from ``(1 - w) F^0`` instead, as the authors' released code does. A
    modality whose reading is marked invalid (absent from the batch, or a non-finite FRM) keeps its
    previous value, so an exception never poisons the bank. The state lives in float64 buffers
    (``value``, ``initialized``), part of ``state_dict()``; they stay float64 when the module around the bank is
    cast (``model.to(torch.bfloat16)``, ``.half()``), while device moves apply. Updates run on the device without
    syncing.
    """

    value: torch.Tensor
    initialized: torch.Tensor

    def __init__(self, modalities: Sequence[str] | int, momentum: float = 0.5, soft_start: bool = False) -> None:
        super().__init__()
        count = modalities if isinstance(modalities, int) else len(modalities)
        if count < 1:
            raise ValueError("FRMBank needs at least one modality")
        self.momentum = check_fraction(momentum, "momentum")
        self.soft_start = bool(soft_start)
        self.register_buffer("value", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("initialized", torch.zeros(count, dtype=torch.bool))

    def update(self, frm: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Fold this step's FRMs (M,) into the bank; returns the mask of readings that were used."""
        if frm.shape != self.value.shape:
            raise ValueError(
                f"expected {self.value.numel()} FRM values (one per modality), got shape {tuple(frm.shape)}"
            )
        frm = frm.to(device=self.value.device, dtype=torch.float64)
        used = torch.isfinite(frm)
        if valid is not None:
            used = used & valid.to(device=used.device, dtype=torch.bool)
        w = self.momentum
        start = frm * (1.0 - w) if self.soft_start else frm
        smoothed = w * self.value + (1.0 - w) * frm
        updated = torch.where(self.initialized, smoothed, start)
        self.value.copy_(torch.where(used, updated, self.value))
        self.initialized.logical_or_(used)
        return used

    def reset(self) -> None:
        self.value.zero_()
        self.initialized.zero_()

    def extra_repr(self) -> str:
        return f"modalities={self.value.numel()}, momentum={self.momentum}, soft_start={self.soft_start}"
