"""``python -m reproduce predict`` on a DroneVehicle run (reproduce/predict/dronevehicle.py): both folder layouts,
the subset of each pair, ``--subset``, the errors, the model input against evaluation's data set, and the boxes
mapped back through the letterbox."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator, Sequence
from copy import deepcopy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from mwam_harness import models
from mwam_harness.datasets.dronevehicle import CLASS_NAMES
from reproduce.cli import main
from reproduce.predict import dronevehicle
from reproduce.predict.trained import find_trained_run
from reproduce.runs.config import RunConfig

HOST = "two_stream_yolov8n"
IMGSZ = 64  # the run's data option imgsz (the smoke preset's is 96): small and fast
KEY = "0123456789abcdef"
ENGINE_KEY = "fedcba9876543210"  # the same weights in the engine's {"config_key", "host"} format


def yolo_run_folder(runs_root: Path, key: str, weights: dict) -> Path:
    """A finished run of HOST as the ultralytics runner leaves it: ``config.yaml`` (method ``ultralytics``, image
    size IMGSZ), ``model.pt`` (``weights``) and the registry entry."""
    config = RunConfig.from_dict({
        "data": {"dataset": "dronevehicle", "root": str(runs_root / "no-data-needed"), "options": {"imgsz": IMGSZ}},
        "host": {"name": HOST},
        "method": {"name": "ultralytics", "options": {"plots": False}},
    })  # fmt: skip
    folder = runs_root / key
    folder.mkdir(parents=True)
    text = f"# run {key} (python -m reproduce run {folder / 'config.yaml'})\n"
    (folder / "config.yaml").write_text(text + yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    torch.save(weights, folder / "model.pt")
    entry = {"key": key, "synthetic": True, "config": config.to_dict(), "variant": HOST}
    (runs_root / f"{key}.json").write_text(json.dumps(entry), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root with a finished YOLO run (``model.pt``: an ultralytics checkpoint, fp16 as ultralytics saves
    it, what ``strip_optimizer`` leaves in ``best.pt``) and the same weights in the engine's format under
    ENGINE_KEY."""
    root = tmp_path_factory.mktemp("results")
    torch.manual_seed(0)
    model = models.build(HOST).half().float()  # fp16-exact values: both files hold the same numbers
    model.names = dict(enumerate(CLASS_NAMES))
    checkpoint = {"epoch": -1, "model": deepcopy(model).half(), "ema": None, "train_args": {"imgsz": IMGSZ}}
    yolo_run_folder(root / "runs", KEY, checkpoint)
    yolo_run_folder(root / "runs", ENGINE_KEY, {"config_key": ENGINE_KEY, "host": model.state_dict()})
    return root


def write_image(path: Path, seed: int, size: tuple[int, int] = (200, 100)) -> Path:
    """A (width, height) colour image with a few rectangles (different per seed), written with OpenCV."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = np.full((height, width, 3), rng.integers(40, 120, 3), dtype=np.uint8)
    for _ in range(3):
        x, y = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 10))
        cv2.rectangle(image, (x, y), (x + 20, y + 10), tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def predict(results: Path, inputs: Path, output: Path, *extra: str, key: str = KEY) -> int:
    return main(["predict", key, "--results-dir", str(results), "--input", str(inputs), "--output", str(output),
                 "--device", "cpu", *extra])  # fmt: skip


def manifest(output: Path) -> dict[str, dict]:
    return {p["input"]: p for p in json.loads((output / "prediction.json").read_text())["predictions"]}


def test_a_flat_folder_gives_every_pair_the_modalities_it_has(results, tmp_path):
    inputs = tmp_path / "in"
    write_image(inputs / "a.jpg", 0)
    write_image(inputs / "a_ir.png", 1)
    write_image(inputs / "b.png", 2)  # no IR: rgb only
    write_image(inputs / "c_ir.jpg", 3)  # no RGB: ir only
    assert predict(results, inputs, tmp_path / "out") == 0
    out = tmp_path / "out"
    made = manifest(out)
    assert {n: p["subset"] for n, p in made.items()} == {"a": "rgb+ir", "b": "rgb", "c": "ir"}
    for name, entry in made.items():
        assert entry["files"] == [f"labels/{name}.txt", "detections.csv", f"{name}_boxes.jpg"]
        assert all((out / f).is_file() for f in entry["files"])
        assert entry["detections"] == len((out / f"labels/{name}.txt").read_text().splitlines())
        drawn = cv2.imread(str(out / f"{name}_boxes.jpg"))
        assert drawn.shape[1] == 200 and drawn.shape[0] > 100, "the image, with the legend below it"
    header = (out / "detections.csv").read_text().splitlines()[0]
    assert header == "name,subset,class_id,class_name,conf,x1,y1,x2,y2"


def test_rgb_and_ir_folders_and_a_forced_subset(results, tmp_path, capsys):
    inputs = tmp_path / "in"
    for seed, name in enumerate(("x", "y")):
        write_image(inputs / "rgb" / f"{name}.jpg", seed)
        write_image(inputs / "ir" / f"{name}.jpg", seed + 10)
    assert predict(results, inputs, tmp_path / "ir-only", "--subset", "ir") == 0
    assert {n: p["subset"] for n, p in manifest(tmp_path / "ir-only").items()} == {"x": "ir", "y": "ir"}
    assert json.loads((tmp_path / "ir-only" / "prediction.json").read_text())["subset_rule"] == "--subset ir"
    assert predict(results, inputs / "rgb" / "y.jpg", tmp_path / "one") == 0  # one file: its twin is found
    assert {n: p["subset"] for n, p in manifest(tmp_path / "one").items()} == {"y": "rgb+ir"}
    (inputs / "ir" / "y.jpg").unlink()
    capsys.readouterr()
    assert predict(results, inputs, tmp_path / "both", "--subset", "rgb+ir") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "y: --subset rgb+ir needs ir, not found" in err
    assert not (tmp_path / "both" / "prediction.json").exists()


def _garbage(inputs: Path) -> str:
    write_image(inputs / "good.jpg", 0)
    (inputs / "bad.jpg").write_bytes(b"not an image at all")
    return "bad.jpg: unreadable image"


def _mismatch(inputs: Path) -> str:
    write_image(inputs / "p.jpg", 0, (200, 100))
    write_image(inputs / "p_ir.jpg", 1, (100, 100))
    return "p: the RGB image"


def _truncated(inputs: Path) -> str:
    data = write_image(inputs / "t.jpg", 0).read_bytes()
    (inputs / "t.jpg").write_bytes(data[: len(data) // 2])
    return "t.jpg: unreadable image (truncated JPEG"


def _mixed(inputs: Path) -> str:
    write_image(inputs / "rgb" / "a.jpg", 0)
    write_image(inputs / "a.jpg", 0)
    return "images beside its rgb/ and ir/ folders"


@pytest.mark.parametrize(
    "make",
    [lambda inputs: "no images found", _garbage, _mismatch, _truncated, _mixed],
    ids=["empty", "unreadable", "size-mismatch", "truncated", "mixed-layouts"],
)
def test_bad_inputs_are_one_line_errors_before_anything_is_written(results, tmp_path, capsys, make):
    inputs = tmp_path / "in"
    inputs.mkdir(exist_ok=True)
    expected = make(inputs)
    capsys.readouterr()
    assert predict(results, inputs, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err, err
    assert not list((tmp_path / "out").iterdir())


def test_the_model_input_is_evaluation_s_and_the_engine_format_gives_the_same_boxes(results, tmp_path, monkeypatch):
    """The 6-channel tensor the model gets is the one evaluation's data set (build_two_stream_dataset, rect
    validation) makes of the same pair; without IR its IR channels are zero and IR is switched off."""
    from ultralytics.cfg import get_cfg

    from mwam_harness.datasets.dronevehicle.layout import data_dict, list_path
    from mwam_harness.datasets.dronevehicle.loader import build_two_stream_dataset
    from reproduce.runs.runtime import Runtime
    from reproduce.yolo.arguments import validation_arguments

    size = (211, 173)  # odd sizes: the resize and the letterbox's padding both round
    inputs = tmp_path / "in"
    write_image(inputs / "rgb" / "p.png", 5, size)
    write_image(inputs / "ir" / "p.png", 6, size)
    write_image(inputs / "rgb" / "q.png", 7, size)  # no IR
    root = tmp_path / "prepared"
    for folder, source in (("images", "rgb"), ("image", "ir")):
        (root / folder / "test").mkdir(parents=True)
        (root / folder / "test" / "p.png").write_bytes((inputs / source / "p.png").read_bytes())
    (root / "labels" / "test").mkdir(parents=True)
    (root / "labels" / "test" / "p.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    list_path(root, "test").write_text("./images/test/p.png\n")
    config = find_trained_run(KEY, results / "runs").config
    arguments = validation_arguments(config, Runtime(device="cpu"), root / "data.yaml", "test")
    dataset = build_two_stream_dataset(get_cfg(overrides=arguments), str(list_path(root, "test")), 1,
                                       data_dict(root), mode="val", rect=True, stride=32)  # fmt: skip
    expected = dataset.collate_fn([dataset[0]])["img"].float() / 255

    seen: list[tuple[torch.Tensor, tuple[bool, bool]]] = []
    load = dronevehicle.load_model

    def recording(run, device):
        model = load(run, device)
        model.register_forward_pre_hook(lambda module, args: seen.append((args[0].clone(), module.present)))
        return model

    monkeypatch.setattr(dronevehicle, "load_model", recording)
    predictor = dronevehicle.DroneVehiclePredictor(conf=1e-4, max_det=20)  # an untrained model: low scores
    run = find_trained_run(KEY, results / "runs")
    found = predictor.predict(run, inputs, tmp_path / "out", None, torch.device("cpu"))
    assert [(p.name, p.subset) for p in found] == [("p", ("rgb", "ir")), ("q", ("rgb",))]
    (pair, present), (single, absent) = seen
    assert pair.shape == expected.shape == (1, 6, 96, 96) and torch.equal(pair, expected) and present == (True, True)
    assert absent == (True, False) and not single[:, 3:].any() and single[:, :3].any()
    assert found[0].values["detections"] > 0

    engine = predictor.predict(find_trained_run(ENGINE_KEY, results / "runs"), inputs, tmp_path / "engine", None, "cpu")
    assert [p.values for p in engine] == [p.values for p in found]
    for name in ("detections.csv", "labels/p.txt", "labels/q.txt"):
        assert (tmp_path / "engine" / name).read_text() == (tmp_path / "out" / name).read_text()


class KnownOutput(torch.nn.Module):
    """A stand-in model whose raw output (B, 4 + 5, anchors) holds one box of known letterbox coordinates."""

    def __init__(self, raw: torch.Tensor) -> None:
        super().__init__()
        self.raw = raw
        self.stride = torch.tensor([8.0, 16.0, 32.0])
        self.names = dict(enumerate(CLASS_NAMES))
        self.inputs: list[torch.Tensor] = []
        self.subsets: list[tuple[str, ...]] = []

    @contextlib.contextmanager
    def use_modalities(self, modalities: Sequence[str]) -> Iterator[None]:
        self.subsets.append(tuple(modalities))
        yield

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        self.inputs.append(x)
        return self.raw.to(x.device), None


def test_boxes_are_written_in_the_original_pixels_through_the_letterbox(results, tmp_path, monkeypatch):
    """A 200 x 100 image at imgsz 64: resized to 64 x 32 (ratio 0.32), letterboxed into 96 x 64 (rect validation:
    ceil(0.5 * 64 / 32 + 0.5) = 2 and ceil(64 / 32 + 0.5) = 3 strides) with 16 px of padding on every side. A box
    centred at (48, 32), 32 x 16 in the letterbox is (50, 25)-(150, 75) in the image; one reaching into the left
    padding is clipped at the image's edge; one below the confidence threshold is dropped."""
    raw = torch.zeros(1, 4 + 5, 4)
    raw[0, :4, 0] = torch.tensor([48.0, 32.0, 32.0, 16.0])
    raw[0, 4 + 2, 0] = 0.9  # bus
    raw[0, :4, 1] = torch.tensor([20.0, 32.0, 16.0, 16.0])  # (-12.5, 25)-(37.5, 75): clipped at x = 0
    raw[0, 4 + 0, 1] = 0.8  # car
    raw[0, :4, 2] = torch.tensor([80.0, 40.0, 8.0, 8.0])
    raw[0, 4 + 3, 2] = 0.2  # below the confidence threshold 0.25
    fake = KnownOutput(raw)
    monkeypatch.setattr(dronevehicle, "load_model", lambda run, device: fake)
    inputs = tmp_path / "in"
    write_image(inputs / "v.jpg", 0, (200, 100))  # RGB only
    assert predict(results, inputs, tmp_path / "out") == 0
    out = tmp_path / "out"
    (x,) = fake.inputs
    assert x.shape == (1, 6, 64, 96) and fake.subsets == [("rgb",)] and not x[:, 3:].any()
    assert torch.allclose(x[0, :3, :16], torch.full((3, 16, 96), 114 / 255)), "grey letterbox padding above"
    assert (out / "labels" / "v.txt").read_text().splitlines() == [
        "2 0.500000 0.500000 0.500000 0.500000 0.900000",
        "0 0.093750 0.500000 0.187500 0.500000 0.800000",
    ]
    with (out / "detections.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"name": "v", "subset": "rgb", "class_id": "2", "class_name": "bus", "conf": "0.900000",
                     "x1": "50.00", "y1": "25.00", "x2": "150.00", "y2": "75.00"},
                    {"name": "v", "subset": "rgb", "class_id": "0", "class_name": "car", "conf": "0.800000",
                     "x1": "0.00", "y1": "25.00", "x2": "37.50", "y2": "75.00"}]  # fmt: skip
    assert manifest(out)["v"]["detections"] == 2
    drawn = cv2.imread(str(out / "v_boxes.jpg"))
    original = cv2.imread(str(inputs / "v.jpg"))
    assert np.abs(drawn[50, 100].astype(int) - original[50, 100].astype(int)).max() < 40, "inside: untouched"
    assert np.abs(drawn[75, 100].astype(int) - original[75, 100].astype(int)).max() > 40, "the box's lower edge"
