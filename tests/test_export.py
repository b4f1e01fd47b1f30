"""``python -m reproduce export``: a finished run's host to ONNX, checked against PyTorch with onnxruntime."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reproduce import export as export_module
from reproduce.export import ExportError, add_export_parser
from reproduce.predict.base import PredictionError, present_mask
from reproduce.predict.trained import find_trained_run, load_host
from tests.predict_fixtures import trained_run_folder

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

SURF = ("rgb", "depth", "ir")
SIDE = 40


def run_export(*argv: str) -> int:
    """``export ARGV...`` through a parser built with :func:`add_export_parser`, as the CLI runs it."""
    parser = argparse.ArgumentParser(prog="reproduce")
    add_export_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    return args.run(args)


@pytest.fixture(scope="module")
def surf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished (untrained) SF run of CASIA-SURF at crop 40, exported once with the defaults (mask as input)."""
    folder = trained_run_folder(tmp_path_factory.mktemp("export") / "runs", "casia_surf", "sf",
                                data_options={"resize": 52, "crop": SIDE})  # fmt: skip
    assert run_export(str(folder)) == 0
    return folder


def session(path: Path) -> Any:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def host_logits(folder: Path, images: dict[str, torch.Tensor], present: torch.Tensor) -> np.ndarray:
    host, _ = load_host(find_trained_run(folder, folder.parent), "cpu")
    with torch.no_grad():
        return host(images, present).logits.numpy()


def test_onnx_matches_pytorch_for_every_mask(surf: Path) -> None:
    """One file, the mask an input: the full set and missing-modality rows match the PyTorch host."""
    onnx = session(surf / "model.onnx")
    assert [i.name for i in onnx.get_inputs()] == [*SURF, "present"]
    assert [o.name for o in onnx.get_outputs()] == ["logits"]
    images = {m: torch.randn(2, 3, SIDE, SIDE) for m in SURF}
    for present in (
        present_mask(SURF, SURF, 2),
        torch.tensor([[True, False, False], [False, True, True]]),
        present_mask(SURF, ("ir",), 2),
    ):
        fed = {m: x * present[:, i, None, None, None] for i, (m, x) in enumerate(images.items())}
        got = onnx.run(["logits"], {**{m: x.numpy() for m, x in fed.items()}, "present": present.numpy()})[0]
        np.testing.assert_allclose(got, host_logits(surf, fed, present), rtol=0, atol=1e-4)
    batch = {m: np.random.default_rng(0).standard_normal((5, 3, SIDE, SIDE), dtype=np.float32) for m in SURF}
    assert onnx.run(["logits"], {**batch, "present": np.ones((5, 3), dtype=bool)})[0].shape == (5, 2)  # dynamic batch


def test_sidecar_describes_the_export(surf: Path) -> None:
    record = json.loads((surf / "model.onnx.json").read_text(encoding="utf-8"))
    assert (record["run"], record["host"], record["dataset"]) == ("0123456789abcdef", "sf", "casia_surf")
    assert record["format"] == "onnx" and record["file"] == "model.onnx"
    assert record["opset"] == export_module.DEFAULT_OPSET
    assert record["exporter"] == "dynamo" and record["exporter_failures"] == {}
    assert record["inputs"] == [
        *({"name": m, "shape": ["batch", 3, SIDE, SIDE], "dtype": "float32"} for m in SURF),
        {"name": "present", "shape": ["batch", 3], "dtype": "bool"},
    ]
    assert record["outputs"] == [{"name": "logits", "shape": ["batch", 2], "dtype": "float32"}]
    assert record["mask"]["as_input"] and record["mask"]["order"] == list(SURF)
    check = record["check"]
    assert check["batch"] == 7 and check["subsets"][-1] == "rgb+depth+ir"
    assert 0 <= check["max_abs_diff"] <= check["tolerance"] == pytest.approx(1e-4 * max(1.0, check["output_scale"]))


def test_baked_subset_with_the_torchscript_exporter(surf: Path, tmp_path: Path) -> None:
    """``--subset ir+rgb``: inputs rgb and ir only (run order), no mask; depth absent inside the graph."""
    output = tmp_path / "out" / "rgb_ir.onnx"
    assert run_export(str(surf), "--subset", "ir+rgb", "--exporter", "torchscript", "--output", str(output)) == 0
    onnx = session(output)
    assert [i.name for i in onnx.get_inputs()] == ["rgb", "ir"]
    images = {m: torch.randn(3, 3, SIDE, SIDE) for m in SURF}
    images["depth"].zero_()
    got = onnx.run(["logits"], {"rgb": images["rgb"].numpy(), "ir": images["ir"].numpy()})[0]
    expected = host_logits(surf, images, present_mask(SURF, ("rgb", "ir"), 3))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    record = json.loads(output.with_name("rgb_ir.onnx.json").read_text(encoding="utf-8"))
    assert record["exporter"] == "torchscript"
    assert record["mask"] == {**record["mask"], "as_input": False, "subset": ["rgb", "ir"]}


def test_auto_falls_back_and_a_mismatch_removes_the_file(surf: Path, tmp_path: Path, monkeypatch) -> None:
    """``auto``: a failing dynamo exporter falls back to TorchScript (recorded); a check above the tolerance is an
    error and leaves no file (nor the earlier sidecar). The exporters are replaced by a copy of the exported file."""

    def fake(model: Any, example: Any, names: Any, path: Path, opset: int, exporter: str, large: bool) -> None:
        if exporter == "dynamo":
            raise RuntimeError("no dynamo today\nsecond line")
        shutil.copyfile(surf / "model.onnx", path)

    monkeypatch.setattr(export_module, "_export", fake)
    output = tmp_path / "copy.onnx"
    assert run_export(str(surf), "--output", str(output)) == 0
    record = json.loads((tmp_path / "copy.onnx.json").read_text(encoding="utf-8"))
    assert record["exporter"] == "torchscript"
    assert record["exporter_failures"] == {"dynamo": "RuntimeError: no dynamo today"}
    monkeypatch.setattr(export_module, "RELATIVE_TOLERANCE", -1.0)
    with pytest.raises(ExportError, match=r"differ by .* the file was removed"):
        run_export(str(surf), "--output", str(output))
    assert not output.exists() and not (tmp_path / "copy.onnx.json").exists()


@pytest.mark.parametrize("subset", ["rgb+thermal", "rgb+rgb", "+"])
def test_a_bad_subset_is_an_error(surf: Path, subset: str) -> None:
    with pytest.raises(PredictionError, match="--subset"):
        run_export(str(surf), "--subset", subset, "--output", str(surf / "never.onnx"))
    assert not (surf / "never.onnx").exists()


@pytest.mark.parametrize(
    ("dataset", "host", "message"),
    [("brats2020", "rfnet", "BraTS predicts 3-D volumes by a sliding window"), ("dronevehicle", "two_stream_yolov8n",
     "ultralytics models")],
)  # fmt: skip
def test_brats_and_dronevehicle_are_refused(tmp_path: Path, dataset: str, host: str, message: str) -> None:
    trained_run_folder(tmp_path / "runs", dataset, host, state={})
    with pytest.raises(ExportError, match=f"{message}.*export supports CASIA-SURF .* and NYU-Depth V2"):
        run_export("0123456789abcdef", "--results-dir", str(tmp_path))
    assert not (tmp_path / "runs" / "0123456789abcdef" / "model.onnx").exists()


def test_importing_the_command_loads_no_onnx_package() -> None:
    code = "import sys, reproduce.export; print(sorted({'onnx', 'onnxruntime', 'onnxscript'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.ci
def test_nyuv2_esanet_md(tmp_path: Path) -> None:
    """ESANet-MD (a small decoder, 32 x 32): RGB 3 + depth 1 channels, (B, 40, H, W) logits, the dynamo exporter."""
    folder = trained_run_folder(tmp_path / "runs", "nyuv2", "esanet_md",
                                host_options={"channels_decoder": [32, 16, 8], "nr_decoder_blocks": [0, 0, 0]},
                                data_options={"height": 32, "width": 32})  # fmt: skip
    assert run_export(str(folder)) == 0
    record = json.loads((folder / "model.onnx.json").read_text(encoding="utf-8"))
    assert record["exporter"] == "dynamo" and record["check"]["subsets"] == ["rgb", "depth", "rgb+depth"]
    assert [i["shape"] for i in record["inputs"]] == [["batch", 3, 32, 32], ["batch", 1, 32, 32], ["batch", 2]]
    onnx = session(folder / "model.onnx")
    images = {"rgb": torch.randn(2, 3, 32, 32), "depth": torch.zeros(2, 1, 32, 32)}
    present = present_mask(("rgb", "depth"), ("rgb",), 2)
    got = onnx.run(["logits"], {**{m: x.numpy() for m, x in images.items()}, "present": present.numpy()})[0]
    assert got.shape == (2, 40, 32, 32)
    np.testing.assert_allclose(got, host_logits(folder, images, present), rtol=0, atol=1e-4)
