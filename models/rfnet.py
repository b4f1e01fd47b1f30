"""RFNet: the region-aware fusion network for incomplete multi-modal brain tumour segmentation (Ding et al., ICCV 2021).

BraTS host with four modalities (flair, t1ce, t1, t2). Every modality has its own 3-D encoder (four levels of
``basic_dims`` x 1, 2, 4, 8 channels at strides 1, 2, 4, 8). ``decoder_fuse`` decodes the masked features, coarsest
level first. At each level:

- a ``prm_generator`` predicts a probabilistic region map (PRM, a softmax over the classes) from the masked
  features and the decoder's feature (paper Sec. 3.2);
- a ``region_aware_modal_fusion`` (RFM, Sec. 3.3) weights each region's modality features by
  ``sigmoid(MLP([GAP(feature * prm) / mean(prm), mean(prm)]))`` and sums them over the modalities, fuses the regions
  (``region_fusion``) and adds a ``short_cut`` over the concatenated masked features.

``decoder_sep`` is one U-Net decoder shared by the four modalities. It runs on each modality's unmasked features
and only in training, where it supervises every encoder whatever the mask (Sec. 3.4).

Missing modalities follow the authors' code: every encoder runs on its real input, and the mask zeroes the absent
modalities' features inside ``decoder_fuse`` (``y[mask] = x[mask]``). Training draws one of the 15 non-empty subsets
per sample, uniformly, in the authors' ``mask_array`` order (``data/datasets_nii.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .host import Host, HostOutput
from .registry import register_model
from .subset_dropout import SubsetDropout

__all__ = [
    "SUBSETS",
    "DecoderFuse",
    "DecoderSep",
    "Encoder",
    "GeneralConv3d",
    "ModalFusion",
    "PRMGenerator",
    "RFNetConfig",
    "RFNetHost",
    "RegionAwareModalFusion",
    "RegionFusion",
    "rfnet",
]

#: The 15 non-empty subsets over (flair, t1ce, t1, t2), in the authors' training order (``mask_array`` in
#: ``data/datasets_nii.py``; the index is what ``np.random.choice(15)`` draws).
SUBSETS: tuple[tuple[bool, bool, bool, bool], ...] = (
    (True, False, False, False),
    (False, True, False, False),
    (False, False, True, False),
    (False, False, False, True),
    (True, True, False, False),
    (True, False, True, False),
    (True, False, False, True),
    (False, True, True, False),
    (False, True, False, True),
    (False, False, True, True),
    (True, True, True, False),
    (True, True, False, True),
    (True, False, True, True),
    (False, True, True, True),
    (True, True, True, True),
)

NUM_MODALITIES = 4
PRM_HIDDEN = 16  # the PRM head's hidden width (fixed in the authors' code, whatever basic_dims)
FUSION_HIDDEN = 128  # the modal-fusion MLP's hidden width (also fixed)


class GeneralConv3d(nn.Module):
    """The authors' ``general_conv3d``: Conv3d (reflect padding, bias) -> InstanceNorm3d -> LeakyReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int, k_size: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, k_size, stride=stride, padding=padding, padding_mode="reflect")
        self.norm = nn.InstanceNorm3d(out_ch)  # no affine parameters, no running statistics (the authors' 'in')
        self.activation = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


def pointwise(in_ch: int, out_ch: int) -> GeneralConv3d:
    """A 1 x 1 x 1 ``GeneralConv3d``."""
    return GeneralConv3d(in_ch, out_ch, k_size=1, padding=0)


class Encoder(nn.Module):
    """One modality's encoder: per level ``c1`` (stride 2 below level 1), then the residual ``x + c3(c2(x))``.

    Returns the four levels (B, d, D, H, W), (B, 2d, D/2, ...), (B, 4d, D/4, ...), (B, 8d, D/8, ...).
    """

    def __init__(self, in_channels: int = 1, basic_dims: int = 16) -> None:
        super().__init__()
        d = basic_dims
        self.e1_c1 = GeneralConv3d(in_channels, d)
        self.e1_c2 = GeneralConv3d(d, d)
        self.e1_c3 = GeneralConv3d(d, d)
        self.e2_c1 = GeneralConv3d(d, 2 * d, stride=2)
        self.e2_c2 = GeneralConv3d(2 * d, 2 * d)
        self.e2_c3 = GeneralConv3d(2 * d, 2 * d)
        self.e3_c1 = GeneralConv3d(2 * d, 4 * d, stride=2)
        self.e3_c2 = GeneralConv3d(4 * d, 4 * d)
        self.e3_c3 = GeneralConv3d(4 * d, 4 * d)
        self.e4_c1 = GeneralConv3d(4 * d, 8 * d, stride=2)
        self.e4_c2 = GeneralConv3d(8 * d, 8 * d)
        self.e4_c3 = GeneralConv3d(8 * d, 8 * d)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x1 = self.e1_c1(x)
        x1 = x1 + self.e1_c3(self.e1_c2(x1))
        x2 = self.e2_c1(x1)
        x2 = x2 + self.e2_c3(self.e2_c2(x2))
        x3 = self.e3_c1(x2)
        x3 = x3 + self.e3_c3(self.e3_c2(x3))
        x4 = self.e4_c1(x3)
        x4 = x4 + self.e4_c3(self.e4_c2(x4))
        return x1, x2, x3, x4


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The authors' ``nn.Upsample(scale_factor=factor, mode='trilinear', align_corners=True)``."""
    return F.interpolate(x, scale_factor=factor, mode="trilinear", align_corners=True)


class DecoderSep(nn.Module):
    """The authors' ``Decoder_sep``: a U-Net decoder on one modality's four levels; returns the segmentation
    *logits* (the authors return their softmax)."""

    def __init__(self, num_classes: int = 4, basic_dims: int = 16) -> None:
        super().__init__()
        d = basic_dims
        self.d3_c1 = GeneralConv3d(8 * d, 4 * d)
        self.d3_c2 = GeneralConv3d(8 * d, 4 * d)
        self.d3_out = pointwise(4 * d, 4 * d)
        self.d2_c1 = GeneralConv3d(4 * d, 2 * d)
        self.d2_c2 = GeneralConv3d(4 * d, 2 * d)
        self.d2_out = pointwise(2 * d, 2 * d)
        self.d1_c1 = GeneralConv3d(2 * d, d)
        self.d1_c2 = GeneralConv3d(2 * d, d)
        self.d1_out = pointwise(d, d)
        self.seg_layer = nn.Conv3d(d, num_classes, kernel_size=1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor, x4: torch.Tensor) -> torch.Tensor:
        de = self.d3_c1(upsample(x4, 2))
        de = self.d3_out(self.d3_c2(torch.cat((de, x3), dim=1)))
        de = self.d2_c1(upsample(de, 2))
        de = self.d2_out(self.d2_c2(torch.cat((de, x2), dim=1)))
        de = self.d1_c1(upsample(de, 2))
        de = self.d1_out(self.d1_c2(torch.cat((de, x1), dim=1)))
        return self.seg_layer(de)


class PRMGenerator(nn.Module):
    """A level's probabilistic region map (paper Sec. 3.2; the authors' ``prm_generator`` and, with
    ``last_stage=True``, ``prm_generator_laststage``).

    The masked, concatenated modality features (B, 4C, ...) go through an embedding (1x1 to C/4, 3x3, 1x1 to C).
    Below the coarsest level the embedding is concatenated after the decoder's feature (B, C, ...). A head
    (1x1 to 16, 1x1 to the classes, softmax) then gives the class probabilities (B, K, ...).
    """

    def __init__(self, in_channel: int, num_classes: int = 4, last_stage: bool = False) -> None:
        super().__init__()
        c = in_channel
        self.last_stage = last_stage
        self.embedding_layer = nn.Sequential(
            pointwise(NUM_MODALITIES * c, c // 4), GeneralConv3d(c // 4, c // 4), pointwise(c // 4, c)
        )
        self.prm_layer = nn.Sequential(
            pointwise(c if last_stage else 2 * c, PRM_HIDDEN),
            nn.Conv3d(PRM_HIDDEN, num_classes, kernel_size=1),
            nn.Softmax(dim=1),
        )

    def forward(self, masked: torch.Tensor, decoded: torch.Tensor | None = None) -> torch.Tensor:
        """``masked``: (B, 4, C, ...) masked features; ``decoded``: the decoder's (B, C, ...) (not at the last
        stage). Returns the PRM (B, K, ...), probabilities."""
        embedded = self.embedding_layer(masked.flatten(1, 2))
        if self.last_stage:
            if decoded is not None:
                raise ValueError("the last-stage PRM generator takes no decoder feature")
            return self.prm_layer(embedded)
        if decoded is None:
            raise ValueError("PRM generators below the coarsest level need the decoder feature")
        return self.prm_layer(torch.cat((decoded, embedded), dim=1))


class ModalFusion(nn.Module):
    """One region's modality weighting (the authors' ``modal_fusion``, paper Eq. 3-4).

    ``x``: the region's features ``feature * prm`` (B, 4, C, ...). The weights are
    ``sigmoid(MLP([GAP(x) / (mean(prm) + 1e-7), mean(prm) + 1e-7]))``, one per modality, where the MLP is
    1x1 conv (4C+1 -> 128), LeakyReLU(0.2), 1x1 conv (128 -> 4). The output is the weighted sum over the
    modalities (B, C, ...).
    """

    def __init__(self, in_channel: int) -> None:
        super().__init__()
        self.weight_layer = nn.Sequential(
            nn.Conv3d(NUM_MODALITIES * in_channel + 1, FUSION_HIDDEN, kernel_size=1),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv3d(FUSION_HIDDEN, NUM_MODALITIES, kernel_size=1),
        )
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor, prm: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 4, C, *S) region features, ``prm`` (B, 1, *S) the region's probability map."""
        batch, modalities, channels = x.shape[:3]
        spatial = tuple(range(2, prm.dim()))
        prm_avg = prm.mean(dim=spatial) + 1e-7  # (B, 1)
        feat_avg = x.mean(dim=tuple(range(3, x.dim()))) / prm_avg[:, :, None]  # (B, 4, C)
        summary = torch.cat((feat_avg.reshape(batch, modalities * channels), prm_avg), dim=1)
        weight = self.weight_layer(summary.view(batch, -1, 1, 1, 1)).view(batch, modalities)
        weight = self.sigmoid(weight).view(batch, modalities, *([1] * (x.dim() - 2)))
        return torch.sum(x * weight, dim=1)


class RegionFusion(nn.Module):
    """The authors' ``region_fusion``: the K fused region features (B, K, C, ...) flattened to K*C channels, then
    1x1 (to C), 3x3, 1x1 (to C/2)."""

    def __init__(self, in_channel: int, num_classes: int = 4) -> None:
        super().__init__()
        c = in_channel
        self.fusion_layer = nn.Sequential(pointwise(c * num_classes, c), GeneralConv3d(c, c), pointwise(c, c // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fusion_layer(x.flatten(1, 2))


class RegionAwareModalFusion(nn.Module):
    """The region-aware fusion module (RFM, paper Sec. 3.3; the authors' ``region_aware_modal_fusion``).

    Each class region k takes the masked features times PRM channel k, and ``modal_fusion[k]`` weights and sums
    them over the modalities. ``region_fusion`` fuses the K regions to C/2 channels. ``short_cut`` maps the
    concatenated masked features (1x1 4C -> C, 3x3, 1x1 to C/2) and is concatenated after it: (B, C, ...).
    """

    def __init__(self, in_channel: int, num_classes: int = 4) -> None:
        super().__init__()
        c = in_channel
        self.num_cls = num_classes
        self.modal_fusion = nn.ModuleList([ModalFusion(c) for _ in range(num_classes)])
        self.region_fusion = RegionFusion(c, num_classes)
        self.short_cut = nn.Sequential(pointwise(NUM_MODALITIES * c, c), GeneralConv3d(c, c), pointwise(c, c // 2))

    def forward(self, masked: torch.Tensor, prm: torch.Tensor) -> torch.Tensor:
        """``masked`` (B, 4, C, *S) masked features, ``prm`` (B, K, *S) the level's PRM (the authors pass it
        detached)."""
        regions = [
            self.modal_fusion[k](masked * prm[:, None, k : k + 1], prm[:, k : k + 1]) for k in range(self.num_cls)
        ]
        fused = self.region_fusion(torch.stack(regions, dim=1))
        return torch.cat((fused, self.short_cut(masked.flatten(1, 2))), dim=1)


def mask_features(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 4, C, ...) stacked features with the absent modalities' set to 0: the authors'
    ``y = zeros_like(x); y[mask] = x[mask]``, value for value."""
    return x.masked_fill(~mask.view(*mask.shape, *([1] * (x.dim() - 2))), 0.0)


class DecoderFuse(nn.Module):
    """The authors' ``Decoder_fuse``: PRM + RFM at every level, coarsest first, with a U-Net decoder between.

    Level l (from 4 down to 1): PRM_l from the masked features (and the decoder's feature), then RFM_l on them with
    PRM_l detached. Below level 4 that output is concatenated before the decoder feature, then a 3x3 conv and a
    1x1 conv follow. Above level 1 come a x2 upsample and a 3x3 conv. ``seg_layer`` (1x1) gives the logits.
    Returns ``(logits, (prm1, up2(prm2), up4(prm3), up8(prm4)))``: the PRMs finest first, each at full
    resolution by trilinear upsampling (align_corners=True) of its probabilities, as the authors return them.
    """

    def __init__(self, num_classes: int = 4, basic_dims: int = 16) -> None:
        super().__init__()
        d = basic_dims
        self.d3_c1 = GeneralConv3d(8 * d, 4 * d)
        self.d3_c2 = GeneralConv3d(8 * d, 4 * d)
        self.d3_out = pointwise(4 * d, 4 * d)
        self.d2_c1 = GeneralConv3d(4 * d, 2 * d)
        self.d2_c2 = GeneralConv3d(4 * d, 2 * d)
        self.d2_out = pointwise(2 * d, 2 * d)
        self.d1_c1 = GeneralConv3d(2 * d, d)
        self.d1_c2 = GeneralConv3d(2 * d, d)
        self.d1_out = pointwise(d, d)
        self.seg_layer = nn.Conv3d(d, num_classes, kernel_size=1)
        self.RFM4 = RegionAwareModalFusion(8 * d, num_classes)
        self.RFM3 = RegionAwareModalFusion(4 * d, num_classes)
        self.RFM2 = RegionAwareModalFusion(2 * d, num_classes)
        self.RFM1 = RegionAwareModalFusion(d, num_classes)
        self.prm_generator4 = PRMGenerator(8 * d, num_classes, last_stage=True)
        self.prm_generator3 = PRMGenerator(4 * d, num_classes)
        self.prm_generator2 = PRMGenerator(2 * d, num_classes)
        self.prm_generator1 = PRMGenerator(d, num_classes)

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor, x4: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``x1``..``x4``: stacked per-modality features (B, 4, C_l, ...); ``mask`` (B, 4) bool."""
        y4 = mask_features(x4, mask)
        prm4 = self.prm_generator4(y4)
        de4 = self.d3_c1(upsample(self.RFM4(y4, prm4.detach()), 2))

        y3 = mask_features(x3, mask)
        prm3 = self.prm_generator3(y3, de4)
        de3 = self.d3_out(self.d3_c2(torch.cat((self.RFM3(y3, prm3.detach()), de4), dim=1)))
        de3 = self.d2_c1(upsample(de3, 2))

        y2 = mask_features(x2, mask)
        prm2 = self.prm_generator2(y2, de3)
        de2 = self.d2_out(self.d2_c2(torch.cat((self.RFM2(y2, prm2.detach()), de3), dim=1)))
        de2 = self.d1_c1(upsample(de2, 2))

        y1 = mask_features(x1, mask)
        prm1 = self.prm_generator1(y1, de2)
        de1 = self.d1_out(self.d1_c2(torch.cat((self.RFM1(y1, prm1.detach()), de2), dim=1)))

        logits = self.seg_layer(de1)
        return logits, (prm1, upsample(prm2, 2), upsample(prm3, 4), upsample(prm4, 8))


@dataclass
class RFNetConfig:
    """Options of :class:`RFNetHost`.

    num_classes: segmentation classes (BraTS2018/2020: 4, BG / NCR-NET / ED / ET; the authors' BraTS2015: 5).
    basic_dims: the encoders' level-1 width (the authors: 16). Must be even and at least 4.
    modality_dropout: the training-time draw of one of the 15 non-empty subsets per sample.
    fused_loss_start_epoch: the epoch from which the fused output's loss counts (``--region_fusion_start_epoch``,
        20 in the authors' ``job.sh``; read by the segmentation task).
    """

    num_classes: int = 4
    basic_dims: int = 16
    modality_dropout: bool = True
    fused_loss_start_epoch: int = 20

    def __post_init__(self) -> None:
        if self.num_classes < 1 or self.basic_dims < 4 or self.basic_dims % 2 or self.fused_loss_start_epoch < 0:
            raise ValueError(
                f"RFNetConfig: need num_classes >= 1, an even basic_dims >= 4, fused_loss_start_epoch >= 0; got {self}"
            )


class RFNetHost(SubsetDropout, Host):
    """The RFNet host (Host contract with the ``encode`` (the four encoders) / ``fuse`` (``decoder_fuse``, and
    ``decoder_sep`` in training) split).

    ``forward(inputs, present)`` takes ``inputs`` ``{modality: (B, 1, D, H, W)}``, where D, H and W are multiples of
    8 and at least 16 (the authors train on 80^3 crops). It returns a ``HostOutput`` with:

    - ``logits``: the fused segmentation logits (B, K, D, H, W), pre-softmax; their softmax is the authors'
      ``fuse_pred``.
    - ``aux``: in training only, ``{modality: decoder_sep logits (B, K, D, H, W)}`` on that modality's unmasked
      features; their softmax is the authors' ``sep_preds``.
    - ``extras["prm"]``: in training only, the list of the four PRMs as *probabilities* (B, K, D, H, W), in the
      authors' order: finest level first, i.e. ``[prm1, up2(prm2), up4(prm3), up8(prm4)]`` (trilinear,
      align_corners=True, applied to the softmax output).
    - ``present``: the effective mask. In training with ``modality_dropout`` it is ``present & drawn``, ``drawn``
      being one of the 15 non-empty subsets per sample; otherwise it is ``present``. A sample whose ``present``
      already misses modalities can end up with an empty mask in training.

    The state-dict keys are the authors' ``models.Model``'s (``flair_encoder.e1_c1.conv.weight``, ...,
    ``decoder_fuse.RFM4.modal_fusion.0.weight_layer.0.weight``, ``decoder_sep.seg_layer.bias``). Their checkpoints
    load with ``strict=True`` once DataParallel's ``module.`` prefix is stripped, and then give the same outputs.
    Initialisation is theirs too: Kaiming-normal on every Conv3d weight, PyTorch's default biases.
    """

    modalities = ("flair", "t1ce", "t1", "t2")

    def __init__(self, config: RFNetConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        config = config or RFNetConfig()
        unknown = sorted(set(overrides) - {f.name for f in fields(RFNetConfig)})
        if unknown:
            raise ValueError(f"RFNetHost: unknown options {unknown}; known: {[f.name for f in fields(RFNetConfig)]}")
        self.config = replace(config, **overrides)
        cfg = self.config
        self.flair_encoder = Encoder(1, cfg.basic_dims)
        self.t1ce_encoder = Encoder(1, cfg.basic_dims)
        self.t1_encoder = Encoder(1, cfg.basic_dims)
        self.t2_encoder = Encoder(1, cfg.basic_dims)
        self.decoder_fuse = DecoderFuse(cfg.num_classes, cfg.basic_dims)
        self.decoder_sep = DecoderSep(cfg.num_classes, cfg.basic_dims)
        self.register_subsets(SUBSETS)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight)

    @property
    def fused_loss_start_epoch(self) -> int:
        """Epochs during which the fused output's loss is multiplied by 0 (the authors' region-fusion start)."""
        return self.config.fused_loss_start_epoch

    def branches(self) -> dict[str, nn.Module]:
        """The four modality encoders."""
        return {
            "flair": self.flair_encoder,
            "t1ce": self.t1ce_encoder,
            "t1": self.t1_encoder,
            "t2": self.t2_encoder,
        }

    @classmethod
    def example_inputs(cls, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Four 1 x 16^3 volumes per sample (level 4: 2^3 voxels), the smallest the host takes: fast CPU tests."""
        return {m: torch.randn(batch, 1, 16, 16, 16, generator=generator) for m in cls.modalities}

    def check_volumes(self, inputs: Mapping[str, torch.Tensor], batch: int) -> None:
        """Every input is (B, 1, D, H, W), with the same D, H and W, each a multiple of 8 and at least 16."""
        shape = None
        for m in self.modalities:
            x = inputs[m]
            if x.dim() != 5 or x.shape[0] != batch or x.shape[1] != 1:
                raise ValueError(f"RFNetHost: input {m!r} must be (B={batch}, 1, D, H, W), got {tuple(x.shape)}")
            if shape is not None and tuple(x.shape[2:]) != shape:
                raise ValueError(f"RFNetHost: inputs differ in size: {shape} vs {tuple(x.shape[2:])} ({m!r})")
            shape = tuple(x.shape[2:])
        if shape is not None and any(s % 8 or s < 16 for s in shape):
            raise ValueError(f"RFNetHost: spatial sizes must be multiples of 8 and at least 16, got {shape}")

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor | None = None) -> HostOutput:
        """Encoders on the real inputs, then ``fuse`` with the effective mask (see the class docstring)."""
        present = self.check_inputs(inputs, present)
        self.check_volumes(inputs, present.shape[0])
        mask = present.to(inputs[self.modalities[0]].device)
        if self.training:
            mask = self.training_dropout(mask)
        return self.fuse(self.encode(inputs), mask)

    def encode(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, ...]]:
        """Each encoder on its real input: ``{modality: (x1, x2, x3, x4)}``, the four levels."""
        return {m: encoder(inputs[m]) for m, encoder in self.branches().items()}

    def fuse(self, features: Mapping[str, Sequence[torch.Tensor]], present: torch.Tensor) -> HostOutput:
        """``decoder_fuse`` on the features masked by ``present`` (B, 4). In training, also ``decoder_sep`` on each
        modality's unmasked features and the PRMs."""
        levels = [torch.stack([features[m][level] for m in self.modalities], dim=1) for level in range(4)]
        mask = present.to(levels[0].device)
        logits, prms = self.decoder_fuse(*levels, mask)
        if not self.training:
            return HostOutput(logits=logits, present=mask)
        aux = {m: self.decoder_sep(*features[m]) for m in self.modalities}
        return HostOutput(logits=logits, aux=aux, present=mask, extras={"prm": list(prms)})


#: The authors' ``models.Model(num_cls=4)`` (basic_dims 16), counted by building it: 8,984,960 parameters. Each
#: encoder has 1,466,496, ``decoder_fuse`` 2,532,588 and ``decoder_sep`` 586,388.
RFNET_PARAMETERS = 8_984_960


@register_model(
    "rfnet",
    parameters=RFNET_PARAMETERS,
    reference="authors' RFNet models.Model(num_cls=4) (dyh127/RFNet models.py, basic_dims=16): 8,984,960",
)
def rfnet(**cfg: Any) -> RFNetHost:
    """RFNet (BraTS, four modalities), with modality dropout over the 15 subsets in training by default."""
    return RFNetHost(RFNetConfig(), **cfg)
