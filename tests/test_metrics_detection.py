import contextlib
import io
import math

import numpy as np
import pytest
import torch

from reproduce.metrics import MeanAP50, average_precision, box_iou


def pred(boxes, scores, labels) -> dict[str, torch.Tensor]:
    return {
        "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.as_tensor(scores, dtype=torch.float32),
        "labels": torch.as_tensor(labels, dtype=torch.long),
    }


def gt(boxes, labels) -> dict[str, torch.Tensor]:
    return {"boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.as_tensor(labels)}


IMAGE_1 = gt([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])
IMAGE_2 = gt([[5, 5, 15, 25]], [0])


def test_box_iou():
    iou = box_iou(np.array([[0, 0, 2, 2]], float), np.array([[0, 0, 2, 1], [1, 1, 3, 3], [5, 5, 6, 6]], float))
    assert iou.shape == (1, 3) and iou[0].tolist() == pytest.approx([0.5, 1 / 7, 0.0])


def test_perfect_predictions_score_one():
    metric = MeanAP50()
    metric.update(
        [pred(IMAGE_1["boxes"], [0.9, 0.8], [0, 1]), pred(IMAGE_2["boxes"], [0.7], [0])],
        [IMAGE_1, IMAGE_2],
    )
    assert metric.compute() == {"map50": 1.0}  # ultralytics' trapezoid rule would give 0.995 here


def test_no_predictions_score_zero():
    metric = MeanAP50()
    metric.update([pred([], [], []), pred([], [], [])], [IMAGE_1, IMAGE_2])
    assert metric.compute() == {"map50": 0.0}
    assert (metric.primary, metric.display_name) == ("map50", "mAP50")


def test_known_partial_case():
    # One class, 3 GT boxes; ranked detections: TP (0.9), FP (0.8), TP (0.7); one GT never found.
    # recall 1/3, 1/3, 2/3; monotone precision 1, 2/3, 2/3.
    # 101-point sampling: r in 0.00..0.33 (34 points) -> 1, r in 0.34..0.66 (33 points) -> 2/3, rest (34) -> 0.
    target = gt([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [0, 0, 0])
    detections = pred([[0, 0, 10, 10], [100, 100, 110, 110], [20, 0, 30, 10]], [0.9, 0.8, 0.7], [0, 0, 0])
    metric = MeanAP50()
    metric.update([detections], [target])
    assert metric.compute()["map50"] == pytest.approx((34 + 33 * 2 / 3) / 101)
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 3) == pytest.approx(56 / 101)


def test_iou_threshold_duplicates_and_classes():
    # IoU exactly 0.5 matches (>=), a duplicate on a matched box is a false positive, the wrong class never matches.
    target = gt([[0, 0, 2, 2], [10, 10, 12, 12]], [0, 1])
    detections = pred(
        [[0, 0, 2, 1], [0, 0, 2, 2], [10, 10, 12, 12], [10, 10, 11, 11]],
        [0.6, 0.9, 0.8, 0.95],
        [0, 0, 0, 1],  # det 2 has class 0 on the class-1 box; det 3 (IoU 0.25) misses the class-1 box
    )
    metric = MeanAP50()
    metric.update([detections], [target])
    # class 0: ranked 0.9 TP, 0.8 FP (wrong class box), 0.6 duplicate -> FP: AP 1. class 1: one FP -> AP 0.
    assert metric.ap_per_class() == {0: 1.0, 1: 0.0}
    assert metric.compute()["map50"] == 0.5
    strict = MeanAP50(iou_threshold=0.51)
    strict.update([pred([[0, 0, 2, 1]], [0.9], [0])], [gt([[0, 0, 2, 2]], [0])])
    assert strict.compute()["map50"] == 0.0


def test_ranking_across_images_and_classes_without_ground_truth():
    # A confident false positive in image 2 ranks first: precision 0, 1/2 -> monotone 1/2, 1/2; recall reaches 1.
    metric = MeanAP50()
    metric.update([pred([[0, 0, 10, 10]], [0.5], [0])], [gt([[0, 0, 10, 10]], [0])])
    metric.update([pred([[50, 50, 60, 60], [0, 0, 5, 5]], [0.9, 0.99], [0, 7])], [gt([], [])])
    assert metric.ap_per_class() == {0: pytest.approx(0.5)}  # class 7 has no ground truth: ignored
    assert metric.compute()["map50"] == pytest.approx(0.5)


def test_no_ground_truth_is_nan_and_reset():
    metric = MeanAP50()
    assert math.isnan(metric.compute()["map50"])
    metric.update([pred([[0, 0, 1, 1]], [0.9], [0])], [gt([], [])])
    assert math.isnan(metric.compute()["map50"])
    metric.update([pred([], [], [])], [IMAGE_2])
    assert metric.compute()["map50"] == 0.0
    metric.reset()
    assert math.isnan(metric.compute()["map50"])
    with pytest.raises(ValueError, match="images"):
        metric.update([pred([], [], [])], [])


def test_random_case_against_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    images, annotations, results = [], [], []
    metric = MeanAP50()
    for image_id in range(1, 9):
        n_gt, n_det = rng.integers(0, 6), rng.integers(0, 9)
        xy = rng.uniform(0, 80, (n_gt, 2))
        gt_boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (n_gt, 2))], 1)
        gt_labels = rng.integers(1, 4, n_gt)
        # detections: jittered GT boxes (some reach IoU 0.5, some not) with random labels; random boxes if no GT
        src = gt_boxes[rng.integers(0, max(n_gt, 1), n_det)] if n_gt else rng.uniform(0, 80, (n_det, 4))
        det_boxes = np.sort((src + rng.normal(0, 4, (n_det, 4))).reshape(n_det, 2, 2), axis=1).reshape(n_det, 4)
        det_scores = rng.uniform(0, 1, n_det)
        det_labels = gt_labels[rng.integers(0, max(n_gt, 1), n_det)] if n_gt else rng.integers(1, 4, n_det)
        images.append({"id": image_id, "width": 200, "height": 200})
        for box, label in zip(gt_boxes, gt_labels, strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for box, score, label in zip(det_boxes, det_scores, det_labels, strict=True):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(label),
                    "score": float(score),
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                }
            )
        metric.update([pred(det_boxes, det_scores, det_labels)], [gt(gt_boxes, gt_labels)])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in (1, 2, 3)]}
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert 0.0 < metric.compute()["map50"] < 1.0
    assert metric.compute()["map50"] == pytest.approx(evaluation.stats[1], abs=1e-6)  # AP at IoU 0.5
