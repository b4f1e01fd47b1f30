"""Registration of the PC2f-MPF two-stream YOLOv8n, the network the authors' fork trains (its ``train.py`` loads
``yaml/PC2f_MPF_yolov8n.yaml``), trained by the ultralytics runner.

The network lives in :mod:`models.yolo.pc2f_mpf` (a subclass of the plain-add two-stream model); this module
imports neither ultralytics nor the network until the host is built, so ``import mwam_harness.models`` stays light.
"""

from __future__ import annotations

from torch import nn

from .registry import register_model

#: The plain-add model's 4,284,479 less 442,512: the IR backbone's four C2f (layers 2 / 4 / 6 / 8: 7,360 / 49,664 /
#: 197,632 / 460,288 parameters) are PC2f (3,120 / 15,872 / 62,720 / 190,720), so the IR backbone has 830,144 and
#: the RGB one 1,272,656; the MPF (RIFusion) and ADD layers have no parameters at the fork's HEAD. No count is
#: published; this is ours, equal to the one read in an earlier review of the fork.
PARAMETERS = 3_841_967


@register_model(
    "two_stream_yolov8n_pc2f_mpf",
    parameters=PARAMETERS,
    reference=(
        "counted: the layers of mujianyu/TwoStream_Yolov8 yaml/PC2f_MPF_yolov8n.yaml (the model its train.py "
        "trains) with nc=5 -- two YOLOv8n backbones, C2f_Faster in the IR one, parameter-free RIFusion and ADD, "
        "YOLOv8n head; the paper gives no count"
    ),
    runner="ultralytics",
)
def two_stream_yolov8n_pc2f_mpf(
    nc: int = 5, absent: str = "features", cfg: str = "yolov8n.yaml", verbose: bool = False
) -> nn.Module:
    """The PC2f-MPF two-stream YOLOv8n for ``nc`` classes; ``absent``: ``features`` (zeroed at the fusion points)
    or ``input`` (a black image), as :mod:`models.yolo.two_stream`."""
    from .yolo.pc2f_mpf import PC2fMPFDetectionModel  # sets ultralytics offline before importing it

    return PC2fMPFDetectionModel(cfg, ch=6, nc=nc, verbose=verbose, absent=absent)
