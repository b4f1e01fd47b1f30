"""``make bench-nyuv2``'s plumbing on a tiny size: one JSON line with the step with and without MWAM, MWAM's share
and the loader's throughput (the figures themselves are measured by the benchmark, not asserted)."""

import json

from scripts.bench_nyuv2 import main


def test_bench_nyuv2_reports_step_mwam_share_and_loader(capsys, tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--device", "cpu", "--height", "32", "--width", "64", "--batch", "2", "--iters", "1", "--warmup", "0"]
    assert main([*argv, "--workers", "0", "--output", str(out)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    report = json.loads(line)
    assert report == json.loads(out.read_text()) and report["benchmark"] == "nyuv2_step"
    cpu = report["cpu"]
    step = cpu["esanet_md"]
    assert step["image"] == [32, 64] and step["batch"] == 2 and step["precision"] == "fp32"
    assert step["train_step_ms"]["median_ms"] > 0 and 0 < step["mwam_share_of_step"] < 1
    assert step["measurement"].startswith("interleaved, 1 round (order rotated each round), warm-up 0 discarded")
    assert step["mwam_over_plain_paired"]["median"] > 0 and step["train_step_mwam_ms"]["n"] == 1
    assert cpu["loader"]["images"] >= 2 and cpu["loader"]["images_per_s"] > 0 and cpu["loader_over_step"] > 0
