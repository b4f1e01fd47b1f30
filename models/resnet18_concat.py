"""ResNet-18 per modality with concatenation fusion ("vanilla ResNet18 + concat" of the balancing literature: OGM-GE,
AGM, LFM ... and the paper's Tables 13, 14, 17): one ResNet-18 encoder per modality, from scratch, global average
pooling to 512 features, the features concatenated in modality order, one linear classifier.

The encoders are timm's ResNet-18 (``timm.create_model("resnet18", in_chans=C, num_classes=0)``: torchvision's
architecture, conv1 with the modality's channel count, the classifier removed), imported when a host is built (timm
costs seconds to import). Missing modalities are zeroed features (the per-sample mask ``present``), applied after the
encoders, so that the 2^M - 1 subsets are evaluated with the encoders run once (``encode`` / ``fuse``).

Per-modality predictions for the plug-ins that score each modality (``HostOutput.modality_logits``, read through
``Task.modality_logits``): the concat head's slices, ``f_m W[:, slice_m]^T + b / M``, as the balancing methods' code
computes them (OGM-GE ``main.py`` l.88-93, BalanceBenchmark ``unimodality_calculate``); they sum to the fused logits.
They are not loss terms (``aux`` stays empty). ``fusion="sum"``: one linear head per modality, the fused logits
their sum (the model of the official LFM, ``model/AudioVideo.py``, and of the AGM repository's MSES / MSLR,
``AVClassifier_Sum``); each modality's logits are its own head's output.

Initialisation ``init="ogm"`` (default): OGM-GE's ``weight_init`` -- convolutions Kaiming-normal (fan_out, ReLU),
linear layers Xavier-normal with zero bias, BatchNorm 1 / 0; timm's own initialisation already does this for the
encoders, so it changes the head(s) only. ``init="timm"``: timm's and torch's defaults.

Registered without an authors' parameter count: the configuration (modalities, channels, classes) is the user's. For
two 3-channel modalities and 2 classes it has 2 x 11,176,512 + 2,050 = 22,355,074 parameters (``fusion="sum"``:
2 x 11,176,512 + 2 x 1,026 = 22,355,076).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .host import Host, HostOutput
from .registry import register_model

FEATURES = 512
FUSIONS = ("concat", "sum")
INITS = ("ogm", "timm")


def ogm_init(module: nn.Module) -> None:
    """OGM-GE's ``utils/utils.py::weight_init``: conv Kaiming-normal (fan_out, ReLU), linear Xavier-normal with zero
    bias, BatchNorm weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            nn.init.constant_(m.bias, 0.0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1.0)
            nn.init.constant_(m.bias, 0.0)


def resnet18_encoder(in_channels: int) -> nn.Module:
    """timm's ResNet-18 trunk for ``in_channels`` input channels, ending in global average pooling to (B, 512)."""
    import timm

    return timm.create_model("resnet18", pretrained=False, in_chans=in_channels, num_classes=0)


def checked_modalities(
    host: str, modalities: Sequence[str] | str, channels: int | Mapping[str, int], num_classes: int
) -> tuple[tuple[str, ...], dict[str, int]]:
    """The modalities as a tuple and the input channels per modality; ValueError naming ``host`` for distinct
    modalities missing, channels that are not positive integers (one number or one per modality), or classes < 1."""
    modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    if not modalities or len(set(modalities)) != len(modalities):
        raise ValueError(f"{host} needs distinct modalities, got {list(modalities)}")
    per_modality = dict(channels) if isinstance(channels, Mapping) else {m: channels for m in modalities}
    if set(per_modality) != set(modalities) or not all(isinstance(c, int) and c > 0 for c in per_modality.values()):
        raise ValueError(f"channels must be a positive integer or one per modality {modalities}, got {channels!r}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return modalities, per_modality


class PerModalityEncoders(Host):
    """What the ResNet-18 hosts share (``resnet18_concat``, ``resnet18_crmt``): one encoder per modality in
    ``self.encoders`` (the branches), encoded once, missing modalities zeroed after the encoders by ``present``
    (:meth:`kept`), and 32 x 32 example inputs of ``self.channels``. A subclass builds its encoders and head and
    implements ``fuse``."""

    modalities: tuple[str, ...]
    channels: dict[str, int]
    encoders: nn.ModuleDict

    def branches(self) -> dict[str, nn.Module]:
        return {m: self.encoders[m] for m in self.modalities}

    def encode(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    def kept(self, features: Mapping[str, Any], present: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each modality's features, zeroed for the samples that miss it (``present`` (B, M))."""
        return {m: features[m] * present[:, i, None].to(features[m].dtype) for i, m in enumerate(self.modalities)}

    def forward(self, inputs: Mapping[str, torch.Tensor], present: torch.Tensor | None = None) -> HostOutput:
        present = self.check_inputs(inputs, present)
        return self.fuse(self.encode(inputs), present)

    def example_inputs(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return {m: torch.randn(batch, self.channels[m], 32, 32, generator=generator) for m in self.modalities}


@register_model("resnet18_concat")
class ResNet18Concat(PerModalityEncoders):
    """One ResNet-18 per modality, concatenated features, a linear head (module docstring).

    modalities: the modalities in the data set's order (a run's ``data.modalities`` must be these); channels: input
    channels, one number for every modality or a mapping per modality; num_classes: classifier outputs; fusion:
    ``concat`` (one head on the concatenated features) or ``sum`` (one head per modality, summed); init: ``ogm``
    (OGM-GE's ``weight_init``) or ``timm``. A subclass changes the encoders through :meth:`build_encoder` (the video
    host, ``resnet18_video.py``) and the name its errors give through ``host_name``.
    """

    host_name = "resnet18_concat"

    def __init__(
        self,
        modalities: Sequence[str] = ("rgb", "depth"),
        channels: int | Mapping[str, int] = 3,
        num_classes: int = 2,
        fusion: str = "concat",
        init: str = "ogm",
    ) -> None:
        super().__init__()
        modalities, per_modality = checked_modalities(self.host_name, modalities, channels, num_classes)
        if fusion not in FUSIONS or init not in INITS:
            raise ValueError(f"fusion must be one of {FUSIONS} and init one of {INITS}, got {fusion!r}, {init!r}")
        self.modalities = modalities
        self.channels = per_modality
        self.fusion = fusion
        self.encoders = nn.ModuleDict({m: self.build_encoder(per_modality[m]) for m in modalities})
        if fusion == "concat":
            self.head = nn.Linear(FEATURES * len(modalities), num_classes)
        else:
            self.heads = nn.ModuleDict({m: nn.Linear(FEATURES, num_classes) for m in modalities})
        if init == "ogm":
            ogm_init(self)

    def build_encoder(self, channels: int) -> nn.Module:
        """A modality's encoder for ``channels`` input channels, giving (B, 512) features: timm's ResNet-18."""
        return resnet18_encoder(channels)

    def fuse(self, features: Mapping[str, Any], present: torch.Tensor) -> HostOutput:
        kept = self.kept(features, present)
        if self.fusion == "sum":
            slices = {m: self.heads[m](kept[m]) for m in self.modalities}
            logits = torch.stack(list(slices.values())).sum(0)
            return HostOutput(logits, features=kept, present=present, modality_logits=slices)
        logits = self.head(torch.cat([kept[m] for m in self.modalities], dim=1))
        weight, bias, count = self.head.weight, self.head.bias, len(self.modalities)
        slices = {
            m: kept[m] @ weight[:, i * FEATURES : (i + 1) * FEATURES].T + bias / count
            for i, m in enumerate(self.modalities)
        }
        return HostOutput(logits, features=kept, present=present, modality_logits=slices)
