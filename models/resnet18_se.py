"""ResNet-18 with squeeze-and-excitation: the building blocks of the CASIA-SURF baseline (SF / SF-MD).

Facts from the authors' ``models/resnet18_se.py`` (MMANet / MWAM code): conv1 is 3x3 / stride 2 / padding 1 (not
ResNet's 7x7), then BN, ReLU, 3x3 / stride 2 max pool, ``layer1`` (64), ``layer2`` (128, stride 2) and an
``SELayer(128, reduction 16)``; the multimodal trunk is ``layer3_new`` (384 -> 256, stride 2), ``layer4``
(512, stride 2), global average pool and ``fc`` (512 -> classes). Trained from scratch: convolutions get Kaiming-normal
(fan_out, ReLU) weights, BatchNorm weight 1 / bias 0, linear layers keep PyTorch's default init; no zero-init of the
residual BN. The authors' ``Dropout(0.5)`` after ``fc`` is defined but never applied, so it is left out.

The module layout (``nn.Sequential`` indices, attribute names) reproduces the authors' ``state_dict`` keys, so
their SURF checkpoints load into :func:`special_bone` / :func:`shared_bone` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "SELayer", "init_weights", "make_layer", "shared_bone", "special_bone"]


class SELayer(nn.Module):
    """Squeeze-and-excitation: rescale channels by sigmoid(MLP(global average pool))."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if channels // reduction < 1:
            raise ValueError(f"SELayer: reduction {reduction} leaves no hidden units for {channels} channels")
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc(self.avg_pool(x).flatten(1))
        return x * scale[:, :, None, None]


class BasicBlock(nn.Module):
    """The ResNet basic block: two 3x3 conv-BN pairs with an identity (or 1x1 conv-BN) shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def make_layer(inplanes: int, planes: int, blocks: int = 2, stride: int = 1) -> nn.Sequential:
    """A ResNet stage of ``blocks`` basic blocks; the first one carries the stride / channel change."""
    layers = [BasicBlock(inplanes, planes, stride)]
    layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def init_weights(module: nn.Module) -> nn.Module:
    """The authors' init: Kaiming-normal (fan_out, ReLU) convolutions, BN weight 1 / bias 0; returns ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return module


def special_bone(in_channels: int = 3, se_reduction: int = 16) -> nn.Sequential:
    """One modality's branch: conv1 (3x3/2), BN, ReLU, max pool, layer1, layer2, SE -> 128 channels at 1/8 size."""
    bone = nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
        make_layer(64, 64, 2),
        make_layer(64, 128, 2, stride=2),
        SELayer(128, se_reduction),
    )
    return init_weights(bone)


def shared_bone(in_channels: int = 384, num_classes: int = 2) -> nn.Sequential:
    """The fused trunk: layer3_new (in -> 256, /2), layer4 (512, /2), global average pool, flatten, fc -> logits."""
    bone = nn.Sequential(
        make_layer(in_channels, 256, 2, stride=2),
        make_layer(256, 512, 2, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(512, num_classes),
    )
    return init_weights(bone)
