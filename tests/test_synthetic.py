"""The synthetic CASIA-SURF generator: layout, determinism, caching, atomicity and the modality imbalance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import mwam_harness.datasets.casia_surf.synthetic as surf_synthetic
import mwam_harness.datasets.synthetic as synthetic
from mwam import frm
from mwam_harness.datasets.casia_surf import MODALITIES, SPLITS
from mwam_harness.datasets.casia_surf.loader import CasiaSurfDataset, read_split
from mwam_harness.datasets.casia_surf.synthetic import (
    MARKER,
    SURF_CUES,
    SyntheticSurfConfig,
    render_surf_sample,
    shown_labels,
    write_casia_surf,
)

REPO = Path(__file__).resolve().parents[1]
TINY = {"num_train": 8, "num_val": 4, "num_test": 8, "size": 32}


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _tensors(root: Path, split: str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    ds = CasiaSurfDataset(root, split, train=False)
    items = [ds[i] for i in range(len(ds))]
    return {m: torch.stack([item[m] for item in items]) for m in MODALITIES}, torch.tensor(ds.labels)


# ---------------------------------------------------------------- layout


def test_layout_matches_casia_surf(tmp_path: Path) -> None:
    root = write_casia_surf(tmp_path / "surf", **TINY)
    assert root == tmp_path / "surf"
    patterns = {
        "train": r"Training/(real_part/SYN_AS\d{4}/real|fake_part/SYN_AS\d{4}/attack)\.rssdk/(color|depth|ir)/\d+\.jpg",
        "val": r"Val/\d{4}/\d{6}-(color|depth|ir)\.jpg",
        "test": r"Testing/\d{4}/\d{6}-(color|depth|ir)\.jpg",
    }
    for split, name in SPLITS.items():
        lines = (root / name).read_text().splitlines()
        assert len(lines) == TINY[f"num_{split}"]
        for line in lines:
            rgb, depth, ir, label = line.split(" ")
            assert label in ("0", "1")
            for path, tag in ((rgb, "color"), (depth, "depth"), (ir, "ir")):
                assert re.fullmatch(patterns[split], path) and tag in path
            if split == "train":
                assert ("real_part" in rgb) == (label == "1")
    images = {m: cv2.imread(str(read_split(root, "val")[0].path(m)), cv2.IMREAD_UNCHANGED) for m in MODALITIES}
    assert images["rgb"].shape == (32, 32, 3) and images["depth"].shape == images["ir"].shape == (32, 32)
    assert json.loads((root / MARKER).read_text())["params"] == {**TINY, "imbalance": 1.0, "seed": 0}


def test_deterministic_given_seed(tmp_path: Path) -> None:
    a = write_casia_surf(tmp_path / "a", **TINY, seed=4)
    b = write_casia_surf(tmp_path / "b", **TINY, seed=4)
    c = write_casia_surf(tmp_path / "c", **TINY, seed=5)
    files = sorted(_files(a))
    assert files == sorted(_files(b))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files if f.endswith(".jpg") and (c / f).exists())
    config = SyntheticSurfConfig(**TINY, seed=4)
    first, again = render_surf_sample(config, "test", 3, 1), render_surf_sample(config, "test", 3, 1)
    assert all(np.array_equal(first[m], again[m]) for m in MODALITIES)


# ---------------------------------------------------------------- caching and atomicity


def test_second_call_does_not_rewrite(tmp_path: Path) -> None:
    root = write_casia_surf(tmp_path / "surf", **TINY)
    before = _files(root)
    assert write_casia_surf(tmp_path / "surf", **TINY) == root
    assert _files(root) == before
    write_casia_surf(tmp_path / "surf", **{**TINY, "num_val": 6})  # other parameters: replaced
    assert len(read_split(root, "val")) == 6
    assert json.loads((root / MARKER).read_text())["params"]["num_val"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["surf"]


def test_marker_written_last(tmp_path: Path) -> None:
    root = write_casia_surf(tmp_path / "surf", **TINY)
    times = _files(root)
    marker = times.pop(MARKER)
    assert marker >= max(times.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["surf"]  # no temporary directory left


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real_imwrite = cv2.imwrite

    def failing(path: str, image: np.ndarray, params: list[int]) -> bool:
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt  # e.g. Ctrl-C half-way
        return real_imwrite(path, image, params)

    monkeypatch.setattr(surf_synthetic.cv2, "imwrite", failing)
    with pytest.raises(KeyboardInterrupt):
        write_casia_surf(tmp_path / "surf", **TINY)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "train_list.txt").write_text("precious\n")
    with pytest.raises(FileExistsError, match="not a synthetic data set"):
        write_casia_surf(tmp_path / "real", **TINY)
    assert (tmp_path / "real" / "train_list.txt").read_text() == "precious\n"
    (tmp_path / "empty").mkdir()
    assert (write_casia_surf(tmp_path / "empty", **TINY) / MARKER).is_file()


@pytest.mark.parametrize(
    "bad", [{"imbalance": 1.5}, {"imbalance": -0.1}, {"size": 8}, {"num_test": 0}, {"seed": -1}, {"num_val": 2.5}]
)
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        SyntheticSurfConfig(**{**TINY, **bad})


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert synthetic.main(["surf", str(tmp_path / "a"), "--num-train", "4", "--num-val", "2", "--num-test", "2",
                           "--size", "24", "--imbalance", "0.5", "--seed", "1"]) == 0  # fmt: skip
    params = json.loads((tmp_path / "a" / MARKER).read_text())["params"]
    assert params == {"num_train": 4, "num_val": 2, "num_test": 2, "size": 24, "imbalance": 0.5, "seed": 1}
    assert synthetic.main(["casia_surf", str(tmp_path / "b"), "--preset", "smoke", "--num-train", "2",
                           "--num-val", "2", "--size", "16"]) == 0  # fmt: skip
    params = json.loads((tmp_path / "b" / MARKER).read_text())["params"]
    assert params == {"num_train": 2, "num_val": 2, "num_test": 32, "size": 16, "imbalance": 1.0, "seed": 0}
    assert "synthetic" in capsys.readouterr().out and len(read_split(tmp_path / "b", "test")) == 32
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main(["surf", str(tmp_path / "c"), "--imbalance", "2"])
    assert exit_info.value.code == 2 and "imbalance must be" in capsys.readouterr().err


def test_reproduce_synthetic_is_the_same_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m reproduce synthetic ...`` hands the rest of its command line to this one, help included."""
    from reproduce.cli import main

    assert main(["synthetic", "surf", str(tmp_path / "a"), "--num-train", "4", "--num-val", "2", "--num-test", "2",
                 "--size", "24"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "a" / MARKER).read_text())["params"]["num_train"] == 4
    with pytest.raises(SystemExit) as exit_info:
        main(["synthetic", "--help"])
    assert exit_info.value.code == 0 and "python -m reproduce synthetic" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "synthetic" in capsys.readouterr().out


# ---------------------------------------------------------------- the modality imbalance


def test_imbalance_knob() -> None:
    depth, ir, rgb = SURF_CUES["depth"], SURF_CUES["ir"], SURF_CUES["rgb"]
    assert depth.amplitude(1.0) > depth.amplitude(0.5) > depth.amplitude(0.0)
    assert rgb.amplitude(1.0) < rgb.amplitude(0.5) < rgb.amplitude(0.0)
    assert depth.uninformative(1.0) < ir.uninformative(1.0) < rgb.uninformative(1.0)
    assert depth.uninformative(0.0) == ir.uninformative(0.0) == rgb.uninformative(0.0)
    config = SyntheticSurfConfig(imbalance=1.0, seed=2)
    flips = {m: 0 for m in MODALITIES}
    n = 4000
    for i in range(n):
        for m, shown in shown_labels(config, "train", i, i % 2).items():
            flips[m] += shown != i % 2
    for m in MODALITIES:  # a random label is wrong half of the time
        assert abs(flips[m] / n - SURF_CUES[m].uninformative(1.0) / 2) < 0.015


def test_frm_depth_above_ir_above_rgb(tmp_path: Path) -> None:
    """Table 1's FRM column ordering, on the loader's normalised training images (test mode)."""
    root = write_casia_surf(tmp_path / "surf", num_train=32, num_val=2, num_test=2, size=112, seed=0)
    x, _ = _tensors(root, "train")
    for start in range(0, 32, 8):  # every batch of 8, not just the total
        value = {m: frm(x[m][start : start + 8]).item() for m in MODALITIES}
        assert value["depth"] > 10 * value["ir"] and value["ir"] > 1.5 * value["rgb"], value


def _features(x: torch.Tensor) -> torch.Tensor:
    """Cheap per-image features of the grey image: mean, std, centre - ring, mean |Laplacian|, mean |gradient|."""
    g = x.double().mean(1)
    h, w = g.shape[1:]
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    r = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2).sqrt() / (h / 2)
    centre, ring = r < 0.25, (r > 0.35) & (r < 0.5)
    inner = g[:, 1:-1, 1:-1]
    laplacian = (4 * inner - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:]).abs().mean((1, 2))
    gradient = (g[:, 1:] - g[:, :-1]).abs().mean((1, 2))
    return torch.stack(
        [g.mean((1, 2)), g.std((1, 2)), g[:, centre].mean(1) - g[:, ring].mean(1), laplacian, gradient], 1
    )


def _nearest_mean_accuracy(
    f_train: torch.Tensor, y_train: torch.Tensor, f_test: torch.Tensor, y_test: torch.Tensor
) -> float:
    mean, std = f_train.mean(0), f_train.std(0) + 1e-9
    a, b = (f_train - mean) / std, (f_test - mean) / std
    centres = torch.stack([a[y_train == 0].mean(0), a[y_train == 1].mean(0)])
    return (torch.cdist(b, centres).argmin(1) == y_test).double().mean().item()


def test_depth_more_separable_than_rgb_on_cheap_features(tmp_path: Path) -> None:
    root = write_casia_surf(tmp_path / "surf", num_train=160, num_val=2, num_test=160, size=64, imbalance=1.0, seed=0)
    (x_train, y_train), (x_test, y_test) = _tensors(root, "train"), _tensors(root, "test")
    accuracy = {
        m: _nearest_mean_accuracy(_features(x_train[m]), y_train, _features(x_test[m]), y_test) for m in MODALITIES
    }
    assert accuracy["depth"] >= 0.8, accuracy
    assert accuracy["depth"] >= accuracy["rgb"] + 0.15, accuracy


def test_built_beside_installs_on_success_and_leaves_everything_as_it_was_on_failure(tmp_path):
    from mwam_harness.datasets.files import built_beside

    out = tmp_path / "set"
    with built_beside(out, lambda d: (d / "m").exists(), lambda d: False, "m") as built:
        (built / "m").write_text("1")
    assert (out / "m").read_text() == "1"
    with pytest.raises(RuntimeError), built_beside(out, lambda d: (d / "m").exists(), lambda d: False, "m") as built:
        (built / "m").write_text("2")
        raise RuntimeError("generator failed")
    assert (out / "m").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "data.txt").write_text("theirs")
    with (
        pytest.raises(FileExistsError, match="no m"),
        built_beside(tmp_path / "user", lambda d: False, lambda d: False, "m"),
    ):
        pass
