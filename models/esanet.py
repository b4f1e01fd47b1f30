"""ESANet / ESANet-MD and MMANet-seg's student: the NYU-Depth V2 hosts (RGB + depth semantic segmentation).

ESANet (Seichter et al., ICRA 2021) as MMANet's segmentation code builds it (shicaiwei123/MMANet-CVPR2023,
``segmentation/src/models/model.py::ESANet``, built by ``src/build_model.py::build_model_original`` from
``train_missing_amp.py``, which hard-codes ``args.encoder = 'resnet50'``). The configuration is the training
scripts' (``src/args.py`` defaults, ``train_nyuv2_full.sh`` / ``train_nyuv2_mmanet.sh``):

- two ResNet-50 encoders, ``encoder_rgb`` (3 input channels) and ``encoder_depth`` (1), ImageNet-pretrained (with
  ``pretrained``; the depth conv1 is the ImageNet conv1 summed over its input channels). ESANet's ResNet-50 always
  uses its ``Bottleneck`` (``--encoder_block NonBottleneck1D`` is ignored for ResNet-50, with a warning), which is
  torchvision's ResNet-50 v1.5 block (stride on the 3x3 conv), with the same attribute names: the encoders here are
  torchvision's ``ResNet(Bottleneck, [3, 4, 6, 3])`` without ``avgpool`` / ``fc``;
- ``fuse_depth_in_rgb_encoder='SE-add'``: five ``SqueezeAndExciteFusionAdd`` (``se_layer0`` after the stem, 64
  channels; ``se_layer1..4`` after layers 1-4, 256 / 512 / 1024 / 2048), each ``se_rgb(rgb) + se_depth(depth)``
  (squeeze-and-excitation with reduction 16 on either stream). The fused map replaces the RGB stream (layer i+1
  of ``encoder_rgb`` consumes it); the depth stream stays the depth encoder's own;
- ``encoder_decoder_fusion='add'``: ``skip_layer1..3`` (1x1 ConvBNAct) bring the fused maps after layers 1-3 to
  the decoder widths;
- ``context_module='ppm'``: pyramid pooling with bins (1, 5), 2048 -> 2 x 1024 -> 1x1 conv to 512; its
  upsampling is nearest (ESANet replaces the learned upsampling there, as its feature maps are not scaled by 2);
- ``decoder_channels_mode='decreasing'`` -> decoder channels [512, 256, 128], ``nr_decoder_blocks=[3]`` -> three
  ``NonBottleneck1D`` (ERFNet) blocks per module, ``upsampling='learned-3x3-zeropad'`` (nearest x2, then a
  depthwise 3x3 conv initialised to a bilinear kernel, zero bias); each module has a 1x1 ``side_output`` (training
  only), then ``conv_out`` (3x3 to the classes) and two learned x2 upsamplings give full resolution;
- ``activation='relu'``, ``he_init`` off (the scripts do not pass ``--he_init``): the encoders keep their ResNet
  initialisation (Kaiming-normal fan-out convolutions, BatchNorm 1 / 0) or the ImageNet weights, the other layers
  PyTorch's defaults (the option ``he_init`` reproduces ESANet's ``--he_init``).

Missing modalities (MMANet's ``modality_drop``): per-sample factors (B, 2) for [rgb, depth] multiply the RGB and
the depth features entering **each of the five SE fusions** -- the inputs, and the depth stream itself, are
untouched. ``p = [0, 0]`` (ESANet-MD, MMANet's student) draws, per training sample, one of [1, 0], [0, 1], [1, 1]
uniformly (``np.random.choice`` over that list); ``p = [1, 1]`` is the full-modality ESANet (MMANet's teacher).
Here the caller's ``present`` is applied exactly in evaluation; in training with ``modality_dropout`` the applied
mask is ``present & drawn``. Since an absent stream's features are zero at every fusion, the prediction of a sample
does not depend on its absent input (in evaluation, or in training when the whole batch misses it: BatchNorm's
batch statistics mix samples in training).

MMANet-seg's student (``ESANet_KD_Auxi`` with ``p = [0, 0]`` and ``args.auxi = True``) adds ``auxi_decoder``, a
second decoder on the same fused encoder outputs (the context-module output and the three skips).
State-dict keys are the authors' (``encoder_rgb.layer1.0.conv1.weight``, ``se_layer3.se_depth.fc.2.bias``,
``skip_layer2.0.conv.weight``, ``context_module.features.1.1.bn.running_mean``,
``decoder.decoder_module_1.decoder_blocks.2.conv1x3_2.weight``, ``decoder.upsample2.conv.weight``,
``auxi_decoder.conv_out.bias``): their checkpoints (``checkpoint['rgb_state_dict']``) load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .host import Host, HostOutput
from .registry import register_model
from .subset_dropout import SubsetDropout

__all__ = [
    "ENCODERS",
    "SUBSETS",
    "ConvBNAct",
    "Decoder",
    "DecoderModule",
    "ESANetConfig",
    "ESANetHost",
    "MMANetSegConfig",
    "MMANetSegStudent",
    "NonBottleneck1D",
    "PyramidPoolingModule",
    "ResNetEncoder",
    "SqueezeAndExcitation",
    "SqueezeAndExciteFusionAdd",
    "Upsample",
    "esanet",
    "esanet_md",
    "load_imagenet_resnet50",
    "mmanet_seg",
]

#: The three subsets over (rgb, depth) in MMANet's ``modality_drop`` order (``modality_combination``; the index is
#: what their ``np.random.choice([0, 1, 2], p=[1/3] * 3)`` draws).
SUBSETS: tuple[tuple[bool, bool], ...] = ((True, False), (False, True), (True, True))

#: Every spatial size must be a multiple of the encoders' total stride (the decoder adds the x2-upsampled map to
#: the skip of the next finer level).
STRIDE = 32
ENCODER_CHANNELS = (64, 256, 512, 1024, 2048)  # stem, layer1..4 (ResNet-50)
#: The output channels (stem, layer1..4) of each encoder ``ESANetConfig.encoder`` may name: ESANet's ``--encoder``
#: choices; ResNet-18 / 34 with the ``BasicBlock`` of its ``--encoder_block BasicBlock`` (torchvision's block).
ENCODERS: dict[str, tuple[int, int, int, int, int]] = {
    "resnet18": (64, 64, 128, 256, 512),
    "resnet34": (64, 64, 128, 256, 512),
    "resnet50": ENCODER_CHANNELS,
}
SE_REDUCTION = 16
PPM_BINS = (1, 5)  # ESANet's get_context_module('ppm'): bins (1, 5), not PSPNet's (1, 2, 3, 6)
BILINEAR_KERNEL = ((0.0625, 0.125, 0.0625), (0.125, 0.25, 0.125), (0.0625, 0.125, 0.0625))


class ResNetEncoder(nn.Module):
    """ESANet's ResNet encoder (``name``: ``resnet50`` by default, or ``resnet18`` / ``resnet34`` with ``BasicBlock``):
    torchvision's ResNet-50 (``Bottleneck``, [3, 4, 6, 3]: ESANet's ``Bottleneck`` is
    the same block with the same attribute names) without ``avgpool`` and ``fc``, so the keys are ESANet's
    (``conv1``, ``bn1``, ``layer1.0.downsample.0``, ...); ``input_channels=1`` for depth. ESANet's initialisation is
    torchvision's (Kaiming-normal fan-out convolutions, BatchNorm weight 1 / bias 0, no zero-init of the residual BN).

    The host calls the stages one by one (``forward_first_conv``, ``maxpool``, ``layer1`` .. ``layer4``), fusing
    between them; ``forward`` runs the plain encoder and returns ``[layer4, layer3, layer2, layer1]`` (ESANet's
    ``ResNet.forward``), unused by the host.
    """

    def __init__(self, input_channels: int = 3, name: str = "resnet50") -> None:
        super().__init__()
        # torchvision is imported here, not with the module: it adds about a second to every import of the hosts.
        from torchvision.models import resnet

        if name not in ENCODERS:
            raise ValueError(f"ESANet encoder must be one of {sorted(ENCODERS)}, got {name!r}")
        net = getattr(resnet, name)(weights=None)
        self.conv1 = net.conv1
        if input_channels != 3:
            self.conv1 = nn.Conv2d(input_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1, self.relu, self.maxpool = net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward_first_conv(self, x: torch.Tensor) -> torch.Tensor:
        """conv1, bn1, ReLU (ESANet applies the max pool after the first fusion)."""
        return self.relu(self.bn1(self.conv1(x)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x1 = self.layer1(self.maxpool(self.forward_first_conv(x)))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        return [self.layer4(x3), x3, x2, x1]


class ConvBNAct(nn.Sequential):
    """ESANet's ``ConvBNAct``: conv (no bias, 'same' padding) -> BatchNorm -> ReLU (keys ``conv``, ``bn``)."""

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int) -> None:
        super().__init__()
        self.add_module("conv", nn.Conv2d(channels_in, channels_out, kernel_size, padding=kernel_size // 2, bias=False))
        self.add_module("bn", nn.BatchNorm2d(channels_out))
        self.add_module("act", nn.ReLU(inplace=True))


class SqueezeAndExcitation(nn.Module):
    """ESANet's SE block: ``x * sigmoid(conv1x1(relu(conv1x1(avgpool(x)))))``, reduction 16, with biases."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(F.adaptive_avg_pool2d(x, 1))


class SqueezeAndExciteFusionAdd(nn.Module):
    """ESANet's fusion: ``se_rgb(rgb) + se_depth(depth)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.se_rgb = SqueezeAndExcitation(channels)
        self.se_depth = SqueezeAndExcitation(channels)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.se_rgb(rgb) + self.se_depth(depth)


class NonBottleneck1D(nn.Module):
    """The ERFNet block (ESANet's ``NonBottleneck1D``): 3x1, ReLU, 1x3, BN, ReLU, 3x1, ReLU, 1x3, BN, then
    ``relu(out + x)``; convolutions with biases, BatchNorm eps 1e-3. ESANet's ``Dropout2d(0)`` is never applied
    (and has no parameters): left out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1x3_1(self.act(self.conv3x1_1(x)))))
        out = self.bn2(self.conv1x3_2(self.act(self.conv3x1_2(out))))
        return self.act(out + x)


class Upsample(nn.Module):
    """ESANet's ``Upsample('learned-3x3-zeropad')``: nearest-neighbour x2, then a depthwise 3x3 conv (zero padding)
    initialised to the bilinear kernel [[1, 2, 1], [2, 4, 2], [1, 2, 1]] / 16 with zero bias (``pad`` is the
    identity; the keys are ``conv.weight`` / ``conv.bias``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad = nn.Identity()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(BILINEAR_KERNEL).expand(channels, 1, 3, 3))
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(x.shape[2] * 2, x.shape[3] * 2), mode="nearest")
        return self.conv(self.pad(x))


class PyramidPoolingModule(nn.Module):
    """ESANet's PPM: per bin, adaptive average pooling + 1x1 ConvBNAct to ``in / len(bins)`` channels, nearest
    upsampling back; the input and the bins concatenated, then a 1x1 ConvBNAct to ``out`` channels."""

    def __init__(self, channels_in: int, channels_out: int, bins: Sequence[int] = PPM_BINS) -> None:
        super().__init__()
        reduction = channels_in // len(bins)
        self.features = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), ConvBNAct(channels_in, reduction, kernel_size=1)) for b in bins
        )
        self.final_conv = ConvBNAct(channels_in + reduction * len(bins), channels_out, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pooled = [F.interpolate(f(x), size=size, mode="nearest") for f in self.features]
        return self.final_conv(torch.cat([x, *pooled], dim=1))


class DecoderModule(nn.Module):
    """One decoder stage: 3x3 ConvBNAct, ``nr_blocks`` ERFNet blocks, the side output (1x1 to the classes, on the
    pre-upsampling map, training only), learned x2 upsampling, plus the encoder skip."""

    def __init__(self, channels_in: int, channels: int, nr_blocks: int, num_classes: int) -> None:
        super().__init__()
        self.conv3x3 = ConvBNAct(channels_in, channels, kernel_size=3)
        self.decoder_blocks = nn.Sequential(*(NonBottleneck1D(channels) for _ in range(nr_blocks)))
        self.upsample = Upsample(channels)
        self.side_output = nn.Conv2d(channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.decoder_blocks(self.conv3x3(x))
        side = self.side_output(out) if self.training else None
        return self.upsample(out) + skip, side


class Decoder(nn.Module):
    """ESANet's decoder: three modules (from the context module's output and the skips at 1/16, 1/8, 1/4), then
    ``conv_out`` (3x3, with bias) and two learned x2 upsamplings.

    ``forward([out, skip3, skip2, skip1])`` returns ``(logits, side, features)``: the full-resolution logits; in
    training the side outputs ``[out_down_8, out_down_16, out_down_32]`` (ESANet's order: at 1/8, 1/16, 1/32, from
    modules 3, 2, 1), ``None`` in evaluation; and MMANet's decoder features ``[out_down_8_feature,
    out_down_16_feature, out_down_32_feature]``, the outputs of modules 3, 2, 1 (after upsampling and skip: at 1/4,
    1/8, 1/16, with 128, 256, 512 channels) -- the last is what MMANet's MAD weights by (``pred_scales_t[6]``).
    """

    def __init__(self, channels_in: int, channels: Sequence[int], nr_blocks: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.decoder_module_1 = DecoderModule(channels_in, channels[0], nr_blocks[0], num_classes)
        self.decoder_module_2 = DecoderModule(channels[0], channels[1], nr_blocks[1], num_classes)
        self.decoder_module_3 = DecoderModule(channels[1], channels[2], nr_blocks[2], num_classes)
        self.conv_out = nn.Conv2d(channels[2], num_classes, kernel_size=3, padding=1)
        self.upsample1 = Upsample(num_classes)
        self.upsample2 = Upsample(num_classes)

    def forward(
        self, enc_outs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None, list[torch.Tensor]]:
        out, skip3, skip2, skip1 = enc_outs
        f32, side32 = self.decoder_module_1(out, skip3)
        f16, side16 = self.decoder_module_2(f32, skip2)
        f8, side8 = self.decoder_module_3(f16, skip1)
        logits = self.upsample2(self.upsample1(self.conv_out(f8)))
        side = [side8, side16, side32] if self.training else None
        return logits, side, [f8, f16, f32]  # type: ignore[list-item]


def load_imagenet_resnet50(path: str | Path) -> dict[str, torch.Tensor]:
    """The ImageNet ResNet-50 weights in ``path`` (torchvision's ``resnet50`` state dict format, which timm's
    ``resnet50`` shares; ``.pth`` / ``.pt`` / ``.bin`` via ``torch.load``, or ``.safetensors``), without ``fc.*``.
    A mapping under ``state_dict`` / ``model`` is unwrapped; ``conv1.weight`` must be (64, 3, 7, 7). Raises
    FileNotFoundError / ValueError saying what was found (the keys are checked against the encoders on loading)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"ESANet pretrained: no file {path} (an ImageNet ResNet-50 state dict, e.g. torchvision's "
            "https://download.pytorch.org/models/resnet50-0676ba61.pth)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file gets the same explanation
        raise ValueError(f"ESANet pretrained: cannot read {path} as a state dict: {error}") from error
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"ESANet pretrained: {path} holds no state dict of tensors (got {type(state).__name__})")
    conv1 = state.get("conv1.weight")
    if conv1 is None or tuple(conv1.shape) != (64, 3, 7, 7):
        shape = None if conv1 is None else tuple(conv1.shape)
        raise ValueError(
            f"ESANet pretrained: {path} is not an ImageNet ResNet-50 (conv1.weight {shape}, want (64, 3, 7, 7))"
        )
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def _load_encoder(encoder: ResNetEncoder, weights: Mapping[str, torch.Tensor], path: Path | str) -> None:
    """``weights`` (3-channel ImageNet conv1) into ``encoder``; a 1-channel encoder gets conv1 summed over the input
    channels (ESANet's ``ResNet50``). Every key and shape must match (``num_batches_tracked`` may be absent)."""
    expected = encoder.state_dict()
    weights = dict(weights)
    conv1 = weights["conv1.weight"]  # (64, 3, 7, 7): checked by load_imagenet_resnet50
    if encoder.conv1.in_channels != 3:
        weights["conv1.weight"] = conv1.sum(dim=1, keepdim=True)
    missing = [k for k in expected if k not in weights and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in weights if k not in expected]
    wrong = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(
            f"ESANet pretrained: {path} is not a torchvision / timm ResNet-50 state dict: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, "
            f"shape mismatches {wrong[:5]}"
        )
    encoder.load_state_dict(weights, strict=False)


@dataclass
class ESANetConfig:
    """Options of :class:`ESANetHost` (defaults: the model of MMANet's NYUv2 scripts).

    num_classes: NYUv2's 40 classes (void, label 0, is not a class).
    modality_dropout: MMANet's ``p = [0, 0]``: one of [1, 0], [0, 1], [1, 1] per training sample (ESANet-MD);
        off: ``p = [1, 1]`` unless the caller's mask says otherwise (ESANet, MMANet's teacher).
    pretrained: path of an ImageNet ResNet-50 state dict (torchvision's format, e.g. ``resnet50-0676ba61.pth``;
        the authors' code downloads ``resnet50-19c8e357.pth``), loaded into both encoders (depth: conv1 summed over
        the input channels); None: random initialisation.
    he_init: ESANet's ``--he_init`` (off in MMANet's scripts): Kaiming-normal (fan-out) on every conv outside the
        pretrained encoders except those with ``num_classes`` outputs, those before a sigmoid (the SE excitations)
        and depthwise ones, BatchNorm 1 / 0.
    channels_decoder, nr_decoder_blocks: the decoder widths ([512, 256, 128]) and ERFNet blocks per module (3).
    encoder: ``resnet50`` (the paper's and MMANet's scripts'), or ESANet's smaller ``resnet18`` / ``resnet34``
        (``BasicBlock``): the smoke preset trains ResNet-18 encoders so that its weights stay small.
    """

    num_classes: int = 40
    modality_dropout: bool = True
    pretrained: str | None = None
    he_init: bool = False
    channels_decoder: tuple[int, int, int] = (512, 256, 128)
    nr_decoder_blocks: tuple[int, int, int] = (3, 3, 3)
    encoder: str = "resnet50"

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"{type(self).__name__}: encoder must be one of {sorted(ENCODERS)}, got {self.encoder!r}")
        if self.pretrained is not None and self.encoder != "resnet50":
            raise ValueError(f"{type(self).__name__}: pretrained weights load into resnet50 encoders only")
        self.channels_decoder = tuple(self.channels_decoder)  # type: ignore[assignment]
        self.nr_decoder_blocks = tuple(self.nr_decoder_blocks)  # type: ignore[assignment]
        if (
            self.num_classes < 1
            or len(self.channels_decoder) != 3
            or len(self.nr_decoder_blocks) != 3
            or min(self.channels_decoder) < 1
            or min(self.nr_decoder_blocks) < 0
        ):
            raise ValueError(
                f"{type(self).__name__}: need num_classes >= 1, three decoder widths >= 1 and three block counts >= 0;"
                f" got {self}"
            )


@dataclass
class MMANetSegConfig(ESANetConfig):
    """Options of :class:`MMANetSegStudent`: :class:`ESANetConfig`'s and

    auxiliary_gate: the authors' ``auxi_decoder`` runs only when the batch has a depth-only sample
        (``sum((1 - p_rgb) * p_depth) != 0``); otherwise their auxiliary output *is* the main decoder's. On: the same
        here (``extras["auxiliary"]`` is then ``logits``). Off (default): the auxiliary decoder runs on every
        training batch. The auxiliary loss only reads the weak combination's samples, so the two agree whenever the
        weak combination is depth-only, which the gate assumes.
    """

    auxiliary_gate: bool = False


class ESANetHost(SubsetDropout, Host):
    """ESANet-R50 (SE-add fusion, PPM, ERFNet decoder) with MMANet's modality-access factors (module docstring).

    ``forward(inputs, present)`` takes ``{"rgb": (B, 3, H, W), "depth": (B, 1, H, W)}``, H and W multiples of 32
    (NYUv2: 480 x 640), and returns a ``HostOutput`` with

    - ``logits``: (B, K, H, W), the full-resolution output (ESANet's only output in evaluation);
    - ``present``: the applied (B, 2) mask (``present`` in evaluation; ``present & drawn`` in training with
      ``modality_dropout``, one of the three subsets per sample; a sample can end up with an empty mask, then both
      streams are zero at every fusion);
    - ``extras["side"]`` (training only): the side outputs ``[1/8, 1/16, 1/32]`` (B, K, H/s, W/s), ESANet's order,
      which its loss sums with the full-resolution one against the labels at 1/8, 1/16, 1/32;
    - ``extras["encoder"]``: the fused encoder outputs MMANet's MAD distils (``fuse_cache[0:3]`` of
      ``ESANet_KD_Auxi``, ``for j in [0, 1, 2]`` in ``train_missing_mmanet.py``): ``out`` (the context module's
      output, 512 x H/32 x W/32), ``skip3`` (512 x H/16) and ``skip2`` (256 x H/8), the skips after their 1x1
      ``skip_layer`` convolutions;
    - ``extras["decoder"]``: the decoder features ``[1/4 (128), 1/8 (256), 1/16 (512)]`` (see :class:`Decoder`);
      ``[2]`` is the teacher's ``pred_scales_t[6]`` that weights MAD.

    ``branches()`` (MWAM): ``encoder_rgb`` and ``encoder_depth``. Stages 1-4 of ``encoder_rgb`` consume the *fused*
    features (``se_layer{i}`` output replaces the RGB stream), so ``encoder_rgb``'s gradients, which MWAM rescales
    by the RGB weight, come from a stream that carries depth information as well; ``encoder_depth`` sees depth only.
    The SE fusions (``se_layer{i}.se_rgb`` / ``.se_depth``) are left out of the branches (shared by design).

    ``feature_branches()`` (SDE): ``encoder_rgb.layer4`` and ``encoder_depth.layer4``, each called once per forward
    pass: the deepest per-modality maps (2048 x H/32 x W/32) *before* the modality factors and the last fusion, the
    analogue of RFNet's deepest encoder level (the RGB one, like the branch, has seen the depth fused into stages
    1-3). An enhanced map then goes through the factor and ``se_layer4``.

    No ``encode`` / ``fuse`` split: the fusion is interleaved with the encoders, so every subset needs its own
    encoder pass.
    """

    modalities = ("rgb", "depth")
    config_class: type[ESANetConfig] = ESANetConfig

    def __init__(self, config: ESANetConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        config = config or self.config_class()
        names = {f.name for f in fields(self.config_class)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown options {unknown}; known: {sorted(names)}")
        if not isinstance(config, self.config_class):
            config = self.config_class(**{f.name: getattr(config, f.name) for f in fields(config)})
        self.config = replace(config, **overrides)
        cfg = self.config
        weights = None if cfg.pretrained is None else load_imagenet_resnet50(cfg.pretrained)  # read errors first
        self.encoder_rgb = ResNetEncoder(3, cfg.encoder)
        self.encoder_depth = ResNetEncoder(1, cfg.encoder)
        encoder_channels = ENCODERS[cfg.encoder]
        for i, channels in enumerate(encoder_channels):
            self.add_module(f"se_layer{i}", SqueezeAndExciteFusionAdd(channels))
        # skip_layer1..3: layer1..3's fused maps to the decoder widths channels_decoder[2], [1], [0]
        for i in range(1, 4):
            self.add_module(
                f"skip_layer{i}", nn.Sequential(ConvBNAct(encoder_channels[i], cfg.channels_decoder[3 - i], 1))
            )
        self.context_module = PyramidPoolingModule(encoder_channels[-1], cfg.channels_decoder[0])
        self.decoder = self.new_decoder()
        self.build_heads()
        self.register_subsets(SUBSETS)
        if weights is not None:
            _load_encoder(self.encoder_rgb, weights, cfg.pretrained)
            _load_encoder(self.encoder_depth, weights, cfg.pretrained)
        if cfg.he_init:
            self.apply_he_init()

    def new_decoder(self) -> Decoder:
        cfg = self.config
        return Decoder(cfg.channels_decoder[0], cfg.channels_decoder, cfg.nr_decoder_blocks, cfg.num_classes)

    def build_heads(self) -> None:
        """Further heads of a subclass (MMANet's auxiliary decoder); none here."""

    def apply_he_init(self) -> None:
        """ESANet's ``--he_init`` (``src/build_model.py``), over the children in registration order, skipping
        ImageNet-pretrained encoders; a conv is skipped when it has ``num_classes`` outputs, when the next module
        is a ``Sigmoid`` or when it is depthwise (``groups == in_channels``: also the 1-channel depth conv1)."""
        pretrained = self.config.pretrained is not None
        module_list = [
            m
            for child in self.children()
            if not (pretrained and isinstance(child, ResNetEncoder))
            for m in child.modules()
        ]
        for i, m in enumerate(module_list):
            if isinstance(m, nn.Conv2d | nn.Conv1d | nn.Linear):
                following = module_list[i + 1] if i + 1 < len(module_list) else None
                if (
                    getattr(m, "out_channels", getattr(m, "out_features", None)) == self.config.num_classes
                    or isinstance(following, nn.Sigmoid)
                    or getattr(m, "groups", 1) == getattr(m, "in_channels", None)
                ):
                    continue
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def branches(self) -> dict[str, nn.Module]:
        """The two encoders (``encoder_rgb`` stages 1-4 consume the fused features: see the class docstring)."""
        return {"rgb": self.encoder_rgb, "depth": self.encoder_depth}

    def feature_branches(self) -> dict[str, nn.Module]:
        """Each encoder's ``layer4`` (its deepest map, before the modality factor and ``se_layer4``)."""
        return {"rgb": self.encoder_rgb.layer4, "depth": self.encoder_depth.layer4}

    @classmethod
    def example_inputs(cls, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A 3 x 64 x 96 RGB image and a 1 x 64 x 96 depth map per sample (2 x 3 pixels at 1/32; sizes must be
        multiples of 32): fast CPU tests."""
        return {
            "rgb": torch.randn(batch, 3, 64, 96, generator=generator),
            "depth": torch.randn(batch, 1, 64, 96, generator=generator),
        }

    def check_images(self, inputs: Mapping[str, torch.Tensor], batch: int) -> None:
        """``rgb`` (B, 3, H, W) and ``depth`` (B, 1, H, W) of one size, H and W multiples of 32; batch > 1 in
        training (the PPM's 1 x 1 bin has one value per channel and sample for BatchNorm)."""
        rgb, depth = inputs["rgb"], inputs["depth"]
        for name, x, channels in (("rgb", rgb, 3), ("depth", depth, 1)):
            if x.dim() != 4 or x.shape[0] != batch or x.shape[1] != channels:
                raise ValueError(
                    f"{type(self).__name__}: input {name!r} must be (B={batch}, {channels}, H, W), got {tuple(x.shape)}"
                )
        if rgb.shape[2:] != depth.shape[2:]:
            raise ValueError(
                f"{type(self).__name__}: rgb {tuple(rgb.shape[2:])} and depth {tuple(depth.shape[2:])} differ"
            )
        if any(s % STRIDE or s < STRIDE for s in rgb.shape[2:]):
            raise ValueError(
                f"{type(self).__name__}: image sizes must be multiples of {STRIDE}, got {tuple(rgb.shape[2:])} "
                "(NYUv2: 480 x 640)"
            )
        if self.training and batch == 1:
            raise ValueError(
                f"{type(self).__name__}: training needs a batch of at least 2 (the pyramid pooling's 1 x 1 bin leaves "
                "BatchNorm one value per channel); the authors train with 8"
            )

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor | None = None) -> HostOutput:
        """Encoders with the modality factors before every fusion, context module, decoder (class docstring)."""
        present = self.check_inputs(inputs, present)
        self.check_images(inputs, present.shape[0])
        mask = present.to(inputs["rgb"].device)
        if self.training:
            mask = self.training_dropout(mask)
        encoded = self.encode_fused(inputs["rgb"], inputs["depth"], mask)
        logits, side, features = self.decoder(encoded)
        extras: dict[str, Any] = {"encoder": list(encoded[:3]), "decoder": features}
        if side is not None:
            extras["side"] = side
        extras.update(self.extra_outputs(encoded, mask, logits, side))
        return HostOutput(logits=logits, present=mask, extras=extras)

    def extra_outputs(
        self,
        encoded: Sequence[torch.Tensor],
        mask: torch.Tensor,
        logits: torch.Tensor,
        side: list[torch.Tensor] | None,
    ) -> dict[str, Any]:
        """Further outputs of a subclass (MMANet's auxiliary decoder); none here."""
        return {}

    def encode_fused(
        self, rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(out, skip3, skip2, skip1)``: MMANet's ESANet encoder pass with factors ``mask`` (B, 2).

        Before each ``se_layer{i}`` the RGB-stream and the depth features are multiplied by their factor; the fused
        map continues as the RGB stream (max-pooled after the stem), the depth stream continues unmultiplied.
        """
        # The authors' factors are float32 (``p.float()``): under autocast the factored maps are float32 as theirs.
        dtype = (
            torch.promote_types(rgb.dtype, torch.float32) if torch.is_autocast_enabled(rgb.device.type) else rgb.dtype
        )
        gates = mask.to(dtype)[:, :, None, None, None]
        g_rgb, g_depth = gates[:, 0], gates[:, 1]
        enc_rgb, enc_depth = self.encoder_rgb, self.encoder_depth
        rgb = enc_rgb.forward_first_conv(rgb)
        depth = enc_depth.forward_first_conv(depth)
        fuse = self.se_layer0(rgb * g_rgb, depth * g_depth)
        rgb, depth = enc_rgb.maxpool(fuse), enc_depth.maxpool(depth)
        skips = []
        for i in range(1, 5):
            rgb = getattr(enc_rgb, f"layer{i}")(rgb)
            depth = getattr(enc_depth, f"layer{i}")(depth)
            rgb = getattr(self, f"se_layer{i}")(rgb * g_rgb, depth * g_depth)
            if i < 4:
                skips.append(getattr(self, f"skip_layer{i}")(rgb))
        out = self.context_module(rgb)
        return out, skips[2], skips[1], skips[0]


class MMANetSegStudent(ESANetHost):
    """MMANet-seg's student (``ESANet_KD_Auxi``, ``p = [0, 0]``, ``auxi``): ESANet-MD plus ``auxi_decoder``, a second
    ESANet decoder on the same fused encoder outputs (``out``, ``skip3``, ``skip2``, ``skip1``).

    In training ``extras["auxiliary"]`` is its full-resolution logits (B, K, H, W) and ``extras["auxiliary_side"]``
    its side outputs (1/8, 1/16, 1/32): the four outputs MMANet's ``auxi_seg`` term scores on the weak
    combination's samples (``auxi_out[ii][index]`` for the four label scales). In evaluation the auxiliary decoder
    is not run (the authors' eval output is the main decoder's). Option ``auxiliary_gate``: :class:`MMANetSegConfig`.
    MMANet's trainer (weak-combination search, MAD on ``extras["encoder"]`` weighted by the teacher's
    ``extras["decoder"][2]``) belongs to the training method, not to the host.
    """

    config_class = MMANetSegConfig
    config: MMANetSegConfig

    def build_heads(self) -> None:
        self.auxi_decoder = self.new_decoder()

    def extra_outputs(
        self,
        encoded: Sequence[torch.Tensor],
        mask: torch.Tensor,
        logits: torch.Tensor,
        side: list[torch.Tensor] | None,
    ) -> dict[str, Any]:
        if not self.training:
            return {}
        if self.config.auxiliary_gate and not bool((~mask[:, 0] & mask[:, 1]).any()):
            return {"auxiliary": logits, "auxiliary_side": side}
        auxiliary, auxiliary_side, _ = self.auxi_decoder(encoded)
        return {"auxiliary": auxiliary, "auxiliary_side": auxiliary_side}


#: The authors' ``ESANet`` (MMANet's copy, ``num_classes=40``, ResNet-50 encoders, the scripts' options), counted by
#: building it: 71,733,544 -- encoder_rgb 23,508,032, encoder_depth 23,501,760 (conv1 has 1 input channel), the five
#: SE fusions 1,401,960, the skip layers 689,920, the PPM 6,296,576, the decoder 16,335,296. The paper's Table 6 gives
#: 71.69 M: see docs/nyuv2-hosts.md.
ESANET_PARAMETERS = 71_733_544
#: ``ESANet_KD_Auxi`` with ``auxi``: 88,068,840 (a second decoder of 16,335,296).
MMANET_SEG_PARAMETERS = 88_068_840
ESANET_REFERENCE = (
    "authors' ESANet-R50 (MMANet-CVPR2023 segmentation/src/models/model.py, train_missing_amp.py options, "
    "40 classes), counted by building it: 71,733,544"
)


def _build(modality_dropout: bool, name: str, cfg: dict[str, Any]) -> ESANetHost:
    if "modality_dropout" in cfg:
        raise ValueError(f"{name!r} fixes modality_dropout={modality_dropout}; build 'esanet' or 'esanet_md' instead")
    return ESANetHost(ESANetConfig(modality_dropout=modality_dropout), **cfg)


@register_model("esanet_md", parameters=ESANET_PARAMETERS, reference=ESANET_REFERENCE)
def esanet_md(**cfg: Any) -> ESANetHost:
    """ESANet-MD: ESANet-R50 with MMANet's modality dropout (``p = [0, 0]``) in training."""
    return _build(True, "esanet_md", cfg)


@register_model("esanet", parameters=ESANET_PARAMETERS, reference=ESANET_REFERENCE)
def esanet(**cfg: Any) -> ESANetHost:
    """ESANet-R50 on full modalities (``p = [1, 1]``): MMANet-seg's teacher."""
    return _build(False, "esanet", cfg)


@register_model(
    "mmanet_seg",
    parameters=MMANET_SEG_PARAMETERS,
    reference="authors' ESANet_KD_Auxi with auxi_decoder (MMANet-CVPR2023 train_missing_mmanet.py), counted by "
    "building it: 88,068,840",
)
def mmanet_seg(**cfg: Any) -> MMANetSegStudent:
    """MMANet-seg's student: ESANet-MD with the auxiliary decoder (trained by MMANet's method)."""
    if "modality_dropout" in cfg:
        raise ValueError("'mmanet_seg' always trains with modality dropout (its student is ESANet-MD)")
    return MMANetSegStudent(MMANetSegConfig(modality_dropout=True), **cfg)
