"""Table 12's figures (reproduce/yolo/figures.py): an empty precision-recall curve is said on its panel, never a
silent blank; the detections figure has a legend of the classes and of the ground truth."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from reproduce.yolo import figures

CLASSES = ("car", "truck", "bus", "van", "freight car")


@pytest.fixture
def captured(monkeypatch):
    saved = []
    monkeypatch.setattr(figures, "_save", lambda figure, stem: saved.append(figure) or [stem])
    return saved


def run_dir(tmp_path, column, curves, image=None):
    folder = tmp_path / column
    entry = {"synthetic": True, "device": "cpu", "subsets": {}}
    for key, precision in curves.items():
        (folder / "eval" / key).mkdir(parents=True)
        curve = {"recall": [0.0, 0.5, 1.0], "precision": {"0": precision} if precision else {}}
        (folder / "eval" / key / "pr_curve.json").write_text(json.dumps(curve))
        entry["subsets"][key] = {"map50": 0.5 if precision else 0.0}
        if image is not None:
            item = {"im_file": str(image), "gt_boxes": [[2, 2, 10, 10]], "boxes": [[3, 3, 11, 11]], "scores": [0.9],
                    "labels": [1]}  # fmt: skip
            (folder / "eval" / key / "detections.json").write_text(json.dumps([item]))
    return column, folder, entry


def test_an_empty_curve_is_named_on_its_panel(tmp_path, captured):
    full = {"rgb": [1.0, 0.8, 0.5], "ir": [1.0, 0.9, 0.6], "rgb+ir": [1.0, 0.9, 0.7]}
    columns = [run_dir(tmp_path, "T-yolov8n", {**full, "rgb": []}), run_dir(tmp_path, "T-yolov8n +MWAM", full)]
    figures.plot_pr_curves(columns, "dronevehicle", tmp_path / "pr")
    (figure,) = captured
    panels = {ax.get_title(): ax for ax in figure.axes}
    notes = {title: " ".join(t.get_text() for t in ax.texts) for title, ax in panels.items()}
    assert "T-yolov8n: no detections (mAP50 0.000)" in notes["RGB"]
    assert len(panels["RGB"].get_lines()) == 1 and not notes["IR"]
    assert "synthetic" in figure._suptitle.get_text()


def test_the_detections_figure_has_a_class_and_ground_truth_legend(tmp_path, captured):
    image = tmp_path / "images" / "test" / "a.jpg"  # the layout's RGB folder; the IR twin under image/test
    for path in (image, tmp_path / "image" / "test" / "a.jpg"):
        path.parent.mkdir(parents=True)
        cv2.imwrite(str(path), np.full((16, 16, 3), 90, np.uint8))
    curves = {key: [1.0, 0.5, 0.2] for key in ("rgb", "ir", "rgb+ir")}
    columns = [run_dir(tmp_path, "T-yolov8n", curves, image)]
    figures.plot_detections(columns, "dronevehicle", tmp_path / "det", CLASSES, images=1)
    (figure,) = captured
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [*CLASSES, "ground truth"]
    assert "confidence >= 0.25" in legend.get_title().get_text()
