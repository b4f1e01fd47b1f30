"""ResNet-18 per modality with CRMT's orthogonal, per-class-scaled head (CRMT-JT of Yang et al., "Quantifying and
Enhancing Multi-modal Robustness with Modality Preference", ICLR 2024; the official code
GeWu-Lab/Certifiable-Robust-Multi-modal-Training, ``models/fusion_model.py`` ``OrthFusion`` / ``orthogonal_linear`` /
``OWNNorm``, l.15-90): the host of Table 17's CRMT-JT column, trained by the ``crmt`` plug-in
(``reproduce/methods/crmt``).

Encoders as ``resnet18_concat``: one timm ResNet-18 per modality (``resnet18_encoder``), from scratch, global average
pooling to 512 features. Head, as the official ``orthogonal_linear``: one linear layer over the concatenated
features, ``W`` (classes x 512 M) and bias ``b``; its column block of modality m, ``W^(m)`` (classes x 512), is
orthogonalised by whitening (OWN, ``own_whiten``: each group of rows centred over the input dimension and multiplied
by the inverse square root of its Gram matrix; ``norm_groups`` = the number of classes as the official code, i.e.
groups of one row: each row is centred and scaled to unit norm) and scaled per class by a learnable vector
``a^(m)`` initialised to 0.1:

    out = sum_m a^(m) * (W~^(m) phi_m(x_m)) + b.

``modality_logits`` are the official code's unimodal outputs (``orthogonal_linear.forward``'s ``outs``, returned as
``out_v`` / ``out_a`` and called "the output of each uni-modality model" in the README): ``W~^(m) phi_m`` -- no
bias, no scale, so unlike ``resnet18_concat``'s slices they do not sum to the fused logits. ``scale_parameters()``
lists the ``a^(m)``, which the plug-in's step 2 alone optimises. Missing modalities are zeroed features (the
per-sample mask ``present``), applied after the encoders (``encode`` / ``fuse``, as ``resnet18_concat``); an absent
modality's unimodal logits are then zero.

The whitening is computed in float32 (outside autocast) on every forward pass, as the official code does it; it
draws no random numbers (the official ``OWNNorm`` fills a buffer with ``torch.randn`` that it then overwrites, which
only shifts the global random stream). Groups of one row take the closed form ``z / ||z||``, larger groups an
eigendecomposition of the Gram matrix (the official code: its SVD, the same for a symmetric positive matrix).

Options: ``encoder`` -- ``resnet18`` (default) or ``tiny`` (one 3x3 convolution with BatchNorm to 16 features, for
tests and demos only); ``init`` -- ``crmt`` (default, the official code: convolutions Kaiming-normal fan_out,
BatchNorm weights N(1, 0.02) and biases 0 as ``models/backbone.py`` l.101-106, the head at torch's default
initialisation since ``orthogonal_linear`` is built with ``xavier_init=False``), ``ogm`` (``ogm_init`` on everything,
as ``resnet18_concat``: the head Xavier-normal with zero bias, BatchNorm 1 / 0) or ``timm``; ``norm_groups`` -- OWN's
groups (default: the number of classes; it must divide it); ``scale_init`` -- 0.1.

Registered without an authors' parameter count (the configuration is the user's). For two 3-channel modalities and 2
classes it has 2 x 11,176,512 (encoders) + 2,050 (head) + 2 x 2 (scales) = 22,355,078 parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .host import HostOutput
from .registry import register_model
from .resnet18_concat import FEATURES, PerModalityEncoders, checked_modalities, ogm_init, resnet18_encoder

ENCODERS = ("resnet18", "tiny")
INITS = ("crmt", "ogm", "timm")
#: The feature width of the ``tiny`` encoder (tests and demos).
TINY_FEATURES = 16


def tiny_encoder(in_channels: int) -> nn.Module:
    """A 3x3 convolution (stride 2) with BatchNorm and ReLU, global average pooling to (B, 16): tests and demos."""
    return nn.Sequential(
        nn.Conv2d(in_channels, TINY_FEATURES, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(TINY_FEATURES),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def own_whiten(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """Orthogonal weight normalisation (OWN) of ``weight`` (rows x inputs) in ``groups`` groups of consecutive rows:
    each group ``Z`` centred over the inputs, ``Zc = Z - mean``, then ``(Zc Zc^T)^(-1/2) Zc``, whose rows are
    orthonormal (official ``OWNNorm.forward``, fusion_model.py l.32-43). Computed in float32 at least (float64 stays
    float64); returns the weight's dtype."""
    rows = weight.shape[0]
    if groups < 1 or rows % groups:
        raise ValueError(f"OWN needs a number of groups dividing the {rows} rows, got {groups}")
    with torch.autocast(weight.device.type, enabled=False):
        z = weight.to(torch.promote_types(weight.dtype, torch.float32)).reshape(groups, rows // groups, -1)
        zc = z - z.mean(dim=-1, keepdim=True)
        if rows // groups == 1:
            whitened = zc * torch.rsqrt(zc.square().sum(dim=-1, keepdim=True))
        else:
            eigenvalues, vectors = torch.linalg.eigh(zc @ zc.transpose(1, 2))
            inverse_root = vectors @ torch.diag_embed(eigenvalues.rsqrt()) @ vectors.transpose(1, 2)
            whitened = inverse_root @ zc
    return whitened.reshape(weight.shape).to(weight.dtype)


def crmt_init(module: nn.Module) -> None:
    """The official backbone initialisation (``models/backbone.py`` l.101-106): convolutions Kaiming-normal
    (fan_out, ReLU), BatchNorm weights N(1, 0.02) and biases 0."""
    ogm_init(module)  # the same convolution rule; its BatchNorm 1 / 0 is replaced below
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, mean=1.0, std=0.02)
            nn.init.constant_(m.bias, 0.0)


@register_model("resnet18_crmt")
class ResNet18CRMT(PerModalityEncoders):
    """One ResNet-18 per modality and CRMT's orthogonal, per-class-scaled head (module docstring).

    modalities: the modalities in the data set's order; channels: input channels, one number or one per modality;
    num_classes: classifier outputs; encoder: ``resnet18`` or ``tiny`` (tests and demos); init: ``crmt``, ``ogm``
    or ``timm``; norm_groups: OWN's groups of rows (default: ``num_classes``, the official setting); scale_init: the
    initial value of every scale ``a^(m)_k``.
    """

    def __init__(
        self,
        modalities: Sequence[str] = ("rgb", "depth"),
        channels: int | Mapping[str, int] = 3,
        num_classes: int = 2,
        encoder: str = "resnet18",
        init: str = "crmt",
        norm_groups: int | None = None,
        scale_init: float = 0.1,
    ) -> None:
        super().__init__()
        modalities, per_modality = checked_modalities("resnet18_crmt", modalities, channels, num_classes)
        if encoder not in ENCODERS or init not in INITS:
            raise ValueError(f"encoder must be one of {ENCODERS} and init one of {INITS}, got {encoder!r}, {init!r}")
        groups = num_classes if norm_groups is None else norm_groups
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1 or num_classes % groups:
            raise ValueError(f"norm_groups must be a positive integer dividing num_classes {num_classes}, got {groups}")
        if not isinstance(scale_init, int | float) or isinstance(scale_init, bool):
            raise ValueError(f"scale_init must be a number, got {scale_init!r}")
        self.modalities = modalities
        self.channels = per_modality
        self.num_classes = num_classes
        self.norm_groups = groups
        self.feature_dim = FEATURES if encoder == "resnet18" else TINY_FEATURES
        build = resnet18_encoder if encoder == "resnet18" else tiny_encoder
        self.encoders = nn.ModuleDict({m: build(per_modality[m]) for m in modalities})
        self.head = nn.Linear(self.feature_dim * len(modalities), num_classes)  # torch's default init (official)
        self.scales = nn.ParameterDict(
            {m: nn.Parameter(torch.full((num_classes,), float(scale_init))) for m in modalities}
        )
        if init == "crmt":
            crmt_init(self.encoders)
        elif init == "ogm":
            ogm_init(self)

    # ------------------------------------------------------------------ the head
    def scale_parameters(self) -> dict[str, nn.Parameter]:
        """The per-class scales ``a^(m)`` by modality (the parameters CRMT's step 2 optimises)."""
        return {m: self.scales[m] for m in self.modalities}

    @property
    def bias(self) -> nn.Parameter:
        """The head's bias ``b`` (classes,)."""
        return self.head.bias

    def whitened_weights(self) -> dict[str, torch.Tensor]:
        """``W~^(m)`` (classes x features) by modality: OWN of the head's column block of each modality."""
        width = self.feature_dim
        return {
            m: own_whiten(self.head.weight[:, i * width : (i + 1) * width], self.norm_groups)
            for i, m in enumerate(self.modalities)
        }

    # ------------------------------------------------------------------ the Host contract (the rest: the base)
    def fuse(self, features: Mapping[str, Any], present: torch.Tensor) -> HostOutput:
        kept = self.kept(features, present)
        weights = self.whitened_weights()
        unimodal = {m: kept[m] @ weights[m].to(kept[m].dtype).T for m in self.modalities}
        scaled = [self.scales[m] * unimodal[m] for m in self.modalities]
        logits = torch.stack(scaled).sum(0) + self.head.bias
        return HostOutput(logits, features=kept, present=present, modality_logits=unimodal)
