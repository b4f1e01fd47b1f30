"""Ultralytics' ``DetectionValidator`` on the 6-channel RGB+IR data set, with a second mAP50 on the same
predictions and the detections of the first images kept for figures.

Use it wherever ultralytics validates the two-stream model: the trainer's per-epoch validation
(``TwoStreamDetectionTrainer.get_validator``), :func:`reproduce.yolo.evaluation.evaluate_subsets`, and standalone
``YOLO("model.pt").val(data=..., validator=TwoStreamDetectionValidator)``.

``map50_coco`` is :class:`reproduce.metrics.detection.MeanAP50` (COCO's 101-point AP at IoU 0.5) fed exactly the
boxes ultralytics' metric sees (NMS output and targets, both in the letterboxed frame, where IoU is the same as in
the original image up to rounding); the two differ by design (ultralytics integrates the interpolated curve with
the trapezoid rule after appending (1, 0) and matches IoU-greedily at each threshold), and the test suite checks
them, and pycocotools, against each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mwam_harness.models.yolo.offline import ultralytics_offline

ultralytics_offline()

from ultralytics.models.yolo.detect import DetectionValidator  # noqa: E402
from ultralytics.utils import ops  # noqa: E402

from reproduce.metrics.detection import MeanAP50  # noqa: E402

#: Ultralytics' result keys and the names they get in the registry (fractions in [0, 1]).
RESULT_KEYS = {
    "metrics/mAP50(B)": "map50",
    "metrics/mAP50-95(B)": "map50_95",
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
}


class TwoStreamDetectionValidator(DetectionValidator):
    """``DetectionValidator`` reading RGB+IR pairs; ``keep_images``: how many images' detections (original pixel
    coordinates, every detection above ``conf``) and targets to keep in ``kept`` for figures; ``hsv`` is the data
    set option (validation does not augment, so it changes nothing here, but a data set is built the same way)."""

    def __init__(
        self,
        dataloader: Any = None,
        save_dir: Path | None = None,
        args: Any = None,
        _callbacks: dict | None = None,
        keep_images: int = 0,
        hsv: str = "rgb",
    ) -> None:
        super().__init__(dataloader, save_dir, args, _callbacks)
        self.keep_images = keep_images
        self.hsv = hsv
        self.coco_map = MeanAP50()
        self.kept: list[dict[str, Any]] = []

    def build_dataset(self, img_path: str, mode: str = "val", batch: int | None = None) -> Any:
        from mwam_harness.datasets.dronevehicle.loader import build_two_stream_dataset

        return build_two_stream_dataset(
            self.args,
            img_path,
            batch,
            self.data,
            mode=mode,
            rect=bool(self.args.rect),
            stride=self.stride,
            hsv=self.hsv,
        )

    def init_metrics(self, model: Any) -> None:
        super().init_metrics(model)
        self.coco_map = MeanAP50()
        self.kept = []

    def _process_batch(self, preds: dict[str, Any], batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """Ultralytics' matching of one image's predictions and targets (``update_metrics`` calls it once per image
        with both prepared), which also feeds the second mAP50 and the kept detections."""
        self.coco_map.update(
            [{"boxes": preds["bboxes"], "scores": preds["conf"], "labels": preds["cls"]}],
            [{"boxes": batch["bboxes"], "labels": batch["cls"]}],
        )
        if len(self.kept) < self.keep_images:
            self.kept.append(self._original_frame(preds, batch))
        return super()._process_batch(preds, batch)

    def _original_frame(self, pred: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
        """One image's detections and targets in its original pixel coordinates (xyxy)."""
        shape, ratio_pad = target["ori_shape"], target["ratio_pad"]
        boxes = ops.scale_boxes(target["imgsz"], pred["bboxes"].clone(), shape, ratio_pad=ratio_pad)
        gt = ops.scale_boxes(target["imgsz"], target["bboxes"].clone(), shape, ratio_pad=ratio_pad)
        return {
            "im_file": str(target["im_file"]),
            "shape": [int(s) for s in shape],
            "boxes": np.round(boxes.cpu().numpy().astype(float), 2).tolist(),
            "scores": np.round(pred["conf"].cpu().numpy().astype(float), 6).tolist(),
            "labels": pred["cls"].cpu().numpy().astype(int).tolist(),
            "gt_boxes": np.round(gt.cpu().numpy().astype(float), 2).tolist(),
            "gt_labels": target["cls"].cpu().numpy().astype(int).tolist(),
        }

    def results(self, stats: dict[str, Any]) -> dict[str, float]:
        """The registry's metrics from ``stats`` (what ``__call__`` returned) and the second mAP50."""
        values = {name: float(stats[key]) for key, name in RESULT_KEYS.items() if key in stats}
        values["map50_coco"] = float(self.coco_map.compute()["map50"])
        return values

    def pr_curve(self) -> dict[str, Any]:
        """The precision-recall curve at IoU 0.5 of the last validation: recall grid, per-class precision, AP50."""
        box = self.metrics.box
        precision = np.asarray(box.prec_values, dtype=float)
        return {
            "recall": np.round(np.asarray(box.px, dtype=float)[::10], 4).tolist(),
            "precision": {
                self.names[int(c)]: np.round(precision[i][::10], 4).tolist() for i, c in enumerate(box.ap_class_index)
            },
            "ap50": {self.names[int(c)]: float(box.ap50[i]) for i, c in enumerate(box.ap_class_index)},
        }
