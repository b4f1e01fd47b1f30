"""mmFormer: the multimodal medical transformer for incomplete multi-modal brain tumour segmentation (Zhang et al.,
MICCAI 2022).

BraTS host with four modalities (flair, t1ce, t1, t2), following the authors' ``mmformer/mmformer.py`` and
``layers.py`` (YaoZhang93/mmFormer):

- **Hybrid modality-specific encoders.** Each modality has a five-level 3-D CNN encoder (``basic_dims`` x 1, 2, 4, 8,
  16 channels at strides 1, 2, 4, 8, 16). Its convolutions are pre-norm (InstanceNorm -> LeakyReLU(0.2) -> conv,
  reflect padding), except ``e1_c1``, which is a plain conv. The coarsest level (B, 16d, P, P, P) goes through
  ``{m}_encode_conv`` (1x1 to 512 channels), becomes P^3 tokens, and then passes the intra-modal transformer
  ``{m}_transformer``. That transformer has depth 1, 8 heads and MLP 4096. It is pre-norm with GELU and dropout
  0.1, and the learnable ``{m}_pos`` (1, P^3, 512) is added before each layer. ``{m}_decode_conv`` (1x1,
  512 -> 16d) is defined by the authors but never used. It is kept here for their parameter count and state dict.
- **Masking.** Every encoder runs on its real input. The absent modalities' features are zeroed (the authors'
  ``MaskModal``, ``y[mask] = x[mask]``) at levels 1-4 and on the intra-modal transformer's output tokens.
- **Inter-modal transformer.** ``multimodal_transformer`` (same layout) runs on the 4 P^3 masked tokens. The four
  position embeddings, concatenated, are added before the layer; absent modalities' tokens are 0 there, but their
  position embeddings are still added. The authors then ``.view`` the (B, 4 P^3, 512) token sequence as
  (B, P, P, P, 2048). This regroups every 4 consecutive tokens into one voxel's channels, not each modality's
  token of that voxel. Here that is reproduced as-is. ``multimodal_decode_conv`` (1x1, 2048 -> 4 * 16d) follows.
- **Decoder.** ``decoder_fuse`` has one ``fusion_prenorm`` per level (1x1 from 4C to C, 3x3, 1x1; zero padding,
  because the authors pass no ``pad_type`` there). It decodes coarsest first, as a U-Net. The deep-supervision
  heads ``seg_d4`` .. ``seg_d1`` (1x1 convs on the decoder at levels 5 .. 2) are softmaxed and upsampled to full
  resolution (x16, x8, x4, x2; trilinear, align_corners=True). They take the place of RFNet's PRMs in the loss;
  there is no region-aware fusion. ``decoder_sep``, a five-level U-Net decoder shared by the modalities, runs
  only in training, on each modality's raw CNN features (unmasked, without the transformer).

Training draws one of the 15 non-empty subsets per sample, uniformly, in the authors' ``mask_array`` order
(``data/datasets_nii.py``, the same list as RFNet's). The authors' loss (``train.py``) is the same as RFNet's:
fused + separate decoders + deep supervision, with ``region_fusion_start_epoch`` 0.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from .host import Host, HostOutput
from .registry import register_model
from .rfnet import SUBSETS, mask_features, upsample
from .subset_dropout import SubsetDropout

__all__ = [
    "DecoderFuse",
    "DecoderSep",
    "Encoder",
    "FusionPrenorm",
    "MMFormerConfig",
    "MMFormerHost",
    "PreNormConv3d",
    "Transformer",
    "mmformer",
]

NUM_MODALITIES = 4
TRANSFORMER_DIM = 512  # the authors' transformer_basic_dims
MLP_DIM = 4096
NUM_HEADS = 8
DEPTH = 1
LEVELS = 5  # encoder levels; the token grid is the crop divided by 2^(LEVELS - 1) = 16
DOWNSAMPLING = 2 ** (LEVELS - 1)


class PreNormConv3d(nn.Module):
    """The authors' ``general_conv3d_prenorm``: InstanceNorm3d -> LeakyReLU(0.2) -> Conv3d (with bias).

    The authors size the norm for ``out_ch``. Because it has no affine parameters and no running statistics, that
    width is never used. Sizing it for ``in_ch`` gives the same numbers without PyTorch's width-mismatch warning.
    """

    def __init__(
        self, in_ch: int, out_ch: int, k_size: int = 3, stride: int = 1, padding: int = 1, padding_mode: str = "reflect"
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, k_size, stride=stride, padding=padding, padding_mode=padding_mode)
        self.norm = nn.InstanceNorm3d(in_ch)
        self.activation = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.activation(self.norm(x)))


def pointwise(in_ch: int, out_ch: int, padding_mode: str = "reflect") -> PreNormConv3d:
    """A 1 x 1 x 1 ``PreNormConv3d`` (its padding mode is irrelevant, kept for symmetry)."""
    return PreNormConv3d(in_ch, out_ch, k_size=1, padding=0, padding_mode=padding_mode)


class Encoder(nn.Module):
    """One modality's CNN encoder. ``e1_c1`` is a plain 3x3 conv (1 -> d, reflect padding). Each level then applies
    ``c1`` (stride 2 below level 1) and the residual ``x + c3(c2(x))``, all pre-norm.

    Returns the five levels (B, d, S, S, S), (B, 2d, S/2, ...), ..., (B, 16d, S/16, ...).
    """

    def __init__(self, in_channels: int = 1, basic_dims: int = 8) -> None:
        super().__init__()
        d = basic_dims
        self.e1_c1 = nn.Conv3d(in_channels, d, 3, stride=1, padding=1, padding_mode="reflect")
        self.e1_c2 = PreNormConv3d(d, d)
        self.e1_c3 = PreNormConv3d(d, d)
        for level in range(2, LEVELS + 1):
            width_in, width = d * 2 ** (level - 2), d * 2 ** (level - 1)
            setattr(self, f"e{level}_c1", PreNormConv3d(width_in, width, stride=2))
            setattr(self, f"e{level}_c2", PreNormConv3d(width, width))
            setattr(self, f"e{level}_c3", PreNormConv3d(width, width))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        levels = []
        for level in range(1, LEVELS + 1):
            x = getattr(self, f"e{level}_c1")(x)
            x = x + getattr(self, f"e{level}_c3")(getattr(self, f"e{level}_c2")(x))
            levels.append(x)
        return tuple(levels)


class DecoderSep(nn.Module):
    """The authors' ``Decoder_sep``: a five-level U-Net decoder on one modality's raw CNN features. It returns the
    segmentation *logits*; the authors return their softmax.

    For level l = 4 .. 1: ``d{l}_c1`` (3x3, 2C -> C) on the x2-upsampled coarser feature, concatenated before the
    skip, then ``d{l}_c2`` (3x3, 2C -> C) and ``d{l}_out`` (1x1). ``seg_layer`` (1x1 to the classes) follows.
    """

    def __init__(self, num_classes: int = 4, basic_dims: int = 8) -> None:
        super().__init__()
        d = basic_dims
        for level in range(LEVELS - 1, 0, -1):
            width = d * 2 ** (level - 1)
            setattr(self, f"d{level}_c1", PreNormConv3d(2 * width, width))
            setattr(self, f"d{level}_c2", PreNormConv3d(2 * width, width))
            setattr(self, f"d{level}_out", pointwise(width, width))
        self.seg_layer = nn.Conv3d(d, num_classes, kernel_size=1)

    def forward(self, *levels: torch.Tensor) -> torch.Tensor:
        de = levels[-1]
        for level in range(LEVELS - 1, 0, -1):
            de = getattr(self, f"d{level}_c1")(upsample(de, 2))
            de = getattr(self, f"d{level}_out")(
                getattr(self, f"d{level}_c2")(torch.cat((de, levels[level - 1]), dim=1))
            )
        return self.seg_layer(de)


class FusionPrenorm(nn.Module):
    """The authors' ``fusion_prenorm``: the concatenated masked modality features (B, 4C, ...) go through 1x1
    (to C), 3x3 and 1x1, all pre-norm with *zero* padding (the authors leave ``pad_type`` at its default there).

    The authors size the input as ``in_channel * num_cls``. That equals 4C only because BraTS has 4 classes, and
    their model breaks for any other class count. Here the input is sized by the 4 modalities, which is what it
    receives.
    """

    def __init__(self, in_channel: int) -> None:
        super().__init__()
        c = in_channel
        self.fusion_layer = nn.Sequential(
            pointwise(NUM_MODALITIES * c, c, padding_mode="zeros"),
            PreNormConv3d(c, c, padding_mode="zeros"),
            pointwise(c, c, padding_mode="zeros"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fusion_layer(x)


class DecoderFuse(nn.Module):
    """The authors' ``Decoder_fuse``: ``RFM{l}`` (a :class:`FusionPrenorm`) on each level's masked features, and a
    U-Net decoder from level 5 down.

    Level 5: ``RFM5`` on the inter-modal transformer's decoded output (B, 4 * 16d, P, P, P). Below it, ``RFM{l}``'s
    output is concatenated before the upsampled decoder feature, then a 3x3 and a 1x1 conv follow. The
    deep-supervision heads ``seg_d4`` .. ``seg_d1`` read the decoder at levels 5 .. 2. Returns
    ``(logits, (up2(p1), up4(p2), up8(p3), up16(p4)))``, the authors' order: ``p1`` = softmax(seg_d1) at level 2
    first, ``p4`` = softmax(seg_d4) at level 5 last. Each is upsampled to full resolution from its probabilities
    (trilinear, align_corners=True).
    """

    def __init__(self, num_classes: int = 4, basic_dims: int = 8) -> None:
        super().__init__()
        d = basic_dims
        for level in range(LEVELS - 1, 0, -1):
            width = d * 2 ** (level - 1)
            setattr(self, f"d{level}_c1", PreNormConv3d(2 * width, width))
            setattr(self, f"d{level}_c2", PreNormConv3d(2 * width, width))
            setattr(self, f"d{level}_out", pointwise(width, width))
        for head in range(LEVELS - 1, 0, -1):  # seg_d4 reads level 5 (16d channels), ..., seg_d1 level 2 (2d)
            setattr(self, f"seg_d{head}", nn.Conv3d(d * 2**head, num_classes, kernel_size=1))
        self.seg_layer = nn.Conv3d(d, num_classes, kernel_size=1)
        for level in range(LEVELS, 0, -1):
            setattr(self, f"RFM{level}", FusionPrenorm(d * 2 ** (level - 1)))

    def forward(
        self, *levels: torch.Tensor, deep_supervision: bool = True
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``levels``: the masked, concatenated features of levels 1-4 (B, 4 C_l, ...) and the decoded inter-modal
        feature (B, 4 * 16d, P, P, P). Without ``deep_supervision`` (evaluation) the heads are skipped and the
        tuple is empty; the logits are the same."""
        heads = []

        def supervise(head: int, feature: torch.Tensor) -> None:
            if deep_supervision:
                heads.append(torch.softmax(getattr(self, f"seg_d{head}")(feature), dim=1))

        de = self.RFM5(levels[4])
        supervise(4, de)
        de = self.d4_c1(upsample(de, 2))
        for level in range(LEVELS - 1, 0, -1):
            de = torch.cat((getattr(self, f"RFM{level}")(levels[level - 1]), de), dim=1)
            de = getattr(self, f"d{level}_out")(getattr(self, f"d{level}_c2")(de))
            if level > 1:
                supervise(level - 1, de)
                de = getattr(self, f"d{level - 1}_c1")(upsample(de, 2))
        logits = self.seg_layer(de)
        # heads = [p4 (level 5), p3, p2, p1 (level 2)]; the authors return (up2(p1), up4(p2), up8(p3), up16(p4))
        return logits, tuple(upsample(p, 2 ** (i + 1)) for i, p in enumerate(reversed(heads)))


class SelfAttention(nn.Module):
    """Multi-head self-attention: ``qkv`` without bias, the softmax of q k^T / sqrt(d_head) (dropout), ``proj``
    (dropout)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attention = self.attn_drop(((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1))
        return self.proj_drop(self.proj((attention @ v).transpose(1, 2).reshape(batch, tokens, dim)))


class FeedForward(nn.Module):
    """Linear (to the MLP width), GELU, dropout, Linear (back), dropout."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNorm(nn.Module):
    """``dropout(fn(LayerNorm(x)))``. The authors' ``PreNormDrop`` (attention) has the dropout; their ``PreNorm``
    (MLP) has ``dropout=None``."""

    def __init__(self, dim: int, fn: nn.Module, dropout: float | None = None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout) if dropout is not None else nn.Identity()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fn(self.norm(x)))


class Residual(nn.Module):
    """``x + fn(x)``."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fn(x)


class Transformer(nn.Module):
    """The authors' ``Transformer``. Each of the ``depth`` layers adds the position embedding, then applies a
    residual pre-norm attention block (dropout on the attention, the projection and the block output) and a
    residual pre-norm MLP block. The state-dict keys are theirs (``cross_attention_list.0.fn.fn.qkv.weight``, ...).
    """

    def __init__(
        self,
        dim: int = TRANSFORMER_DIM,
        depth: int = DEPTH,
        heads: int = NUM_HEADS,
        mlp_dim: int = MLP_DIM,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.cross_attention_list = nn.ModuleList()
        self.cross_ffn_list = nn.ModuleList()
        for _ in range(depth):  # attention, then MLP, layer by layer (the authors' construction order)
            self.cross_attention_list.append(Residual(PreNorm(dim, SelfAttention(dim, heads, dropout), dropout)))
            self.cross_ffn_list.append(Residual(PreNorm(dim, FeedForward(dim, mlp_dim, dropout))))

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        for attention, ffn in zip(self.cross_attention_list, self.cross_ffn_list, strict=True):
            x = ffn(attention(x + pos))
        return x


class _ParameterModule(nn.Module):
    """A module holding one of the host's parameters (a branch's position embedding) for ``branches()``. It is
    built on demand and never registered in the host, so the host's state dict stays the authors'."""

    def __init__(self, parameter: nn.Parameter) -> None:
        super().__init__()
        self.weight = parameter


class _ClassOrInstanceMethod:
    """A method bound to the instance when called on one and to the class otherwise (``example_inputs``: an
    instance gives volumes of its own ``patch_size``, the class those of the default configuration)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, instance: Any, owner: type) -> Callable[..., Any]:
        return types.MethodType(self.fn, owner if instance is None else instance)


@dataclass
class MMFormerConfig:
    """Options of :class:`MMFormerHost`.

    num_classes: segmentation classes (BraTS2018/2020: 4, BG / NCR-NET / ED / ET).
    basic_dims: the encoders' level-1 width (the authors: 8).
    patch_size: P, the token grid per axis: the crop size divided by 16. It fixes the position embeddings
        (1, P^3, 512), so the host takes (16P)^3 volumes only. The authors' ``train.py`` uses 128^3 crops and
        P = 8; for the 80^3 crops of the paper preset (RFNet's protocol) P = 5. P must be at least 2: level 5 needs
        2 voxels per axis for reflect padding and instance norm. P = 2 (32^3 volumes) is for tests only.
    modality_dropout: the training-time draw of one of the 15 non-empty subsets per sample.
    dropout: the transformers' dropout (attention, projection, block output, MLP): 0.1 as the authors.
    fused_loss_start_epoch: the epoch from which the fused output's loss counts (``--region_fusion_start_epoch``,
        0 in the authors' mmFormer ``train.py``; read by the segmentation task).
    """

    num_classes: int = 4
    basic_dims: int = 8
    patch_size: int = 5
    modality_dropout: bool = True
    dropout: float = 0.1
    fused_loss_start_epoch: int = 0

    def __post_init__(self) -> None:
        if (
            self.num_classes < 1
            or self.basic_dims < 1
            or self.patch_size < 2
            or not 0.0 <= self.dropout < 1.0
            or self.fused_loss_start_epoch < 0
        ):
            raise ValueError(
                "MMFormerConfig: need num_classes >= 1, basic_dims >= 1, patch_size >= 2, 0 <= dropout < 1, "
                f"fused_loss_start_epoch >= 0; got {self}"
            )


class MMFormerHost(SubsetDropout, Host):
    """The mmFormer host: the Host contract with an ``encode`` / ``fuse`` split. ``encode`` runs the four hybrid
    encoders (CNN and intra-modal transformer); ``fuse`` does the masking, the inter-modal transformer,
    ``decoder_fuse``, and ``decoder_sep`` in training.

    ``forward(inputs, present)`` takes ``inputs`` ``{modality: (B, 1, S, S, S)}``, with S = 16 * ``patch_size``
    (80 for the default P = 5). It returns a ``HostOutput`` with:

    - ``logits``: the fused segmentation logits (B, K, S, S, S), pre-softmax. Their softmax is the authors'
      ``fuse_pred``.
    - ``aux``: in training only, ``{modality: decoder_sep logits (B, K, S, S, S)}`` on that modality's raw,
      unmasked CNN features. Their softmax is the authors' ``sep_preds``.
    - ``extras["prm"]``: in training only, the four deep-supervision outputs as *probabilities* (B, K, S, S, S),
      in the authors' order ``[up2(softmax(seg_d1)), up4(softmax(seg_d2)), up8(softmax(seg_d3)),
      up16(softmax(seg_d4))]``. These come from the decoder at levels 2, 3, 4 and 5, finest first, and are what
      the authors' ``prm_loss`` is computed on.
    - ``present``: the effective mask. In training with ``modality_dropout`` it is ``present & drawn``, where
      ``drawn`` is one of the 15 non-empty subsets per sample; otherwise it is ``present``.

    The state-dict keys are the authors' ``mmformer.Model``'s (``flair_encoder.e1_c1.weight``, ``flair_pos``,
    ``flair_transformer.cross_attention_list.0.fn.fn.qkv.weight``, ``multimodal_decode_conv.weight``,
    ``decoder_fuse.RFM5.fusion_layer.0.conv.weight``, ...). Their state dicts load with ``strict=True`` (once
    DataParallel's ``module.`` prefix is stripped, and for the same ``patch_size``) and give the same outputs: on
    shared random weights, bit for bit on the CPU, for the fused prediction, the separate decoders and the deep
    supervision, at P = 2, 5 and 8. The modules are also built in their order, with their initialisation
    (Kaiming-normal Conv3d weights, PyTorch's defaults elsewhere, zero position embeddings). Under the same seed
    the initial weights are therefore theirs.

    ``branches()`` (what MWAM rescales) gives, per modality, the encoder, ``encode_conv``, the position embedding
    and the intra-modal transformer. ``decode_conv`` is left out because it is unused and never gets a gradient.
    SDE applies through ``feature_branches()``, the four CNN encoders: its forward hooks enhance each encoder's
    deepest level (the ``branches()`` groups are never called as a whole; tests/test_sde_variant.py trains it).
    """

    modalities = ("flair", "t1ce", "t1", "t2")

    def __init__(self, config: MMFormerConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        config = config or MMFormerConfig()
        known = [f.name for f in fields(MMFormerConfig)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"MMFormerHost: unknown options {unknown}; known: {known}")
        self.config = replace(config, **overrides)
        cfg = self.config
        d, p = cfg.basic_dims, cfg.patch_size
        width = d * DOWNSAMPLING  # the coarsest level's channels (128 for the authors' basic_dims 8)
        # built in the authors' order (mmformer.Model.__init__), so that a seed gives their initial weights
        for m in self.modalities:
            setattr(self, f"{m}_encoder", Encoder(1, d))
        for m in self.modalities:
            setattr(self, f"{m}_encode_conv", nn.Conv3d(width, TRANSFORMER_DIM, kernel_size=1))
        for m in self.modalities:
            setattr(self, f"{m}_decode_conv", nn.Conv3d(TRANSFORMER_DIM, width, kernel_size=1))  # unused (authors)
        for m in self.modalities:
            setattr(self, f"{m}_pos", nn.Parameter(torch.zeros(1, p**3, TRANSFORMER_DIM)))
        for m in self.modalities:
            setattr(self, f"{m}_transformer", Transformer(dropout=cfg.dropout))
        self.multimodal_transformer = Transformer(dropout=cfg.dropout)
        self.multimodal_decode_conv = nn.Conv3d(NUM_MODALITIES * TRANSFORMER_DIM, NUM_MODALITIES * width, kernel_size=1)
        self.decoder_fuse = DecoderFuse(cfg.num_classes, d)
        self.decoder_sep = DecoderSep(cfg.num_classes, d)
        self.register_subsets(SUBSETS)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight)

    @property
    def fused_loss_start_epoch(self) -> int:
        """Epochs during which the fused output's loss is multiplied by 0 (the authors' mmFormer: none)."""
        return self.config.fused_loss_start_epoch

    @property
    def volume_size(self) -> int:
        """The side S = 16 * patch_size of the (S, S, S) volumes the host takes."""
        return DOWNSAMPLING * self.config.patch_size

    def branches(self) -> dict[str, nn.Module]:
        """Per modality, a ``ModuleDict`` of ``encoder``, ``encode_conv``, ``pos`` (a module holding ``{m}_pos``
        as ``weight``) and ``transformer``: every parameter the modality uses alone (disjoint, inside the host)."""
        return {
            m: nn.ModuleDict(
                {
                    "encoder": getattr(self, f"{m}_encoder"),
                    "encode_conv": getattr(self, f"{m}_encode_conv"),
                    "pos": _ParameterModule(getattr(self, f"{m}_pos")),
                    "transformer": getattr(self, f"{m}_transformer"),
                }
            )
            for m in self.modalities
        }

    def feature_branches(self) -> dict[str, nn.Module]:
        """Each modality's CNN encoder (SDE enhances its deepest level, the 128-channel map the encode conv and the
        intra-modal transformer read, and the separate decoder too): the ``branches()`` groups are never called."""
        return {m: getattr(self, f"{m}_encoder") for m in self.modalities}

    @_ClassOrInstanceMethod
    def example_inputs(self: Any, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Four 1 x S^3 volumes per sample, S = 16 * patch_size. On an instance the size is its own; on the class
        it is the default configuration's (80^3). The registry's ``test_options`` (patch_size 2, basic_dims 4,
        for the CPU test suite only) make the contract test's host take 32^3, the smallest size."""
        if isinstance(self, MMFormerHost):  # ``self`` is the instance, or the class (see _ClassOrInstanceMethod)
            size = self.volume_size
        else:
            size = DOWNSAMPLING * MMFormerConfig().patch_size
        return {m: torch.randn(batch, 1, size, size, size, generator=generator) for m in self.modalities}

    def check_volumes(self, inputs: Mapping[str, torch.Tensor], batch: int) -> None:
        """Every input is (B, 1, S, S, S) with S = 16 * patch_size."""
        size = self.volume_size
        for m in self.modalities:
            x = inputs[m]
            if x.dim() != 5 or x.shape[0] != batch or x.shape[1] != 1:
                raise ValueError(f"MMFormerHost: input {m!r} must be (B={batch}, 1, D, H, W), got {tuple(x.shape)}")
            if tuple(x.shape[2:]) != (size,) * 3:
                raise ValueError(
                    f"MMFormerHost: input {m!r} is {tuple(x.shape[2:])}, but patch_size={self.config.patch_size} "
                    f"takes ({size}, {size}, {size}) volumes only (16 * patch_size; its position embeddings hold "
                    f"{self.config.patch_size}^3 tokens)"
                )

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor | None = None) -> HostOutput:
        """Hybrid encoders on the real inputs, then ``fuse`` with the effective mask (see the class docstring)."""
        present = self.check_inputs(inputs, present)
        self.check_volumes(inputs, present.shape[0])
        mask = present.to(inputs[self.modalities[0]].device)
        if self.training:
            mask = self.training_dropout(mask)
        return self.fuse(self.encode(inputs), mask)

    def encode(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, ...]]:
        """Each hybrid encoder on its real input: ``{modality: (x1, x2, x3, x4, x5, tokens)}``. Here x1..x5 are the
        CNN levels and ``tokens`` (B, P^3, 512) the intra-modal transformer's output."""
        features = {}
        for m in self.modalities:
            levels = getattr(self, f"{m}_encoder")(inputs[m])
            embedded = getattr(self, f"{m}_encode_conv")(levels[-1])
            tokens = embedded.permute(0, 2, 3, 4, 1).reshape(embedded.shape[0], -1, TRANSFORMER_DIM)
            # the position embedding goes in as a copy: PyTorch's module tracker (FlopCounterMode) fails on a leaf
            # parameter passed to a module under inference_mode; the values and gradients are the same
            tokens = getattr(self, f"{m}_transformer")(tokens, getattr(self, f"{m}_pos").clone())
            features[m] = (*levels, tokens)
        return features

    def fuse(self, features: Mapping[str, Sequence[torch.Tensor]], present: torch.Tensor) -> HostOutput:
        """Masking (levels 1-4 and the intra-modal tokens), the inter-modal transformer, ``decoder_fuse``. In
        training also ``decoder_sep`` on each modality's unmasked CNN features, and the deep supervision."""

        def stacked(i: int) -> torch.Tensor:  # (B, 4, ...): entry i of every modality's features
            return torch.stack([features[m][i] for m in self.modalities], dim=1)

        mask = present.to(features[self.modalities[0]][0].device)
        skips = [mask_features(stacked(i), mask).flatten(1, 2) for i in range(LEVELS - 1)]  # (B, 4 C_l, ...)
        tokens = mask_features(stacked(LEVELS), mask).flatten(1, 2)  # (B, 4 P^3, 512), the modalities in order
        pos = torch.cat([getattr(self, f"{m}_pos") for m in self.modalities], dim=1)
        tokens = self.multimodal_transformer(tokens, pos)
        p = self.config.patch_size
        # the authors' .view(B, P, P, P, 4 * 512) of the token sequence: every 4 consecutive tokens become a voxel
        grid = tokens.reshape(tokens.shape[0], p, p, p, NUM_MODALITIES * TRANSFORMER_DIM).permute(0, 4, 1, 2, 3)
        inter = self.multimodal_decode_conv(grid.contiguous())
        logits, deep = self.decoder_fuse(*skips, inter, deep_supervision=self.training)
        if not self.training:
            return HostOutput(logits=logits, present=mask)
        aux = {m: self.decoder_sep(*features[m][:LEVELS]) for m in self.modalities}
        return HostOutput(logits=logits, aux=aux, present=mask, extras={"prm": list(deep)})


#: The authors' ``mmformer.Model(num_cls=4)`` with ``patch_size = 5`` (80^3 crops), counted by building it:
#: 35,861,840 parameters (with their 128^3 / P = 8 configuration: 36,654,416). Each encoder has 1,473,216, each
#: encode conv 66,048, each (unused) decode conv 65,664, each position embedding P^3 * 512 (64,000 at P = 5), each
#: of the five transformers 5,250,048, multimodal_decode_conv 1,049,088, decoder_fuse 1,293,444, decoder_sep 593,356.
MMFORMER_PARAMETERS = 35_861_840
MMFORMER_PARAMETERS_P8 = 36_654_416


@register_model(
    "mmformer",
    parameters=MMFORMER_PARAMETERS,
    reference=(
        "authors' mmFormer mmformer.Model(num_cls=4) (YaoZhang93/mmFormer mmformer.py) with patch_size=5 for 80^3 "
        "crops: 35,861,840 (patch_size=8, their 128^3 crops: 36,654,416)"
    ),
    test_options={"patch_size": 2, "basic_dims": 4},
)
def mmformer(**cfg: Any) -> MMFormerHost:
    """mmFormer (BraTS, four modalities, 80^3 volumes by default), with modality dropout over the 15 subsets in
    training by default."""
    return MMFormerHost(MMFormerConfig(), **cfg)
