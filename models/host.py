"""The Host contract (DESIGN.md): what every host network offers the trainer, MWAM and SDE."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class HostOutput:
    """What a host returns.

    logits: the fused prediction (classification: (B, K); segmentation: (B, K, *spatial)).
    aux: optional per-modality auxiliary predictions (for MWAM's loss intervention, Eq. 7).
    features: optional per-modality features (for SDE and distillation).
    present: the (B, M) modality mask the host actually applied (after its own training-time dropout).
    extras: optional named host-specific tensors that training methods read (e.g. ``layer4``, the fused trunk's
        last feature map, for MMANet's distillation; ``auxiliary``, MMANet's auxiliary-classifier logits).
    """

    logits: torch.Tensor
    aux: dict[str, torch.Tensor] | None = None
    features: dict[str, torch.Tensor] | None = None
    present: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] | None = None


class Host(nn.Module):
    """Base class of the host networks.

    Subclasses set ``modalities`` (paper order) and implement ``forward(inputs, present)`` and ``branches()``.
    ``present`` (B, M) bool says which modalities each sample has; the host applies its own missing-modality
    semantics (feature zeroing, as the authors do) and never silently drops an input.
    """

    modalities: tuple[str, ...] = ()

    def branches(self) -> dict[str, nn.Module]:
        """The modality-specific sub-modules MWAM rescales, keyed by modality."""
        raise NotImplementedError

    def full_presence(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A (B, M) all-True mask for ``inputs`` (every modality present)."""
        first = inputs[self.modalities[0]]
        return torch.ones(first.shape[0], len(self.modalities), dtype=torch.bool, device=first.device)

    def check_inputs(self, inputs: Mapping[str, torch.Tensor], present: torch.Tensor | None) -> torch.Tensor:
        """Validate ``inputs`` / ``present`` against ``modalities``; returns ``present`` (all-True when None)."""
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise ValueError(f"{type(self).__name__} expects inputs {list(self.modalities)}; missing {missing}")
        if present is None:
            return self.full_presence(inputs)
        batch = inputs[self.modalities[0]].shape[0]
        if present.dtype != torch.bool or tuple(present.shape) != (batch, len(self.modalities)):
            raise ValueError(
                f"present must be a bool tensor of shape ({batch}, {len(self.modalities)}), got "
                f"{present.dtype} {tuple(present.shape)}"
            )
        return present
