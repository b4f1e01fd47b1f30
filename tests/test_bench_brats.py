"""``make bench-brats``'s plumbing on a tiny 3-D host: one JSON line with every figure the issue asks for."""

import importlib.util
import json
from pathlib import Path

from mwam_harness.catalog import HOSTS
from mwam_harness.models.registry import ModelInfo
from tests.test_segmentation3d import ToyHost3D


def test_bench_brats_prints_one_json_line_with_step_mwam_memory_flops_and_evaluation(monkeypatch, capsys):
    monkeypatch.setitem(HOSTS.entries, "toy3d", ModelInfo("toy3d", ToyHost3D))
    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_brats.py"
    spec = importlib.util.spec_from_file_location("bench_brats", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--device", "cpu", "--hosts", "toy3d", "--size", "16", "--rounds", "2", "--warmup", "0"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    entry = report["cpu"]["toy3d"]
    assert report["benchmark"] == "brats_step" and report["precision"] == "fp32"
    for key in ("train_step_ms", "train_step_mwam_ms", "mwam_step_ms", "eval_15_subsets_ms", "eval_full_set_only_ms"):
        assert entry[key]["median_ms"] > 0, key
    assert 0 < entry["mwam_share_of_step"] < 1 and entry["forward_gflops_per_sample"] > 0
    assert entry["measurement"].startswith("interleaved, 2 rounds (order rotated each round), warm-up 0 discarded")
    assert entry["train_step_ms"]["n"] == 2 and entry["train_step_ms"]["paired_ratio"]["median"] == 1.0
    paired = entry["mwam_over_plain_paired"]
    assert paired == entry["train_step_mwam_ms"]["paired_ratio"] and 0 < paired["min"] <= paired["max"]
    assert entry["eval_measurement"].startswith("interleaved, 1 round (order rotated each round), warm-up 0")
    assert entry["eval_15_over_one_paired"]["median"] > 0 and entry["eval_15_subsets_ms"]["n"] == 1
    assert entry["parameters"] == sum(p.numel() for p in ToyHost3D().parameters()) and entry["eval_volume"] == [
        24,
        24,
        16,
    ]
    assert report["cpu"]["process_peak_rss_mb"] > 0
