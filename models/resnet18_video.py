"""ResNet-18 per modality on video clips with concatenation fusion: the UCF-101 RGB + optical-flow model of Table 11
(BalanceBenchmark's, ``models/resnet_arch.py`` l.75-86 and l.139-143; ``../shared/notes/more-host-facts.md`` §2).

``resnet18_concat`` with a time axis. Each modality's input is a clip (B, C, T, H, W) -- channels before time, as
MWAM's ``video`` layout and torchvision's video models take it -- whose T frames are folded into the batch for the
2-D ResNet-18 (timm's, conv1 with the modality's channels: 3 for RGB, 2 for the flow's u / v), each frame pooled
over space to 512 and the T frame features averaged. Every frame has the same h x w feature map, so the mean over
time of the spatial means is exactly BalanceBenchmark's 3-D average pooling over T x h x w of the (B, 512, T, h, w)
map (``tests/test_resnet18_video.py`` shows it). Then, as ``resnet18_concat``: the features concatenated in
modality order and ``Linear(512·M, classes)`` (``fusion="sum"``: one head per modality, summed), OGM-GE's
initialisation, missing modalities as zeroed features after the encoders (``encode`` / ``fuse``), and the
per-modality logits OGM-GE and LFM score (the concat head's slices ``f_m W[:, slice_m]^T + b / M``, summing to the
fused logits).

MWAM reads both inputs as ``video`` (:meth:`ResNet18ConcatVideo.input_layouts`, which the MWAM plug-in passes on):
each frame is cut into p x p patches, not the clip into p x p x p cubes.

Parameters (default: video 3 channels, flow 2, 101 classes), counted by building: video encoder 11,176,512, flow
encoder 11,173,376 (conv1 has 64 x 1 x 7 x 7 = 3,136 weights fewer), head 1,024 x 101 + 101 = 103,525; in all
22,453,413 (``fusion="sum"``: two heads of 512 x 101 + 101, 22,453,514).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import torch
from torch import nn

from .registry import register_model
from .resnet18_concat import ResNet18Concat

#: The default input channels: RGB frames and the two flow components (u, v).
VIDEO_CHANNELS: Mapping[str, int] = MappingProxyType({"video": 3, "flow": 2})
PARAMETERS = 22_453_413


class FramePooled(nn.Module):
    """A 2-D image encoder ending in global average pooling, applied to every frame of a (B, C, T, H, W) clip (the
    frames folded into the batch: one call of ``trunk``), the (B, T, F) frame features averaged over time to (B, F)."""

    def __init__(self, trunk: nn.Module, channels: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.channels = channels

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.ndim != 5 or clip.shape[1] != self.channels:
            raise ValueError(
                f"expected a clip (B, C={self.channels}, T, H, W), channels before time; got shape {tuple(clip.shape)}"
                " (for (B, T, C, H, W) pass x.transpose(1, 2))"
            )
        batch, channels, frames = clip.shape[:3]
        folded = clip.transpose(1, 2).reshape(batch * frames, channels, *clip.shape[3:])
        return self.trunk(folded).view(batch, frames, -1).mean(dim=1)


@register_model(
    "resnet18_concat_video",
    parameters=PARAMETERS,
    reference=(
        "BalanceBenchmark's UCF-101 model (models/resnet_arch.py l.75-86, l.139-143): ResNet-18 with a 3-channel conv1 "
        "(RGB) and one with a 2-channel conv1 (flow), Linear(1024, 101); counted by building (module docstring)"
    ),
)
class ResNet18ConcatVideo(ResNet18Concat):
    """``resnet18_concat`` on clips (B, C, T, H, W): frames folded into the batch, features averaged over time
    (module docstring).

    modalities: the modalities in the data set's order (default video, then flow); channels: input channels, one
    number for every modality or a mapping per modality (default video 3, flow 2); num_classes: classifier outputs
    (UCF-101: 101); fusion: ``concat`` or ``sum``; init: ``ogm`` or ``timm`` (as ``resnet18_concat``).
    """

    host_name = "resnet18_concat_video"
    #: frames of the clips :meth:`example_inputs` gives
    example_frames = 2

    def __init__(
        self,
        modalities: Sequence[str] = ("video", "flow"),
        channels: int | Mapping[str, int] = VIDEO_CHANNELS,
        num_classes: int = 101,
        fusion: str = "concat",
        init: str = "ogm",
    ) -> None:
        super().__init__(modalities, channels, num_classes, fusion, init)

    def build_encoder(self, channels: int) -> nn.Module:
        return FramePooled(super().build_encoder(channels), channels)

    def input_layouts(self) -> dict[str, str]:
        """Every modality is a clip (B, C, T, H, W): MWAM's ``video`` layout."""
        return {m: "video" for m in self.modalities}

    def example_inputs(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        frames = self.example_frames
        return {m: torch.randn(batch, self.channels[m], frames, 32, 32, generator=generator) for m in self.modalities}
