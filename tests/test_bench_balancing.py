"""The balancing-plug-in step benchmark: one tiny interleaved run prints one JSON line with every variant's fields
(no timing assertions: the numbers belong to the benchmark, not to a test)."""

import importlib.util
import json
from pathlib import Path

import pytest

from reproduce.benchmarks.balancing_step import BASELINE, EPOCH_START, PER_EPOCH, VARIANTS, data_options

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("bench_balancing", ROOT / "scripts" / "bench_balancing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("size", [8, 16, 64, 112])
def test_data_options_give_images_of_the_size(size):
    options = data_options(size)
    assert options["crop"] == size and size < int(options["resize"] * 0.8)
    if size == 112:
        assert options["resize"] == 144  # the authors' proportion


def test_cli_one_tiny_interleaved_run(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--device", "cpu", "--batch", "2", "--size", "16", "--warmup", "0", "--rounds", "2", "--epoch-rounds", "1"]
    assert _script().main([*argv, "--val-samples", "8", "--threads", "1", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert json.loads(out.read_text()) == report
    assert report["benchmark"] == "balancing_step" and report["batch"] == 2 and report["size"] == 16
    assert report["threads"] == 1 and report["variants"] == list(VARIANTS) and report["torch"]
    assert "cuda" not in report

    cpu = report["cpu"]
    assert cpu["precision"] == "fp32" and cpu["threads"] == 1 and cpu["device_name"]
    assert cpu["order"] == list(VARIANTS) and set(cpu["variants"]) == set(VARIANTS)
    assert cpu["measurement"].startswith("interleaved, 2 rounds (order rotated each round), warm-up 0 discarded")
    assert "rotated" in cpu["rotation"]
    for name, entry in cpu["variants"].items():
        assert entry["n"] == 2 and len(entry["times_ms"]) == 2, name
        assert 0 < entry["min_ms"] <= entry["q1_ms"] <= entry["median_ms"] <= entry["q3_ms"] <= entry["max_ms"], name
        assert entry["ratio_to_plain"] > 0 and entry["host"] == VARIANTS[name]["host"], name
        assert 0 < entry["paired_ratio"]["min"] <= entry["paired_ratio"]["median"] <= entry["paired_ratio"]["max"]
    plain = cpu["variants"][BASELINE]
    assert plain["ratio_to_plain"] == 1.0 and plain["paired_ratio"] == {"median": 1.0, "min": 1.0, "max": 1.0}
    assert cpu["variants"][BASELINE]["plugin"] is None and cpu["variants"]["mwam_grad"]["mwam"] == "grad"
    agm, bb = cpu["variants"]["agm"], cpu["variants"]["agm_balancebenchmark"]
    assert agm["extra_forward_passes_per_step"] == {"with_gradient": 2, "without_gradient": 1}
    assert bb["extra_forward_passes_per_step"] == {"with_gradient": 0, "without_gradient": 3}
    assert agm["forward_passes_per_step"] == bb["forward_passes_per_step"] == 4
    assert "hypergradient_ms_estimate" in cpu["variants"][EPOCH_START]
    assert cpu["variants"]["crmt"]["host"] == "resnet18_crmt" and cpu["variants"]["crmt"]["ratio_to_crmt_host"] > 0

    assert set(cpu["per_epoch"]) == set(PER_EPOCH)
    for name, entry in cpu["per_epoch"].items():
        assert entry["n"] == 1 and entry["val_samples"] == 8 and entry["median_ms"] > 0, name
        assert entry["ms_per_val_sample"] > 0 and entry["in_plain_steps"] > 0, name


def test_cli_refuses_an_unknown_variant(capsys):
    with pytest.raises(SystemExit):
        _script().main(["--variants", "plain,nope"])
    assert "nope" in capsys.readouterr().err
