"""``python -m reproduce predict`` on a CASIA-SURF run (reproduce/predict/casia_surf.py): list files, folders of
triples and one image, the subset of each input, ``--subset``, the errors, and the scores' numerics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mwam_harness.datasets.casia_surf import loader
from reproduce.cli import main
from reproduce.predict.base import present_mask
from reproduce.predict.trained import find_trained_run, load_host
from tests.predict_fixtures import KEY, trained_run_folder

OPTIONS = {"resize": 52, "crop": 40}  # the smoke preset's: the test split resizes to 40, not 112
MODALITIES = ("rgb", "depth", "ir")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root holding one finished sf run (the tests only read it)."""
    root = tmp_path_factory.mktemp("results")
    trained_run_folder(root / "runs", "casia_surf", "sf", data_options=OPTIONS)
    return root


def write_image(path: Path, seed: int, size: int = 48) -> Path:
    """A random colour image with some structure (different per seed), written with OpenCV."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    image[: size // 2] //= 1 + seed % 4
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def predict(results: Path, source: Path, out: Path, *extra: str) -> int:
    return main(["predict", KEY, "--results-dir", str(results), "--input", str(source), "--output", str(out),
                 "--device", "cpu", *extra])  # fmt: skip


def outputs(out: Path) -> tuple[list[dict[str, str]], dict]:
    with (out / "scores.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return rows, json.loads((out / "prediction.json").read_text(encoding="utf-8"))


def triples(folder: Path) -> Path:
    """a: all three; b: rgb + depth (no ir); c: depth alone (png)."""
    for seed, name in enumerate(("a_rgb.jpg", "a_depth.jpg", "a_ir.jpg", "b_rgb.png", "b_depth.jpg", "c_depth.png")):
        write_image(folder / name, seed)
    (folder / "notes.txt").write_text("ignored\n", encoding="utf-8")
    return folder


def test_a_folder_of_triples_uses_the_modalities_each_input_has(results, tmp_path):
    assert predict(results, triples(tmp_path / "faces"), tmp_path / "out") == 0
    rows, manifest = outputs(tmp_path / "out")
    assert [(r["name"], r["subset"]) for r in rows] == [("a", "rgb+depth+ir"), ("b", "rgb+depth"), ("c", "depth")]
    assert manifest["run"] == KEY and manifest["trained_on_synthetic_data"] is True
    assert manifest["subset_rule"] == "the modalities whose files are present"
    listed = {p["input"]: p for p in manifest["predictions"]}
    for row in rows:
        p = listed[row["name"]]
        assert p["subset"] == row["subset"] and p["files"] == ["scores.csv"] and p["label"] == row["predicted"]
        assert 0.0 <= p["live_score"] <= 1.0 and abs(float(row["live_score"]) - p["live_score"]) < 1e-6
        assert row["predicted"] == ("real" if p["live_score"] > 0.5 else "attack") and row["listed_label"] == ""


def test_one_image_stands_for_its_triple(results, tmp_path):
    folder = triples(tmp_path / "faces")
    assert predict(results, folder / "b_depth.jpg", tmp_path / "out") == 0
    rows, _ = outputs(tmp_path / "out")
    assert [(r["name"], r["subset"]) for r in rows] == [("b", "rgb+depth")]


def test_a_list_file_with_missing_images_and_labels_and_its_scores_are_the_host_s_own(results, tmp_path):
    data = tmp_path / "data"
    for seed, name in enumerate(("x/1_rgb.jpg", "x/1_depth.jpg", "x/1_ir.jpg", "x/2_depth.png", "x/2_ir.png")):
        write_image(data / name, seed + 10)
    (data / "mine.txt").write_text(
        "x/1_rgb.jpg x/1_depth.jpg x/1_ir.jpg 1\n\n- x/2_depth.png x/2_ir.png 0\nx/1_rgb.jpg - -\n", encoding="utf-8"
    )
    assert predict(results, data / "mine.txt", tmp_path / "out") == 0
    rows, manifest = outputs(tmp_path / "out")
    assert [(r["name"], r["subset"], r["listed_label"]) for r in rows] == [
        ("mine.txt:1", "rgb+depth+ir", "real"),
        ("mine.txt:3", "depth+ir", "attack"),
        ("mine.txt:4", "rgb", ""),
    ]
    got = [p["live_score"] for p in manifest["predictions"]]

    # The same numbers, directly: the loader's test-split preprocessing at the run's crop, zeros and the mask for
    # what is missing, one input at a time, softmax of the host's own logits.
    host, _ = load_host(find_trained_run(KEY, results / "runs"))
    files = [("x/1_rgb.jpg", "x/1_depth.jpg", "x/1_ir.jpg"), (None, "x/2_depth.png", "x/2_ir.png"),
             ("x/1_rgb.jpg", None, None)]  # fmt: skip

    def tensor(name: str | None, normalise=loader.to_tensor) -> torch.Tensor:
        if name is None:
            return torch.zeros(3, OPTIONS["crop"], OPTIONS["crop"])
        return normalise(cv2.resize(loader.read_image(data / name), (OPTIONS["crop"], OPTIONS["crop"])))

    def live(normalise=loader.to_tensor) -> list[float]:
        scores = []
        with torch.no_grad():
            for names in files:
                inputs = {m: tensor(n, normalise)[None] for m, n in zip(MODALITIES, names, strict=True)}
                used = [m for m, n in zip(MODALITIES, names, strict=True) if n is not None]
                logits = host(inputs, present_mask(MODALITIES, used)).logits
                scores.append(torch.softmax(logits.float(), dim=1)[0, 1].item())
        return scores

    expected = live()
    assert got == pytest.approx(expected, abs=1e-5)
    # The check is sensitive: another normalisation (x / 255) moves the scores by much more than the tolerance.
    other = live(lambda image: torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255))
    assert max(abs(a - b) for a, b in zip(other, expected, strict=True)) > 1e-3


def test_subset_is_honoured_and_refused_where_a_file_is_absent(results, tmp_path, capsys):
    folder = triples(tmp_path / "faces")
    for name in ("b_rgb.png", "b_depth.jpg", "c_depth.png"):
        (folder / name).unlink()
    assert predict(results, folder, tmp_path / "out", "--subset", "ir+rgb") == 0
    rows, manifest = outputs(tmp_path / "out")
    assert [(r["name"], r["subset"]) for r in rows] == [("a", "rgb+ir")]
    assert manifest["subset_rule"] == "--subset rgb+ir"
    write_image(folder / "b_rgb.jpg", 7)
    assert predict(results, folder, tmp_path / "out2", "--subset", "rgb+ir") == 2
    err = capsys.readouterr().err.strip()
    assert "b: --subset rgb+ir needs ir, not found" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("case", ["empty-folder", "empty-list", "unreadable", "listed-but-absent", "bad-line"])
def test_bad_inputs_are_one_line_errors(results, tmp_path, capsys, case):
    folder = tmp_path / "in"
    folder.mkdir()
    source, message = folder, "no images named <name>_rgb"
    if case == "empty-list":
        source, message = folder / "list.txt", "empty list"
        source.write_text("\n  \n", encoding="utf-8")
    elif case == "unreadable":
        write_image(folder / "a_rgb.jpg", 0)
        (folder / "a_depth.jpg").write_bytes(b"not an image")
        message = f"a: {folder / 'a_depth.jpg'}: unreadable or empty image"
    elif case == "listed-but-absent":
        write_image(folder / "a_rgb.jpg", 0)
        source, message = folder / "list.txt", f"line 1: depth image {folder / 'gone.jpg'} not found"
        source.write_text("a_rgb.jpg gone.jpg -\n", encoding="utf-8")
    elif case == "bad-line":
        source, message = folder / "list.txt", "line 2: expected 'rgb depth ir [label]'"
        write_image(folder / "a_rgb.jpg", 0)
        source.write_text("a_rgb.jpg - -\na_rgb.jpg\n", encoding="utf-8")
    assert predict(results, source, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
