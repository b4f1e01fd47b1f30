"""What MWAM measured and decided at one step, for logging (W&B, tensorboard, print)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MWAMRecord:
    """Per-modality tensors (M,) of one step, still on the device (reading them synchronises).

    frm: this batch's FRM (Eq. 4, summed over the global batch), 0 where absent.
    bank: the bank after the update (Eq. 2).
    relative: T of Eq. 6.
    weight: K of Eq. 5 (``absent_weight`` where the modality had no usable sample).
    present: whether the modality had a usable reading this step.
    """

    modalities: tuple[str, ...]
    step: int
    frm: torch.Tensor
    bank: torch.Tensor
    relative: torch.Tensor
    weight: torch.Tensor
    present: torch.Tensor

    def log_dict(self, prefix: str = "mwam") -> dict[str, float]:
        """Flat ``{"mwam/K/rgb": 0.93, ...}`` with one device-to-host copy."""
        rows = (
            torch.stack(
                [t.detach().to(torch.float64) for t in (self.frm, self.bank, self.relative, self.weight, self.present)]
            )
            .cpu()
            .tolist()
        )
        names = ("frm", "bank", "T", "K", "present")
        return {
            f"{prefix}/{name}/{modality}": float(value)
            for name, row in zip(names, rows, strict=True)
            for modality, value in zip(self.modalities, row, strict=True)
        }
