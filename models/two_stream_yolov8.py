"""Registration of the two-stream YOLOv8n (Table 12, ``T-yolov8n``), trained by the ultralytics runner.

The network lives in :mod:`models.yolo.two_stream` (an ultralytics ``DetectionModel`` subclass); this module
imports neither ultralytics nor the network until the host is built, so ``import mwam_harness.models`` stays light.
"""

from __future__ import annotations

from torch import nn

from .registry import register_model

#: Two YOLOv8n backbones (1,272,656 parameters each) and the YOLOv8n neck + head for 5 classes (1,739,167): the
#: layers of the fork's ADDyolov8n.yaml (its ADD blocks have no parameters). No count is published; this is ours.
PARAMETERS = 4_284_479


@register_model(
    "two_stream_yolov8n",
    parameters=PARAMETERS,
    reference=(
        "counted: the layers of mujianyu/TwoStream_Yolov8 yaml/ADDyolov8n.yaml with nc=5 (two YOLOv8n backbones, "
        "parameter-free ADD fusion, YOLOv8n head); the paper gives no count"
    ),
    runner="ultralytics",
)
def two_stream_yolov8n(
    nc: int = 5, absent: str = "features", cfg: str = "yolov8n.yaml", verbose: bool = False
) -> nn.Module:
    """The two-stream YOLOv8n for ``nc`` classes; ``absent``: ``features`` (zeroed at the fusion points) or
    ``input`` (a black image), see :mod:`models.yolo.two_stream`."""
    from .yolo.two_stream import TwoStreamDetectionModel  # sets ultralytics offline before importing it

    return TwoStreamDetectionModel(cfg, ch=6, nc=nc, verbose=verbose, absent=absent)
