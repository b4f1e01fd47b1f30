"""SF / SF-MD: the CASIA-SURF three-branch ResNet-18-SE baseline (the authors' ``SURF_Baseline``).

Per modality a ``special_bone_{rgb,depth,ir}`` (conv1 .. layer2 + SE, 128 channels), feature-level masking, channel
concatenation to 384, and a ``shared_bone`` (layer3_new, layer4, pool, fc). SF trains on full modalities; SF-MD
draws, per training sample, one of the 7 non-empty modality subsets uniformly at random (the authors'
``modality_drop`` with ``p=[0,0,0]``) and zeroes the dropped branches' features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from .host import Host, HostOutput
from .registry import register_model
from .resnet18_se import shared_bone, special_bone
from .subset_dropout import SubsetDropout

__all__ = ["SUBSETS", "SFConfig", "SFHost", "sf", "sf_md"]

#: The 7 non-empty subsets in (rgb, depth, ir) order, in the authors' order (index = what ``randint(0, 7)`` draws).
SUBSETS: tuple[tuple[bool, bool, bool], ...] = (
    (True, False, False),
    (False, True, False),
    (False, False, True),
    (True, True, False),
    (True, False, True),
    (False, True, True),
    (True, True, True),
)

BRANCH_CHANNELS = 128


@dataclass
class SFConfig:
    """Options of :class:`SFHost`.

    modality_dropout: SF-MD's training-time draw of one of the 7 non-empty subsets per sample.
    aux_heads: per-modality auxiliary classifiers (for MWAM's loss intervention, Eq. 7).
    num_classes: logits width (CASIA-SURF: 2, attack / real).
    features: also return each modality's pooled branch features (B, 128) in ``HostOutput.features``.
    in_channels: input channels per modality (the authors read all three modalities as 3-channel images).
    se_reduction: squeeze-and-excitation reduction of the branch SE layer.
    """

    modality_dropout: bool = False
    aux_heads: bool = False
    num_classes: int = 2
    features: bool = False
    in_channels: int = 3
    se_reduction: int = 16
    fixed_modalities: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.num_classes < 1 or self.in_channels < 1:
            raise ValueError(f"SFConfig: num_classes and in_channels must be >= 1, got {self}")
        if self.fixed_modalities is not None:
            fixed = (self.fixed_modalities,) if isinstance(self.fixed_modalities, str) else self.fixed_modalities
            fixed = tuple(fixed)
            if not fixed or not set(fixed) <= set(SFHost.modalities) or len(set(fixed)) != len(fixed):
                raise ValueError(
                    f"SFConfig: fixed_modalities must be distinct modalities of {SFHost.modalities}, got "
                    f"{self.fixed_modalities!r}"
                )
            self.fixed_modalities = fixed


class SFHost(SubsetDropout, Host):
    """The SF / SF-MD host (Host contract: ``modalities``, ``forward(inputs, present)``, ``branches()``, and the
    ``encode`` (the three special bones) / ``fuse`` (masking, concatenation, shared trunk) split).

    Missing-modality semantics follow the authors' ``modality_drop``: every branch runs on its real input, then each
    branch's feature map is multiplied by the effective presence mask (zeroing, no rescaling of the kept branches).
    In training with ``modality_dropout`` the effective mask is ``present & drawn``, ``drawn`` being one of the 7
    non-empty subsets per sample, drawn on the input's device from torch's default generator; a sample whose
    ``present`` misses a modality can therefore end up with an empty mask (all branch features zeroed). In eval mode,
    or without ``modality_dropout``, the effective mask is ``present``. ``HostOutput.present`` is the effective mask.

    Auxiliary heads (``aux_heads=True``): the paper (Eq. 7) does not specify them. Here each is global average pool
    + ``Linear(128, num_classes)`` on its branch's own SE output (``aux_heads.{modality}``, 129 * num_classes
    parameters each). They see the *unmasked* branch features, like RFNet's sep decoders that always see every
    modality, so every branch gets its own supervision whatever the mask. (The authors' MMANet ``SURF_Baseline_Auxi``
    instead shares a full layer3/layer4/fc trunk across the branches; that is much heavier and not MWAM's.)
    ``features=True`` returns the same unmasked pooled features (B, 128) per modality; read ``present`` to know
    which of them the fused prediction used. ``HostOutput.extras["layer4"]`` is the shared trunk's layer4 map.

    Deviation from the authors: their ``fc`` is followed by a ``Dropout(0.5)`` that is never applied; it is omitted.
    The state-dict keys of ``special_bone_*`` and ``shared_bone`` equal the authors', so their checkpoints load
    (``strict=False`` when aux heads are enabled).
    """

    modalities = ("rgb", "depth", "ir")

    def __init__(self, config: SFConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        config = config or SFConfig()
        unknown = sorted(set(overrides) - {f.name for f in fields(SFConfig)})
        if unknown:
            raise ValueError(f"SFHost: unknown options {unknown}; known: {[f.name for f in fields(SFConfig)]}")
        self.config = replace(config, **overrides)
        cfg = self.config
        self.special_bone_rgb = special_bone(cfg.in_channels, cfg.se_reduction)
        self.special_bone_depth = special_bone(cfg.in_channels, cfg.se_reduction)
        self.special_bone_ir = special_bone(cfg.in_channels, cfg.se_reduction)
        self.shared_bone = shared_bone(BRANCH_CHANNELS * len(self.modalities), cfg.num_classes)
        self.aux_heads = (
            nn.ModuleDict({m: nn.Linear(BRANCH_CHANNELS, cfg.num_classes) for m in self.modalities})
            if cfg.aux_heads
            else None
        )
        self.register_subsets(SUBSETS)
        fixed = cfg.fixed_modalities or self.modalities
        self.register_buffer("fixed_mask", torch.tensor([m in fixed for m in self.modalities]), persistent=False)

    def branches(self) -> dict[str, nn.Module]:
        """The three special bones (the parameters the authors' MWAM code rescales)."""
        return {"rgb": self.special_bone_rgb, "depth": self.special_bone_depth, "ir": self.special_bone_ir}

    @classmethod
    def example_inputs(cls, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Three 3 x 40 x 40 images per sample: the smallest size class whose layer4 keeps 2 x 2 pixels."""
        return {m: torch.randn(batch, 3, 40, 40, generator=generator) for m in cls.modalities}

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor | None = None) -> HostOutput:
        """Branches on the real inputs, feature-level masking, concatenation, shared trunk -> ``HostOutput``."""
        present = self.check_inputs(inputs, present)
        batch = present.shape[0]
        for m in self.modalities:
            x = inputs[m]
            if x.dim() != 4 or x.shape[0] != batch:
                raise ValueError(f"SFHost: input {m!r} must be (B={batch}, C, H, W), got {tuple(x.shape)}")
        height, width = inputs[self.modalities[0]].shape[-2:]
        if self.training and batch == 1 and math.ceil(height / 32) * math.ceil(width / 32) == 1:
            raise ValueError(
                f"SFHost: training with batch size 1 on {height}x{width} inputs leaves layer4 a single pixel, where "
                "BatchNorm has one value per channel; use inputs of at least 33x33 (the authors: 112) or a larger batch"
            )
        device = inputs[self.modalities[0]].device
        mask = present.to(device)
        if self.training:
            mask = self.training_dropout(mask)
        return self.fuse(self.encode(inputs), mask)

    def encode(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each modality's special bone on its real input: ``{modality: (B, 128, H/8, W/8)}``."""
        return {m: bone(inputs[m]) for m, bone in self.branches().items()}

    def fuse(self, features: Mapping[str, torch.Tensor], present: torch.Tensor) -> HostOutput:
        """Feature-level masking by ``present`` (B, 3), concatenation, shared trunk, auxiliary heads."""
        feats = [features[m] for m in self.modalities]
        mask = present.to(feats[0].device) & self.fixed_mask
        gates = mask.to(feats[0].dtype)
        fused = torch.cat([f * gates[:, i, None, None, None] for i, f in enumerate(feats)], dim=1)
        layer4 = self.shared_bone[1](self.shared_bone[0](fused))
        logits = self.shared_bone[4](self.shared_bone[3](self.shared_bone[2](layer4)))

        pooled = None
        if self.aux_heads is not None or self.config.features:
            pooled = {m: f.mean(dim=(2, 3)) for m, f in zip(self.modalities, feats, strict=True)}
        aux = None
        if self.aux_heads is not None and pooled is not None:
            aux = {m: self.aux_heads[m](pooled[m]) for m in self.modalities}
        return HostOutput(
            logits=logits,
            aux=aux,
            features=pooled if self.config.features else None,
            present=mask,
            extras=self.extra_outputs(fused, layer4),
        )

    def extra_outputs(self, fused: torch.Tensor, layer4: torch.Tensor) -> dict[str, torch.Tensor]:
        """``layer4``: the shared trunk's last feature map (B, 512, h, w), what MMANet distils (computed anyway)."""
        return {"layer4": layer4}


def _build(modality_dropout: bool, name: str, cfg: dict[str, Any]) -> SFHost:
    if "modality_dropout" in cfg:
        raise ValueError(f"{name!r} fixes modality_dropout={modality_dropout}; build 'sf' or 'sf_md' instead")
    return SFHost(SFConfig(modality_dropout=modality_dropout), **cfg)


#: The authors' count (host-facts §3: 13.18 M; each special bone 0.678 M, the shared trunk 11.15 M).
SF_PARAMETERS = 13_180_000
SF_REFERENCE = "authors' SURF_Baseline (MMANet / MWAM code): 13.18 M"


@register_model("sf", parameters=SF_PARAMETERS, reference=SF_REFERENCE)
def sf(**cfg: Any) -> SFHost:
    """SF: the three-branch ResNet-18-SE trained on full modalities (no modality dropout)."""
    return _build(False, "sf", cfg)


@register_model("sf_md", parameters=SF_PARAMETERS, reference=SF_REFERENCE)
def sf_md(**cfg: Any) -> SFHost:
    """SF-MD: SF with per-sample modality dropout over the 7 non-empty subsets during training."""
    return _build(True, "sf_md", cfg)
