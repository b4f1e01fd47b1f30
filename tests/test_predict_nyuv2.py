"""``python -m reproduce predict`` on NYU-Depth V2 runs (reproduce/predict/nyuv2.py): the inputs found, the subset
of each, the label and overlay PNGs, the errors, and labels equal to the host's argmax on the loader's own tensors.

The run is an ESANet-MD with a small decoder (its two ResNet-50 encoders are fixed) at 32 x 32, freshly initialised;
the CLI is run twice in the module, loading the run's host once (that takes seconds on a CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import reproduce.predict.trained as trained
from mwam_harness import models
from mwam_harness.datasets.nyuv2 import NUM_CLASSES
from mwam_harness.datasets.nyuv2.loader import Nyuv2Dataset
from reproduce.cli import main
from reproduce.predict.nyuv2 import PALETTE
from tests.predict_fixtures import KEY, trained_run_folder

HOST_OPTIONS = {"channels_decoder": [32, 16, 8], "nr_decoder_blocks": [0, 0, 0]}
SIZE = {"height": 32, "width": 32}
#: Original sizes that are not the network's: both resizes are exercised.
SHAPE_A, SHAPE_B = (45, 70), (40, 52)


def _images(shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random RGB image (uint8) and depth map (uint16 mm, 500-5000)."""
    rng = np.random.default_rng(seed)
    rgb = cv2.resize(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8), shape[::-1], interpolation=cv2.INTER_LINEAR)
    depth = rng.integers(500, 5000, shape, dtype=np.uint16)
    return rgb, depth


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    """As the prepared layout stores it: an 8-bit colour PNG (or JPEG) written by OpenCV from BGR."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _write_plane(path: Path, image: np.ndarray) -> None:
    """A single-channel PNG: depth as uint16 millimetres, labels as uint8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert image.ndim == 2 and cv2.imwrite(str(path), image)


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The results root with the run, the host (its weights), the input folder and a prepared root of the same
    images, and the CLI's outputs on the folder and on one file with ``--subset depth``."""
    tmp = tmp_path_factory.mktemp("nyuv2_predict")
    torch.manual_seed(0)
    host = models.build("esanet_md", **HOST_OPTIONS).eval()
    trained_run_folder(
        tmp / "runs", "nyuv2", "esanet_md", host_options=HOST_OPTIONS, data_options=SIZE, state=host.state_dict()
    )
    a_rgb, a_depth = _images(SHAPE_A, 1)
    b_rgb, b_depth = _images(SHAPE_B, 2)
    inputs = tmp / "in"
    _write_rgb(inputs / "a.png", a_rgb)
    _write_plane(inputs / "a_depth.png", a_depth)
    _write_rgb(inputs / "b.jpg", b_rgb)  # RGB only
    _write_plane(inputs / "c_depth.png", b_depth)  # depth only
    (inputs / "notes.txt").write_text("not an input")
    b_rgb = cv2.cvtColor(_read(inputs / "b.jpg"), cv2.COLOR_BGR2RGB)  # what the JPEG decodes to
    # The same images in the prepared layout (test split, 0001 = a, 0002 = b's RGB with c's depth).
    root = tmp / "root"
    for index, (rgb, depth) in {"0001": (a_rgb, a_depth), "0002": (b_rgb, b_depth)}.items():
        _write_rgb(root / "test" / "rgb" / f"{index}.png", rgb)
        _write_plane(root / "test" / "depth" / f"{index}.png", depth)
        _write_plane(root / "test" / "labels_40" / f"{index}.png", np.zeros(depth.shape, np.uint8))
    (root / "test.txt").write_text("0001\n0002\n")
    base = ["predict", KEY, "--results-dir", str(tmp), "--device", "cpu"]
    loaded: list[tuple] = []

    def load_once(run, device="cpu"):
        """The run's host loaded from its folder once; the second CLI run reuses it (a load takes seconds)."""
        if not loaded:
            loaded.append(real_load_host(run, device))
        return loaded[0]

    real_load_host = trained.load_host
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trained, "load_host", load_once)
        assert main([*base, "--input", str(inputs), "--output", str(tmp / "out")]) == 0
        one = ["--input", str(inputs / "a.png"), "--subset", "depth", "--output", str(tmp / "one")]
        assert main([*base, *one]) == 0
    return {"tmp": tmp, "host": host, "inputs": inputs, "root": root, "base": base}


def _manifest(folder: Path) -> dict[str, dict]:
    record = json.loads((folder / "prediction.json").read_text())
    assert record["run"] == KEY and record["dataset"] == "nyuv2" and record["host"] == "esanet_md"
    return {p["input"]: p for p in record["predictions"]}


def test_each_input_uses_the_modalities_whose_files_are_present(setup):
    predictions = _manifest(setup["tmp"] / "out")
    assert {name: p["subset"] for name, p in predictions.items()} == {"a": "rgb+depth", "b": "rgb", "c": "depth"}
    assert predictions["a"]["files"] == ["a_labels.png", "a_overlay.png"]
    one = _manifest(setup["tmp"] / "one")  # one RGB file, its depth beside it, --subset depth
    assert list(one) == ["a"] and one["a"]["subset"] == "depth"


def test_labels_and_overlays_are_pngs_at_the_input_s_resolution(setup):
    out = setup["tmp"] / "out"
    predictions = _manifest(out)
    for name, shape in (("a", SHAPE_A), ("b", SHAPE_B), ("c", SHAPE_B)):
        labels, view = _read(out / f"{name}_labels.png"), _read(out / f"{name}_overlay.png")
        assert labels.dtype == np.uint8 and labels.shape == shape
        assert 1 <= labels.min() and labels.max() <= NUM_CLASSES  # the data set's numbering, void never predicted
        assert view.dtype == np.uint8 and view.shape == (*shape, 3)
        assert predictions[name]["classes_present"] == sorted(int(v) for v in np.unique(labels))
    # The overlay is the RGB image blended half and half with the labels' colours (OpenCV stores BGR).
    a_rgb, _ = _images(SHAPE_A, 1)
    labels = _read(out / "a_labels.png")
    expected = np.round(0.5 * a_rgb.astype(np.float32) + 0.5 * PALETTE[labels]).astype(np.uint8)
    assert np.array_equal(cv2.cvtColor(_read(out / "a_overlay.png"), cv2.COLOR_BGR2RGB), expected)
    assert len({tuple(c) for c in PALETTE.tolist()}) == NUM_CLASSES + 1 and PALETTE[0].tolist() == [0, 0, 0]


def test_labels_are_the_host_s_argmax_on_the_loader_s_tensors_plus_one(setup):
    """The loader's evaluation samples (full images) through the host under each input's mask, the logits upsampled
    bilinearly to the original size as evaluation does, argmax + 1: the predictor's PNGs, pixel for pixel (the
    absent modality, which the predictor feeds as zeros, does not matter)."""
    dataset = Nyuv2Dataset(setup["root"], "test", **SIZE)
    cases = [("out", "a", 0, [True, True]), ("out", "b", 1, [True, False]), ("out", "c", 1, [False, True])]
    cases.append(("one", "a", 0, [False, True]))
    classes = set()
    for folder, name, index, mask in cases:
        sample = dataset[index]
        inputs = {m: sample[m][None] for m in ("rgb", "depth")}
        with torch.inference_mode():
            logits = setup["host"](inputs, torch.tensor([mask])).logits
        logits = F.interpolate(logits, size=tuple(sample["label"].shape), mode="bilinear", align_corners=False)
        expected = (logits[0].argmax(dim=0) + 1).numpy()
        labels = _read(setup["tmp"] / folder / f"{name}_labels.png")
        assert np.array_equal(labels, expected), (folder, name)
        classes |= set(np.unique(labels).tolist())
    assert len(classes) > 3  # the comparison is not of constant maps


def _error(setup, tmp_path, capsys, inputs: Path, *extra: str) -> str:
    argv = [*setup["base"], "--input", str(inputs), "--output", str(tmp_path / "out"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_inputs_are_one_line_errors_before_the_model_is_loaded(setup, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(trained, "load_host", lambda *a, **k: pytest.fail("the host was loaded"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    assert "no input images" in _error(setup, tmp_path, capsys, tmp_path / "empty")

    bad = tmp_path / "bad"
    _write_rgb(bad / "a.png", _images(SHAPE_A, 1)[0])
    (bad / "broken.png").write_bytes(b"not a png at all")
    err = _error(setup, tmp_path, capsys, bad)
    assert "broken.png" in err and "unreadable RGB image" in err

    sizes = tmp_path / "sizes"
    _write_rgb(sizes / "a.png", _images(SHAPE_A, 1)[0])
    _write_plane(sizes / "a_depth.png", _images(SHAPE_B, 1)[1])
    err = _error(setup, tmp_path, capsys, sizes)
    assert "a: the RGB image and the depth map differ in size: rgb 45 x 70 (a.png), depth 40 x 52" in err

    err = _error(setup, tmp_path, capsys, setup["inputs"] / "b.jpg", "--subset", "rgb+depth")
    assert "b: --subset rgb+depth needs depth, not found" in err

    _write_plane(tmp_path / "eight_bit_depth.png", np.zeros((8, 8), np.uint8))
    err = _error(setup, tmp_path, capsys, tmp_path / "eight_bit_depth.png")
    assert "uint16 single-channel depth image (mm) expected" in err
    assert "neither an RGB image" in _error(setup, tmp_path, capsys, tmp_path / "empty" / "readme.txt")
