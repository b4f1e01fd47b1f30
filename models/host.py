"""The Host contract (DESIGN.md): what every host network offers the trainer, MWAM and SDE."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class HostOutput:
    """What a host returns.

    logits: the fused prediction (classification: (B, K); segmentation: (B, K, *spatial)).
    aux: optional per-modality auxiliary predictions (for MWAM's loss intervention, Eq. 7).
    features: optional per-modality embeddings ``{modality: (B, C)}`` the host chooses for SDE's dual-domain loss
        (hosts without them: SDE reads the pooled branch outputs through forward hooks).
    present: the (B, M) modality mask the host actually applied (after its own training-time dropout).
    modality_logits: optional per-modality predictions that are not loss terms (a concat head's slices,
        ``f_m W[:, slice_m]^T + b / M``), for plug-ins that score each modality (``Task.modality_logits``).
    extras: optional named host-specific outputs (tensors or lists of them) that training methods and tasks read
        (e.g. ``prm``, RFNet's region maps; ``layer4``, the fused trunk's
        last feature map, for MMANet's distillation; ``auxiliary``, MMANet's auxiliary-classifier logits).
    """

    logits: torch.Tensor
    aux: dict[str, torch.Tensor] | None = None
    features: dict[str, torch.Tensor] | None = None
    present: torch.Tensor | None = None
    extras: dict[str, Any] | None = None
    modality_logits: dict[str, torch.Tensor] | None = None


class Host(nn.Module):
    """Base class of the host networks.

    Subclasses set ``modalities`` (paper order) and implement ``forward(inputs, present)`` and ``branches()``.
    ``present`` (B, M) bool says which modalities each sample has; the host applies its own missing-modality
    semantics (feature zeroing, as the authors do) and never silently drops an input.

    Optionally a host splits its forward pass into ``encode(inputs) -> features`` (the per-modality encoders, which
    see every input) and ``fuse(features, present) -> HostOutput`` (masking, fusion, heads), with ``forward`` in
    eval mode equal to ``fuse(encode(inputs), present)``: the 2^M - 1 subsets are then evaluated with the encoders
    run once per batch (:func:`forward_subsets`). ``example_inputs(batch)`` gives inputs of a size the host accepts
    (the contract test over every registered host uses it).
    """

    modalities: tuple[str, ...] = ()

    def branches(self) -> dict[str, nn.Module]:
        """The modality-specific sub-modules MWAM rescales, keyed by modality (disjoint parameter sets)."""
        raise NotImplementedError

    def feature_branches(self) -> dict[str, nn.Module]:
        """The modules whose outputs are the per-modality features SDE enhances, keyed by modality; each is called
        once per forward pass and returns (B, C, ...) or a tuple of levels (the last enhanced). Default:
        ``branches()``; a host whose MWAM branches are groups of modules never called as a whole (mmFormer) names
        the called feature modules here."""
        return self.branches()

    def input_layouts(self) -> dict[str, str]:
        """How MWAM reads each modality's input tensor (``mwam.MWAMConfig.layouts``: ``image`` (B, C, H, W),
        ``volume`` (B, C, D, H, W), ``video`` (B, C, T, H, W)), for the modalities that need saying. Default: none;
        MWAM then reads a 4-D input as an image and a 5-D one as a volume. A host whose 5-D inputs are clips names
        them ``video``; the MWAM plug-in passes this on, a run's ``mwam.options.layouts`` overriding it per modality."""
        return {}

    def encode(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """The per-modality features of ``inputs`` (optional; see the class docstring)."""
        raise NotImplementedError(f"{type(self).__name__} has no encode / fuse split")

    def fuse(self, features: Mapping[str, Any], present: torch.Tensor) -> HostOutput:
        """The prediction from ``encode``'s features with modality mask ``present`` (optional)."""
        raise NotImplementedError(f"{type(self).__name__} has no encode / fuse split")

    @property
    def splits_encoding(self) -> bool:
        """Whether the host implements ``encode`` / ``fuse``."""
        return type(self).encode is not Host.encode and type(self).fuse is not Host.fuse

    @classmethod
    def example_inputs(cls, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Random inputs of a size the host accepts in training and evaluation (for tests and benchmarks)."""
        raise NotImplementedError(f"{cls.__name__} does not say which inputs it accepts")

    def training_dropout(self, present: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The (B, M) mask this host would apply in training to a batch with mask ``present``: ``present`` itself
        unless the host drops modalities at random while training (SF-MD, MMANet). ``generator`` (a CPU generator)
        draws the subsets without touching the global random stream (validation under the authors' protocol)."""
        return present

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


def forward_subsets(host: Host, inputs: Mapping[str, torch.Tensor], masks: Sequence[torch.Tensor]) -> list[HostOutput]:
    """``host``'s prediction for each modality mask (B, M) in ``masks``: with ``encode`` / ``fuse`` the encoders run
    once and the fusion once per mask (the same numbers as one forward pass per mask), else one forward per mask."""
    if not getattr(host, "splits_encoding", False):
        return [host(inputs, mask) for mask in masks]
    features = host.encode(inputs)
    return [host.fuse(features, mask) for mask in masks]
