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
    order, before = [], torch.get_num_threads()
    monkeypatch.setattr(bench, "step_seconds", lambda *a, **k: float(torch.get_num_threads()) + len(order) * 1e-3)
    real_set = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (order.append(n), real_set(n))[1])
    report = bench.run_benchmark("sf_md", threads=(1, 2), batch=2, size=32, warmup=1, rounds=3, steps=1)
    assert order[:8] == [1, 2, 1, 2, 1, 2, 1, 2] and torch.get_num_threads() == before
    assert [len(report["threads"][n]["rounds"]) for n in ("1", "2")] == [3, 3]  # the warm-up round discarded
    assert report["fastest"] == 1 and report["median_ratio_to_first"]["2"] == pytest.approx(2.0, rel=0.01)


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
