"""``make bench-yolo``'s plumbing on a tiny size on the CPU: one JSON line with the step with and without MWAM
(interleaved) and MWAM's share (the figures themselves are measured by the benchmark, not asserted)."""

import json

import pytest

from scripts.bench_yolo import main

pytest.importorskip("ultralytics")


def test_bench_yolo_reports_interleaved_step_with_and_without_mwam(capsys, tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--device", "cpu", "--size", "64", "--batch", "2", "--rounds", "2", "--warmup", "1"]
    assert main([*argv, "--output", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report == json.loads(out.read_text()) and report["benchmark"] == "yolo_step"
    step = report["cpu"]["two_stream_yolov8n"]
    assert step["image"] == [64, 64] and step["batch"] == 2 and step["precision"] == "fp32"
    assert step["measurement"].startswith("interleaved, 2 rounds (order rotated each round), warm-up 1 discarded")
    for key in ("train_step_ms", "train_step_mwam_ms", "mwam_step_ms"):
        timing = step[key]
        assert timing["n"] == 2 and 0 < timing["min_ms"] <= timing["median_ms"] <= timing["max_ms"], key
    assert step["train_step_ms"]["paired_ratio"] == {"median": 1.0, "min": 1.0, "max": 1.0}
    assert step["mwam_over_plain_paired"] == step["train_step_mwam_ms"]["paired_ratio"]
    assert 0 < step["mwam_share_of_step"] < 1 and step["images_per_s"] > 0 and step["images_per_s_mwam"] > 0
