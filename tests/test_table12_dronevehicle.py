"""Table 12 end to end on a tiny synthetic DroneVehicle through pip ultralytics: both columns trained by the
ultralytics runner, three rows of mAP50 / PCR beside the paper's, the registry entries, the figures (Fig. 6 / 7),
the logs; an interrupted run resumed at its epoch boundary; and ultralytics' mAP50 cross-checked against the
repository's MeanAP50 and pycocotools on the same predictions."""

import csv
import json

import numpy as np
import pytest
import torch

from reproduce.experiments import run_table
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.tables.specs import table_runs

RUNTIME = Runtime(device="cpu", progress=False, wandb="disabled", log_every=1)
SUBSETS = ("rgb", "ir", "rgb+ir")


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
def test_table12_trains_both_columns_through_ultralytics_and_renders_three_rows(tmp_path, monkeypatch):
    from ultralytics.nn.tasks import load_checkpoint

    from mwam_harness.models.yolo.two_stream import TwoStreamDetectionModel

    seen = []  # the modality set of every forward pass outside training: each subset must reach the validator
    fused_features = TwoStreamDetectionModel.fused_features

    def spy(self, x):
        if not self.training:
            seen.append(self.present)
        return fused_features(self, x)

    monkeypatch.setattr(TwoStreamDetectionModel, "fused_features", spy)
    out = tmp_path / "out"
    written = run_table(12, "smoke", runtime=RUNTIME, output_dir=out, results_dir=tmp_path / "results")
    assert {(True, False), (False, True), (True, True)} <= set(seen)
    names = {p.name for p in written}
    assert {"table12.md", "table12_vs_paper.md", "table12_pr_curves.png", "table12_detections.png"} <= names
    text = (out / "table12.md").read_text()
    assert "SYNTHETIC" in text and "T-yolov8n" in text and "T-yolov8n +MWAM" in text
    rows = [line for line in text.splitlines() if line.startswith("| ●") or line.startswith("| ○")]
    assert len(rows) == 3  # RGB, IR, RGB+IR
    assert "0.215" in (out / "table12_vs_paper.md").read_text()  # the paper's RGB row beside ours

    import mwam_harness.datasets.dronevehicle as dronevehicle
    from reproduce.paths import results_root_set_to

    with_mwam = None
    with results_root_set_to(tmp_path / "results"):
        registry = Registry()
        configs = table_runs(12).configs(None, dronevehicle.PRESETS["smoke"], runtime=RUNTIME)
        for config, _ in configs:
            entry = registry.load(config)
            assert entry["metric"] == "mAP50" and entry["primary"] == "map50" and entry["synthetic"] is True
            assert tuple(entry["subsets"]) == SUBSETS
            for values in entry["subsets"].values():
                assert set(values) >= {"map50", "map50_95", "precision", "recall", "map50_coco"}
                assert all(0.0 <= v <= 1.0 for v in values.values())
            assert len(entry["history"]) == 2 and entry["method"]["accumulate"] == 1
            run_dir = registry.run_dir(config)
            for subset in SUBSETS:
                detections = json.loads((run_dir / "eval" / subset / "detections.json").read_text())
                assert detections and set(detections[0]) >= {"im_file", "boxes", "scores", "gt_boxes"}
                assert json.loads((run_dir / "eval" / subset / "pr_curve.json").read_text())["recall"][0] == 0.0
            model, _ = load_checkpoint(registry.weights_path(config))
            assert type(model).__name__ == "TwoStreamDetectionModel"
            if config.mwam.intervention == "none":  # the documented standalone re-evaluation of model.pt
                from ultralytics import YOLO

                from reproduce.yolo.validator import TwoStreamDetectionValidator

                yolo = YOLO(str(registry.weights_path(config)))
                with yolo.model.use_modalities(("ir",)):
                    again = yolo.val(data=str(run_dir / "data.yaml"), split="test", imgsz=96, batch=4, rect=True,
                                     validator=TwoStreamDetectionValidator, plots=False, device="cpu")  # fmt: skip
                assert again.box.map50 == pytest.approx(entry["subsets"]["ir"]["map50"], abs=1e-9)
            with (run_dir / "curves.csv").open() as handle:
                series = {row["series"] for row in csv.DictReader(handle)}
            assert {"loss/box_loss", "mwam/K/rgb", "mwam/K/ir"} <= series  # baselines log FRM / T / K too
            if config.mwam.intervention == "grad":
                with_mwam = series
            else:
                assert not any(k.startswith("mwam/K_applied/") for k in series), "a baseline edits no gradient"
        assert with_mwam is not None and "mwam/K_applied/ir" in with_mwam  # only the +MWAM column edits


def test_an_interrupted_run_resumes_at_its_epoch_boundary(tmp_path, monkeypatch):
    """``T-yolov8n +MWAM +SDE`` interrupted in its second epoch, resumed: the plug-ins' state saved with epoch 1's
    ``last.pt`` (MWAM's bank, SDE's generator) is what the resumed run starts from."""
    import mwam_harness.datasets.dronevehicle as dronevehicle
    from reproduce.paths import results_root_set_to
    from reproduce.yolo.runner import UltralyticsRunner
    from reproduce.yolo.trainer import TwoStreamDetectionTrainer

    class InterruptError(Exception):
        pass

    def stop_in_second_epoch(trainer, batch):
        if batch == len(trainer.train_loader) + 1:  # the first batch of epoch 2: epoch 1's last.pt is written
            raise InterruptError

    restored = {}
    load = TwoStreamDetectionTrainer.load_plugin_state

    def spy(self):
        load(self)
        restored["bank"] = self.mwam.mwam.bank.value.clone()
        restored["generator"] = self.sde.enhancer.sde.generator.get_state().clone()

    monkeypatch.setattr(TwoStreamDetectionTrainer, "load_plugin_state", spy)
    with results_root_set_to(tmp_path / "results"):
        config, runtime = table_runs(12).configs(
            None, dronevehicle.PRESETS["smoke"], columns=["T-yolov8n +MWAM +SDE"], runtime=RUNTIME
        )[0]
        registry = Registry()
        with pytest.raises(InterruptError):
            UltralyticsRunner([stop_in_second_epoch]).run(config, registry, runtime)
        weights = registry.run_dir(config) / "ultralytics" / "weights"
        assert (weights / "last.pt").is_file() and (weights / "plugins.pt").is_file() and not registry.has(config)
        saved = torch.load(weights / "plugins.pt", weights_only=True)
        bank = saved["state"]["mwam"]["bank.value"]
        generator = saved["process"]["sde"]["sde"]["_extra_state"]["generator"]
        resumed = UltralyticsRunner().run(config, registry, runtime, resume=True)
    assert registry.has(config) and len(resumed["history"]) == 2
    assert [row["epoch"] for row in resumed["history"]] == [1.0, 2.0]
    assert bank.abs().sum() > 0  # the bank that was resumed had been filled by epoch 1
    assert torch.equal(restored["bank"], bank.to(restored["bank"].dtype))
    fresh = torch.Generator().manual_seed(config.seed).get_state()
    assert torch.equal(restored["generator"], generator) and not torch.equal(generator, fresh)  # SDE's draws go on
    assert all("sde" in row for row in resumed["history"])  # epoch 1 from before the interruption, epoch 2 after


def _boxes(rng, n, size):
    xy = rng.uniform(0, size * 0.8, (n, 2))
    wh = rng.uniform(size * 0.05, size * 0.2, (n, 2))
    return np.concatenate([xy, xy + wh], 1)


def test_ultralytics_map50_agrees_with_meanap50_and_pycocotools_on_the_same_predictions(tmp_path):
    """Noisy copies of the targets (jittered, some dropped, false positives, wrong classes) through the validator's
    own ``update_metrics``; MeanAP50 must equal pycocotools' AP50 and be close to ultralytics' (they integrate the
    precision envelope differently)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from reproduce.yolo.validator import TwoStreamDetectionValidator

    rng = np.random.default_rng(0)
    size, classes = 320, 5
    validator = TwoStreamDetectionValidator(save_dir=tmp_path, args={"task": "detect", "plots": False})
    validator.training, validator.device, validator.data = True, torch.device("cpu"), {"val": ""}
    validator.init_metrics(type("M", (), {"names": {i: str(i) for i in range(classes)}})())
    images, annotations, detections = [], [], []
    for image in range(40):
        n = int(rng.integers(1, 8))
        gt, gt_cls = _boxes(rng, n, size), rng.integers(0, classes, n)
        keep = rng.random(n) > 0.2
        pred = gt[keep] + rng.normal(0, 6, (int(keep.sum()), 4))
        pred_cls = np.where(rng.random(int(keep.sum())) < 0.1, rng.integers(0, classes, int(keep.sum())), gt_cls[keep])
        extra = int(rng.integers(0, 3))
        pred = np.concatenate([pred, _boxes(rng, extra, size)])
        pred_cls = np.concatenate([pred_cls, rng.integers(0, classes, extra)])
        scores = rng.uniform(0.05, 1.0, len(pred))
        xywh = np.stack(
            [(gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2, gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]], 1
        )
        batch = {
            "batch_idx": torch.zeros(n), "cls": torch.tensor(gt_cls, dtype=torch.float32)[:, None],
            "bboxes": torch.tensor(xywh / size, dtype=torch.float32), "ori_shape": [(size, size)],
            "img": torch.zeros(1, 6, size, size), "ratio_pad": [((1.0, 1.0), (0.0, 0.0))], "im_file": [f"{image}.jpg"],
        }  # fmt: skip
        preds = [{"bboxes": torch.tensor(pred, dtype=torch.float32), "conf": torch.tensor(scores, dtype=torch.float32),
                  "cls": torch.tensor(pred_cls, dtype=torch.float32), "extra": torch.zeros(len(pred), 0)}]  # fmt: skip
        validator.update_metrics(preds, batch)
        images.append({"id": image, "width": size, "height": size})
        for j, (box, c) in enumerate(zip(gt, gt_cls, strict=True)):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": image * 100 + j + 1, "image_id": image, "category_id": int(c), "iscrowd": 0,
                                "bbox": [box[0], box[1], w, h], "area": w * h})  # fmt: skip
        for box, c, s in zip(pred, pred_cls, scores, strict=True):
            detections.append({"image_id": image, "category_id": int(c), "score": float(s),
                               "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})  # fmt: skip
    ultralytics_map50 = validator.get_stats()["metrics/mAP50(B)"]
    ours = validator.coco_map.compute()["map50"]
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in range(classes)]}
    coco.createIndex()
    evaluation = COCOeval(coco, coco.loadRes(detections), "bbox")
    evaluation.params.maxDets = [1, 10, 1000]
    evaluation.params.areaRng, evaluation.params.areaRngLbl = [[0, 1e10]], ["all"]
    evaluation.evaluate()
    evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, all recalls, classes, all areas, 1000 dets
    pycocotools_map50 = float(np.mean([precision[:, k].mean() for k in range(classes) if (precision[:, k] > -1).all()]))
    assert 0.3 < ours < 0.95
    assert ours == pytest.approx(pycocotools_map50, abs=1e-6)
    assert ultralytics_map50 == pytest.approx(ours, abs=0.02)


def test_validation_with_ultralytics_plots_reaches_for_no_network(tmp_path, monkeypatch):
    """A validation with ultralytics' plots on (fonts, prediction mosaics, PR / F1 curves, confusion
    matrices): every DNS look-up and socket connection attempted is recorded, and there must be none."""
    import socket

    from mwam_harness.datasets.dronevehicle.layout import data_dict
    from mwam_harness.datasets.dronevehicle.synthetic import write_dronevehicle
    from mwam_harness.models.yolo.two_stream import TwoStreamDetectionModel
    from reproduce.yolo.evaluation import evaluate_subsets

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    root = write_dronevehicle(tmp_path / "data", num_train=1, num_val=1, num_test=2)
    (tmp_path / "data.yaml").write_text(json.dumps(data_dict(root)))  # JSON is YAML
    torch.manual_seed(0)
    weights = tmp_path / "best.pt"
    torch.save({"model": TwoStreamDetectionModel(ch=6, nc=5, verbose=False), "train_args": {}}, weights)
    arguments = {"data": str(tmp_path / "data.yaml"), "task": "detect", "mode": "val", "split": "test", "imgsz": 64,
                 "batch": 2, "rect": True, "workers": 0, "plots": True, "verbose": False, "device": "cpu"}  # fmt: skip
    results = evaluate_subsets(weights, arguments, [("ir",)], tmp_path / "eval")
    assert tuple(results) == ("ir",)
    assert (tmp_path / "eval" / "ir" / "BoxPR_curve.png").is_file()
    assert (tmp_path / "eval" / "ir" / "val_batch0_pred.jpg").is_file()
    assert attempts == []
