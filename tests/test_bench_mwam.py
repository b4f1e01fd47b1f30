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
    time_step_with_mwam,
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


class ToyHost(torch.nn.Module):
    """Two linear branches on pooled images: the Host contract's ``modalities`` and ``branches()``."""

    modalities = ("rgb", "depth")

    def __init__(self) -> None:
        super().__init__()
        self.encoders = torch.nn.ModuleDict({m: torch.nn.Linear(3, 2) for m in self.modalities})

    def branches(self) -> dict[str, torch.nn.Module]:
        return dict(self.encoders)

    def forward(self, inputs):
        return sum(self.encoders[m](inputs[m].mean(dim=(2, 3))) for m in self.modalities)


def test_time_step_with_mwam_interleaves_and_hooks_only_the_mwam_variant():
    torch.manual_seed(0)
    host = ToyHost()
    inputs = {m: x for m, x in make_inputs(batch=2, size=16).items() if m in host.modalities}
    optimizer = torch.optim.SGD(host.parameters(), lr=0.1)
    seen = []

    def step(x, module=None):
        seen.append((module is not None, any(p._backward_hooks for p in host.parameters())))
        if module is not None:
            module.step(x)
        optimizer.zero_grad(set_to_none=True)
        host(x).square().mean().backward()
        optimizer.step()

    report = time_step_with_mwam(step, host, inputs, "cpu", warmup=1, iters=3)
    # rounds of (plain, mwam, mwam alone) rotated: P M A, M A P, A P M, P M A -- the steps' calls:
    assert [with_mwam for with_mwam, _ in seen] == [False, True, True, False, False, True, False, True]
    assert all(hooked == with_mwam for with_mwam, hooked in seen)  # the plain step never runs MWAM's hooks
    assert not any(p._backward_hooks for p in host.parameters())
    assert report["measurement"].startswith("interleaved, 3 rounds (order rotated each round), warm-up 1 discarded")
    for key in ("train_step_ms", "train_step_mwam_ms", "mwam_step_ms"):
        assert report[key]["n"] == 3 and len(report[key]["times_ms"]) == 3, key
    assert report["train_step_ms"]["paired_ratio"] == {"median": 1.0, "min": 1.0, "max": 1.0}
    assert report["mwam_over_plain_paired"] == report["train_step_mwam_ms"]["paired_ratio"]
    assert report["peak_memory_mb"] is None and report["mwam_share_of_step"] > 0


def test_cli_prints_one_json_line(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "scripts/bench_mwam.py", "--batch", "2", "--size", "16", "--rounds", "3", "--warmup", "1"]
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
    assert cpu["measurement"].startswith("interleaved, 3 rounds (order rotated each round), warm-up 1 discarded")
    assert cpu["fast_ms"] == cpu["fast"]["median_ms"] and cpu["naive"]["n"] == 3 and len(cpu["fast"]["times_ms"]) == 3
    assert (
        cpu["fast"]["min_ms"] <= cpu["fast"]["q1_ms"] <= cpu["fast_ms"] <= cpu["fast"]["q3_ms"] <= cpu["fast"]["max_ms"]
    )
    paired = cpu["speedup_paired"]
    assert paired == cpu["naive"]["paired_ratio"] and 0 < paired["min"] <= paired["median"] <= paired["max"]
    assert isinstance(report["targets_met"]["cpu_speedup"], bool)
    assert json.loads(out.read_text()) == report
