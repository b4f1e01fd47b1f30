"""The PC2f-MPF two-stream YOLOv8n: the network the authors' fork trains (mujianyu/TwoStream_Yolov8, ``train.py``
line 4 loads ``yaml/PC2f_MPF_yolov8n.yaml``), rebuilt here from a reading of the fork's code (HEAD 79d346b7).

What the fork's yaml and code give (file:line of the fork):

- ``yaml/PC2f_MPF_yolov8n.yaml`` lines 18-21 / 33-34 / 44-45 / 55-56: the RGB stream, YOLOv8n layers 0-9 exactly
  (Conv, Conv, C2f, Conv, C2f, Conv, C2f, Conv, C2f, SPPF at width 0.25, depth 0.33).
- lines 24-27 / 37-38 / 48-49 / 59-60: the IR stream, the same layers with every ``C2f`` replaced by
  ``C2f_Faster`` (the "PC2f": a C2f whose bottlenecks are FasterNet blocks built on a partial convolution).
- lines 30 / 41 / 52: ``RIFusion`` ("MPF") after each stage pair. At HEAD, ``ultralytics/nn/modules/block.py``
  lines 2930-2936 define it as a module without parameters whose ``forward`` returns its input, and
  ``ultralytics/nn/tasks.py`` lines 210-215 (``_predict_once``) only run a ``from=-3`` layer that has parameters:
  the MPF layers do nothing. (Until commit c50d8425, 2024-09-30, ``RIFusion`` was an SE-style cross-modal
  re-weighting with two bias-free linear layers, 43,008 parameters over the three layers at this scale; that
  version is not the fork's code now and is not rebuilt.)
- lines 63-65: ``ADD`` (``block.py`` 1604-1613, a parameter-free sum) of the two streams after the P3 C2f, the P4
  C2f and the SPPF; lines 69-85: the YOLOv8n head (PAN + ``Detect``), unchanged.
- ``tasks.py`` 962 / 1026-1031: the ``from=-4`` layers (each stream's first layer after a switch) take their input
  channels from the hard-coded ``tx=[3,256,256,512,512,1024,1024]`` (times the width 0.25 after the first), which
  are exactly the channels of the stream they continue; ``tasks.py`` 153 / 200-222 run them on the other stream
  (``torch.chunk(x, 2)``: channels 0-2 RGB, 3-5 IR).

So the network is the plain-add two-stream YOLOv8n of :mod:`models.yolo.two_stream` with the IR backbone's four
C2f layers (YOLOv8n layers 2, 4, 6, 8) replaced by :class:`PC2f` -- 442,512 parameters fewer, 3,841,967 for five
classes. :class:`PC2fMPFDetectionModel` subclasses :class:`~mwam_harness.models.yolo.two_stream.TwoStreamDetectionModel`
and swaps those layers after it is built, so the fusion, the missing-modality rules (``absent``), ``branches()``
(MWAM), ``feature_branches()`` (SDE), loss terms, pickling and ``fuse()`` are the parent's.
"""

from __future__ import annotations

import torch
from torch import nn

from .offline import ultralytics_offline

ultralytics_offline()  # before ultralytics' first import where this module is the first to import it

from ultralytics.nn.modules import C2f, Conv  # noqa: E402
from ultralytics.utils.torch_utils import initialize_weights  # noqa: E402

from .two_stream import TwoStreamDetectionModel  # noqa: E402

#: The YOLOv8 backbone layers that hold a C2f (the P2, P3, P4 and P5 stages): PC2f in the fork's IR stream.
IR_PC2F_LAYERS: tuple[int, ...] = (2, 4, 6, 8)
#: The fork's ``n_div``: the partial convolution mixes one quarter of the channels (block.py 2080-2082).
PARTIAL_DIVISOR = 4


class PartialConv(nn.Module):
    """FasterNet's partial convolution, as the fork's ``Partial_conv3`` (block.py 2079-2107, ``split_cat``): a
    bias-free 3x3 convolution over the first ``dim // n_div`` channels; the other channels pass unchanged."""

    def __init__(self, dim: int, n_div: int = PARTIAL_DIVISOR) -> None:
        super().__init__()
        self.dim_conv3 = dim // n_div
        self.dim_untouched = dim - self.dim_conv3
        self.partial_conv3 = nn.Conv2d(self.dim_conv3, self.dim_conv3, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed, kept = torch.split(x, [self.dim_conv3, self.dim_untouched], dim=1)
        return torch.cat((self.partial_conv3(mixed), kept), 1)


class FasterBlock(nn.Module):
    """The fork's ``Faster_Block`` (block.py 2110-2159) as it runs: the partial convolution, then a 1x1 ultralytics
    ``Conv`` (convolution, BatchNorm, SiLU) with ``mlp_ratio`` 1; no residual, no drop path (both commented out
    there, lines 2124 and 2154-2157). Sub-module names and order follow the fork (``mlp`` first), so its state-dict keys
    are the fork's."""

    def __init__(self, dim: int, n_div: int = PARTIAL_DIVISOR) -> None:
        super().__init__()
        self.mlp = nn.Sequential(Conv(dim, dim, 1))
        self.spatial_mixing = PartialConv(dim, n_div)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.spatial_mixing(x))


class PC2f(C2f):
    """The fork's ``C2f_Faster`` (block.py 2169-2172): ultralytics' C2f (``cv1`` 1x1 to 2c channels, split, ``n``
    blocks on the last half, concatenation, ``cv2`` 1x1; block.py 1281-1298) with :class:`FasterBlock` (c -> c) as
    its blocks. ``C2f.forward`` / ``forward_split`` run it; no bottleneck is built first, so none is discarded."""

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5) -> None:
        nn.Module.__init__(self)
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(FasterBlock(self.c) for _ in range(n))


class PC2fMPFDetectionModel(TwoStreamDetectionModel):
    """The two-stream YOLOv8 of the fork's ``PC2f_MPF_yolov8n.yaml``: :class:`TwoStreamDetectionModel` (RGB and IR
    backbones summed at P3 / P4 / P5, the YOLOv8 head) whose IR backbone has :class:`PC2f` in place of each C2f
    (layers 2, 4, 6, 8; module docstring). Arguments as the parent's."""

    def __init__(
        self,
        cfg: str | dict = "yolov8n.yaml",
        ch: int = 6,
        nc: int | None = None,
        verbose: bool = True,
        absent: str = "features",
    ) -> None:
        super().__init__(cfg, ch=ch, nc=nc, verbose=False, absent=absent)
        for index in IR_PC2F_LAYERS:
            old = self.ir_backbone[index]
            if type(old) is not C2f:
                raise ValueError(f"{cfg!r}: backbone layer {index} is {type(old).__name__}, not the C2f of YOLOv8")
            new = PC2f(old.cv1.conv.in_channels, old.cv2.conv.out_channels, n=len(old.m))
            new.i, new.f, new.type = old.i, old.f, f"{PC2f.__module__}.{PC2f.__name__}"  # ultralytics' layer tags
            new.np = sum(p.numel() for p in new.parameters())
            self.ir_backbone[index] = new
        initialize_weights(self.ir_backbone)  # ultralytics' BatchNorm eps / momentum on the new layers
        if verbose:
            self.info()
