"""The UCF-101 data-path benchmark runs at a tiny size and reports decoding, TV-L1 per size (interleaved) and the
loader against the step (no timing assertions: the numbers depend on the machine)."""

import json

import pytest

from scripts.bench_ucf101_data import main


@pytest.mark.ci  # TV-L1 at 320 x 240 and a synthetic set, ~12 s: .ci/run runs it after make test
def test_bench_ucf101_data_reports_decode_tvl1_and_whether_the_loader_keeps_up(capsys):
    assert main(["--size", "32", "--batch", "2", "--rounds", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "ucf101_data" and report["videos"] == 32
    assert set(report["tvl1_ms_per_frame_pair"]) == {"synthetic", "224x224", "320x240"}
    assert all(v > 0 for v in report["tvl1_ms_per_frame_pair"].values())
    assert report["decode_ms_per_video"]["median"] > 0 and report["loader"]["clips_per_s"] > 0
    assert report["keeps_up"] == (report["loader"]["clips_per_s"] >= report["step_clips_per_s"])
    assert report["tvl1_measurement"].startswith("interleaved")
