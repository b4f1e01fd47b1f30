"""``make bench-threads``: one training step per thread count, interleaved, median and spread, one JSON line."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

from reproduce.benchmarks import threads as bench

ROOT = Path(__file__).resolve().parents[1]


def test_rounds_interleave_the_thread_counts_and_restore_torch_s(monkeypatch):
    order, before, now = [], torch.get_num_threads(), [0.0]

    def fake_step(*args, **kwargs):  # costs as many (fake) seconds as torch has threads
        order.append(torch.get_num_threads())
        now[0] += float(torch.get_num_threads())

    monkeypatch.setattr(bench, "train_step", fake_step)
    report = bench.run_benchmark(
        "sf_md", threads=(1, 2), batch=2, size=32, warmup=1, rounds=3, steps=1, clock=lambda: now[0]
    )
    assert order == [1, 2, 2, 1, 1, 2, 2, 1] and torch.get_num_threads() == before  # the order alternates
    assert [len(report["threads"][n]["rounds"]) for n in ("1", "2")] == [3, 3]  # the warm-up round discarded
    assert report["threads"]["2"]["median_s"] == pytest.approx(2.0) and report["threads"]["1"]["max_s"] == 1.0
    assert report["fastest"] == 1 and report["median_ratio_to_first"]["2"] == pytest.approx(2.0)
    assert report["paired_ratio_to_first"]["2"] == pytest.approx({"median": 2.0, "min": 2.0, "max": 2.0})
    assert report["measurement"].startswith("interleaved, 3 rounds (order rotated each round), warm-up 1 discarded")


@pytest.mark.slow
def test_the_script_prints_one_json_line(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench_threads.py", "--batch", "2", "--size", "32", "--rounds", "1",
                                      "--warmup", "0", "--steps", "1"])  # fmt: skip
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "scripts" / "bench_threads.py"), run_name="__main__")
    assert done.value.code == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    report = json.loads(line)
    assert report["benchmark"] == "threads" and set(report["threads"]) == {"1", "2"}
    assert report["measurement"].startswith("interleaved, 1 round (") and report["warmup_rounds"] == 0
