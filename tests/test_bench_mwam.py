"""The MWAM step benchmark: its straightforward reference matches mwam, and the CLI prints one JSON line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mwam
from reproduce.benchmarks.mwam_step import (
    MODALITIES,
    NaiveMWAMStep,
    check_no_sync,
    make_inputs,
    naive_frequency_components,
    time_step,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("shape", "window"), [((2, 3, 16, 16), 2), ((1, 2, 24, 40), 2), ((3, 1, 8, 8), 1), ((1, 3, 32, 16), 4)]
)
def test_naive_frequency_components_match_mwam(shape, window):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    low, high = naive_frequency_components(x, patch=8, window=window)
    ref_low, ref_high = mwam.frequency_components(x, patch=8, window=window)
    assert low.shape == ref_low.shape == (shape[0], shape[1], shape[2] // 8, shape[3] // 8, window, window)
    torch.testing.assert_close(low, ref_low, atol=1e-9, rtol=0)
    torch.testing.assert_close(high, ref_high, atol=1e-9, rtol=0)


def test_naive_step_weights_match_mwam_over_several_steps():
    fast = mwam.MWAM(modalities=MODALITIES, intervention="none")
    naive = NaiveMWAMStep(MODALITIES)
    for seed in range(4):
        inputs = {m: x.double() for m, x in make_inputs(batch=2, size=32, seed=seed).items()}
        k_fast, k_naive = fast.step(inputs), naive.step(inputs)
        assert k_naive.dtype == torch.float32 and k_naive.shape == (3,)
        torch.testing.assert_close(k_naive, k_fast, atol=1e-6, rtol=0)
        bank = torch.tensor([naive.bank[m] for m in MODALITIES], dtype=torch.float64)
        torch.testing.assert_close(bank, fast.bank.value, rtol=1e-9, atol=0)


def test_time_step_and_sync_check_on_cpu():
    calls = []
    timing = time_step(calls.append, {}, "cpu", warmup=1, iters=3)
    assert len(calls) == 4 and timing["iters"] == 3 and timing["median_ms"] >= 0
    inputs = make_inputs(batch=1, size=16)
    assert check_no_sync(mwam.MWAM(modalities=MODALITIES, intervention="none"), inputs) is None


def test_cli_prints_one_json_line(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "scripts/bench_mwam.py", "--batch", "2", "--size", "16", "--iters", "2", "--warmup", "1"]
    cmd += ["--device", "cpu", "--output", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    for key in ("benchmark", "batch", "shape", "modalities", "torch", "targets", "targets_met", "cpu"):
        assert key in report
    assert report["benchmark"] == "mwam_step" and report["batch"] == 2 and report["shape"] == [3, 16, 16]
    assert report["modalities"] == 3 and "cuda" not in report
    cpu = report["cpu"]
    for key in ("fast_ms", "naive_ms", "speedup", "fast_step_under_0.2ms", "no_host_sync", "device_name"):
        assert key in cpu
    assert cpu["fast_ms"] > 0 and cpu["naive_ms"] > 0 and cpu["no_host_sync"] is None
    assert isinstance(report["targets_met"]["cpu_speedup"], bool)
    assert json.loads(out.read_text()) == report
