"""The training-step benchmark: its variants train as claimed, and the CLI prints one JSON line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf
from reproduce.benchmarks.train_step import VARIANTS, build_trainer, make_batch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def one_thread():
    """Tiny tensors: more intra-op threads only stall on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _one_step(variant: str, root: Path, work: Path, batch: dict[str, torch.Tensor]):
    trainer = build_trainer(variant, "cpu", 4, root, work)
    before = {name: p.detach().clone() for name, p in trainer.host.named_parameters()}
    torch.manual_seed(123)  # the same modality-dropout draw in every variant
    trainer.train_step(batch)
    grads = {name: p.grad.detach().clone() for name, p in trainer.host.named_parameters() if p.grad is not None}
    changed = {name for name, p in trainer.host.named_parameters() if not torch.equal(p.detach(), before[name])}
    return trainer, grads, changed


def test_variants_step_and_grad_variant_scales_branch_gradients_by_k(tmp_path, one_thread):
    root = write_casia_surf(tmp_path / "surf", num_train=4, num_val=1, num_test=1, size=32)
    batch = make_batch(4, 32, "cpu", seed=3)
    steps = {variant: _one_step(variant, root, tmp_path, batch) for variant in VARIANTS}

    for variant, (trainer, _, changed) in steps.items():
        assert "shared_bone.4.weight" in changed, variant  # the classifier moved
        for m in trainer.host.modalities:
            assert f"special_bone_{m}.0.weight" in changed, (variant, m)  # every branch moved (weight decay at least)
    hybrid = steps["sf_md+mwam_hybrid"]
    assert {f"aux_heads.{m}.weight" for m in hybrid[0].host.modalities} <= hybrid[2]

    plain_trainer, plain, _ = steps["sf_md"]
    grad_trainer, edited, _ = steps["sf_md+mwam_grad"]
    k = grad_trainer.plugins["mwam"].mwam.grad_scale
    assert not torch.allclose(k, torch.ones_like(k))  # the inputs' spectra differ: K is not trivially 1
    assert plain.keys() == edited.keys()
    owner = {
        name: index
        for index, m in enumerate(grad_trainer.host.modalities)
        for name, _ in plain_trainer.host.branches()[m].named_parameters(prefix=f"special_bone_{m}")
    }
    assert len(owner) > 0 and any(name.startswith("shared_bone") for name in plain)
    nonzero = 0
    for name, g in plain.items():
        expected = g * k[owner[name]] if name in owner else g  # hooks scale only the branches
        torch.testing.assert_close(edited[name], expected, rtol=1e-6, atol=1e-12, msg=name)
        nonzero += int(name in owner and bool(g.abs().sum() > 0))
    assert nonzero > 0


def test_cli_prints_one_json_line(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "scripts/bench_train.py", "--device", "cpu", "--batch", "2", "--size", "32"]
    cmd += ["--rounds", "2", "--warmup", "0", "--loader-samples", "8", "--loader-batch", "4", "--loader-workers", "0,2"]
    cmd += ["--threads", "1", "--output", str(out)]  # tiny tensors: more threads only stall on a busy machine
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    for key in ("benchmark", "batch", "shape", "torch", "targets", "targets_met", "loader", "cpu"):
        assert key in report
    assert report["benchmark"] == "train_step" and report["batch"] == {"cpu": 2} and report["shape"] == [3, 32, 32]
    assert "cuda" not in report and report["targets_met"]["cuda_samples_per_s"] is None
    assert isinstance(report["targets_met"]["cpu_loader_keeps_up"], bool)

    cpu = report["cpu"]
    assert cpu["precision"] == "fp32" and cpu["threads"] == 1 and "compiled" not in cpu and cpu["memory_method"]
    assert set(cpu["eager"]) == set(VARIANTS)
    assert cpu["rounds"] == 2 and cpu["warmup_rounds"] == 0 and cpu["steps_per_timing"] == 1
    assert cpu["measurement"].startswith("interleaved, 2 rounds (order rotated each round), warm-up 0 discarded")
    for variant, entry in cpu["eager"].items():
        assert entry["step_ms"] > 0 and entry["samples_per_s"] > 0 and entry["peak_mem_mb"] >= 0, variant
        assert entry["step_ms"] == entry["median_ms"] and entry["n"] == 2 and len(entry["times_ms"]) == 2, variant
        assert entry["min_ms"] <= entry["q1_ms"] <= entry["median_ms"] <= entry["q3_ms"] <= entry["max_ms"], variant
        paired = entry["paired_ratio"]
        assert 0 < paired["min"] <= paired["median"] <= paired["max"], variant
        if variant != "sf_md":
            assert entry["mwam_step_ms"] > 0 and entry["mwam_share"] > 0, variant
            assert "overhead_ms" in entry and "hooks_ms_estimate" in entry, variant
    assert cpu["eager"]["sf_md"]["paired_ratio"] == {"median": 1.0, "min": 1.0, "max": 1.0}
    keeps = cpu["loader_keeps_up"]
    assert keeps["loader_samples_per_s"] > 0 and keeps["train_samples_per_s"] > 0

    loader = report["loader"]
    assert loader["samples"] == 8 and loader["batch"] == 4
    assert set(loader["configs"]) == {f"workers={w},cache={c}" for w in (0, 2) for c in (False, True)}
    for entry in loader["configs"].values():
        assert entry["samples_per_s"] > 0 and entry["first_pass_samples_per_s"] > 0
    assert json.loads(out.read_text()) == report


def test_eval_benchmark_times_the_three_ways_and_checks_they_agree(capsys):
    import importlib.util

    from reproduce.benchmarks.eval_subsets import subset_masks

    script = importlib.util.spec_from_file_location("bench_eval", ROOT / "scripts" / "bench_eval.py")
    module = importlib.util.module_from_spec(script)
    script.loader.exec_module(module)
    assert module.main(["--device", "cpu", "--batch", "2", "--size", "40", "--rounds", "2", "--warmup", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    cpu = report["cpu"]
    assert report["benchmark"] == "eval_subsets" and cpu["identical_outputs"] is True
    for key in ("one_pass_ms", "seven_subsets_per_subset_ms", "seven_subsets_encode_once_ms", "speedup"):
        assert cpu[key] > 0, key
    assert cpu["measurement"].startswith("interleaved, 2 rounds (order rotated each round), warm-up 0 discarded")
    assert set(cpu["timings"]) == {"one_pass", "per_subset", "encode_once"}
    for name, timing in cpu["timings"].items():
        assert timing["n"] == 2 and timing["min_ms"] <= timing["median_ms"] <= timing["max_ms"], name
        assert timing["paired_ratio"]["min"] <= timing["paired_ratio"]["median"] <= timing["paired_ratio"]["max"]
    assert cpu["one_pass_ms"] == cpu["timings"]["one_pass"]["median_ms"]
    assert [m[0].tolist() for m in subset_masks(1, torch.device("cpu"))][-1] == [True, True, True]
    assert len(subset_masks(1, torch.device("cpu"))) == 7


def test_compiled_mode_is_interleaved_too_and_keeps_a_failing_variant_s_error(tmp_path, one_thread, monkeypatch):
    """The CUDA-only ``--compile`` branch, on the CPU with torch.compile replaced (identity; one variant fails)."""
    from reproduce.benchmarks import train_step as bench

    calls = []

    def fake_compile(model, mode=None):
        calls.append(mode)
        if len(calls) == 3:  # the third variant (VARIANTS' order) fails
            raise RuntimeError("no compiler here")
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(bench, "_warm_up_process", lambda *args: None)  # time: not what is tested here
    root = write_casia_surf(tmp_path / "surf", num_train=2, num_val=1, num_test=1, size=32)
    result = bench._bench_device(torch.device("cpu"), 2, 32, 1, 0, root, tmp_path, compile_mode="default", steps=1)
    assert result["compile_mode"] == "default" and list(result["compiled"]) == list(VARIANTS) and calls == [None] * 3
    ok, failed = ["sf_md", "sf_md+mwam_grad"], "sf_md+mwam_hybrid"
    for variant in ok:
        entry = result["compiled"][variant]
        assert entry["compile_s"] >= 0 and entry["n"] == 1 and entry["step_ms"] > 0, variant
        assert entry["peak_mem_mb"] >= 0 and "paired_ratio" in entry, variant
    assert result["compiled"]["sf_md+mwam_grad"]["mwam_step_ms"] > 0
    assert result["compiled"][failed] == {"error": "RuntimeError: no compiler here"}
    assert set(result["eager"]) == set(VARIANTS) and result["measurement"].startswith("interleaved, 1 round ")
