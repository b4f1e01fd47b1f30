"""The command line of one run and of a plan: ``run CONFIG.yaml [--set ...]``, ``table N --dry-run [--json]``,
``check-data``, and ``--nproc`` (torchrun)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf
from reproduce.cli import main
from reproduce.runs.config import RunConfig
from reproduce.runs.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN = {
    "data": {"dataset": "casia_surf", "synthetic": "smoke", "options": {"resize": 48, "crop": 36}},
    "host": {"name": "sf_md"},
    "train": {"epochs": 1, "batch_size": 8, "iterations_per_epoch": 2},
    "optim": {"lr": 0.01},
    "schedule": {"warmup_epochs": 0, "milestones": []},
    "eval": {"batch_size": 32},
    "runtime": {"progress": False, "wandb": "disabled", "val_every": 0},
}


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("MWAM_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


def test_run_trains_one_yaml_run_with_overrides_and_saves_its_config(tmp_path, results, capsys):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(TINY_RUN))
    assert main(["run", str(path), "--set", "mwam.intervention=grad", "--set", "seed=3", "--column", "mine"]) == 0
    out = capsys.readouterr()
    assert "rgb+depth+ir" in out.out and "SYNTHETIC" in out.err
    (entry,) = (results / "runs").glob("*.json")
    result = json.loads(entry.read_text())
    assert result["variant"] == "sf_md+mwam-grad" and result["seed"] == 3 and result["runtime"]["column"] == "mine"
    saved = results / "runs" / result["key"] / "config.yaml"
    again = RunConfig.from_yaml(saved)
    assert again.key == result["key"] and again.data.root and again.data.synthetic is None
    # the saved file reruns as the same run (nothing is trained again), from any directory
    os.chdir(tmp_path)
    assert main(["run", str(saved)]) == 0
    assert len(list((results / "runs").glob("*.json"))) == 1


def test_bad_configuration_files_are_clear_errors(tmp_path, results, capsys):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**TINY_RUN, "train": {"epoch": 1}}))
    assert main(["run", str(path)]) == 2
    assert "train: unknown keys ['epoch']" in capsys.readouterr().err
    path.write_text(yaml.safe_dump(TINY_RUN))
    assert main(["run", str(path), "--set", "optim.lr"]) == 2
    assert "KEY.PATH=VALUE" in capsys.readouterr().err


def test_dry_run_lists_every_run_its_key_state_config_and_learning_rates(results, capsys):
    assert main(["table", "4", "--preset", "smoke", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "Table 4, preset smoke (SYNTHETIC data): 5 runs, 0 finished, 5 to train" in text
    assert "sf (MMANet teacher) (dependency)" in text and "needs: teacher " in text
    assert "lr per epoch: 0-1: 0.01" in text and "  config:\n    data:" in text
    assert not (results / "runs").exists(), "a dry run trains nothing"
    assert main(["table", "4", "--preset", "smoke", "--dry-run", "--json", "--seeds", "0", "1"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan) == 9, "four columns for two seeds and one teacher for both"
    roles = [p["role"] for p in plan]
    assert roles.count("dependency") == 1
    assert roles.index("dependency") < [p["column"] for p in plan].index("MMANet"), "the teacher first"
    teacher = plan[roles.index("dependency")]["key"]
    students = [p for p in plan if p["column"].startswith("MMANet")]
    assert students and all(p["dependencies"] == {"teacher": teacher} for p in students)
    assert all(len(p["key"]) == 16 and p["status"] == "to train" and len(p["lr_per_epoch"]) == 2 for p in plan)


def test_dry_run_writes_nothing_and_its_keys_are_those_of_the_generated_data(results, tmp_path, capsys, monkeypatch):
    """A synthetic set not generated yet is fingerprinted from a scratch copy, deleted at once: no file anywhere,
    and every key equals the one computed once the set is generated (what training uses)."""
    import tempfile

    from mwam_harness.datasets import dataset_spec
    from reproduce.paths import synthetic_dir

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    scratch_before = set(Path(tempfile.gettempdir()).glob("mwam-dry-run-*"))
    assert main(["table", "4", "--preset", "smoke", "--dry-run", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert not results.exists() and not any(work.iterdir()), "a dry run writes nothing"
    assert set(Path(tempfile.gettempdir()).glob("mwam-dry-run-*")) == scratch_before, "its scratch copy is gone"
    spec = dataset_spec("casia_surf")
    spec.write_synthetic(synthetic_dir("casia_surf", "smoke"), **spec.preset("smoke").generator)
    assert main(["table", "4", "--preset", "smoke", "--dry-run", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert [p["key"] for p in before] == [p["key"] for p in after] and all(p["key"] for p in before)
    assert [p["lr_per_epoch"] for p in before] == [p["lr_per_epoch"] for p in after]


def test_dry_run_of_the_paper_preset_without_data_shows_the_settings(capsys, monkeypatch):
    monkeypatch.delenv("MWAM_DATA_ROOT", raising=False)
    assert main(["table", "4", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    mmanet = next(p for p in plan if p["column"] == "MMANet")
    assert mmanet["key"] is None and mmanet["status"] == "unknown (no data)"
    assert mmanet["config"]["schedule"] == {"preset": "paper"}
    assert mmanet["schedule"]["milestones"] == [16, 33, 50] and mmanet["schedule"]["warmup_epochs"] == 0
    lrs = mmanet["lr_per_epoch"]
    assert len(lrs) == 100 and lrs[:16] == pytest.approx([1e-3] * 16)  # A.3: no warm-up
    assert lrs[16] == pytest.approx(1e-4) and lrs[50] == pytest.approx(1e-6)
    assert mmanet["config"]["train"]["amp"] == "off" and mmanet["config"]["eval"]["select"] == "best_val"
    assert mmanet["method_options"]["aux_loss"] == "released", "defaults are shown too"
    # Without --with released, no released column is planned.
    assert not any("[released]" in p["column"] for p in plan)


def test_dry_run_of_the_released_extension_shows_the_released_schedules(capsys, monkeypatch):
    monkeypatch.delenv("MWAM_DATA_ROOT", raising=False)
    assert main(["table", "4", "--with", "released", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    columns = [p["column"] for p in plan]
    assert {"SF-MD [released]", "MMANet [released]", "SF-MD +MWAM [released]", "MMANet +MWAM [released]"} <= set(
        columns
    )
    student = next(p for p in plan if p["column"] == "MMANet [released]")
    lrs = student["lr_per_epoch"]
    assert lrs[0] is None and lrs[1] == 0.0 and lrs[2:7] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3])
    assert lrs[21] == pytest.approx(1e-3) and lrs[22] == pytest.approx(1e-4) and lrs[56] == pytest.approx(1e-6)
    # The released student's teacher is SF trained by the released SF schedule (drops at 17, 34, 51), not MMANet's.
    teachers = [p for p in plan if p["role"] == "dependency" and p["schedule"].get("preset") == "released"]
    assert len(teachers) == 1 and teachers[0]["schedule"]["milestones"] == [17, 34, 51]
    assert teachers[0]["lr_per_epoch"][0] is None and teachers[0]["lr_per_epoch"][16:18] == pytest.approx([1e-3, 1e-4])
    mwam = next(p for p in plan if p["column"] == "MMANet +MWAM [released]")
    assert mwam["config"]["mwam"]["options"] == {"gamma": 1.0, "lam": 10.0, "soft_start": True, "t_rule": "bank"}


def test_check_data_reports_every_problem_with_file_and_line(tmp_path, capsys):
    root = write_casia_surf(tmp_path / "surf", num_train=4, num_val=2, num_test=2, size=24)
    assert main(["check-data", "casia_surf", str(root), "--no-progress"]) == 0
    assert "every listed file reads and decodes (train 4, val 2, test 2 samples)" in capsys.readouterr().out
    lines = (root / "train_list.txt").read_text().splitlines()
    broken = lines[0].split()[1]
    (root / broken).write_bytes(b"not a jpeg")
    (root / lines[1].split()[2]).unlink()
    lines[2] = lines[2].rsplit(" ", 1)[0] + " 7"
    (root / "train_list.txt").write_text("\n".join(lines) + "\nonly three fields\n")
    assert main(["check-data", "casia_surf", str(root), "--no-progress"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4, out
    assert any("train_list.txt:2: missing ir image" in line for line in out)
    assert any("train_list.txt:3: unknown label '7'" in line for line in out)
    assert any("train_list.txt:5: expected 4 fields" in line for line in out)
    assert any(broken in line and "unreadable" in line and "line 1" in line for line in out)
    cv2.imwrite(str(root / broken), np.zeros((4, 4, 3), np.uint8))


def test_check_data_of_a_missing_root(tmp_path, capsys):
    assert main(["check-data", "casia_surf", str(tmp_path / "nowhere"), "--no-progress"]) == 1
    assert "not a directory" in capsys.readouterr().out


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
@pytest.mark.slow
def test_torchrun_trains_a_run_in_two_processes(tmp_path, results):
    """``torchrun --nproc_per_node 2 -m reproduce run`` (what ``table N --nproc 2`` starts for every run): one
    registry entry, written by rank 0, recording two processes."""
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(TINY_RUN))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += ["-m", "reproduce", "run", str(path), "--results-dir", str(results)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (entry,) = (results / "runs").glob("*.json")
    result = json.loads(entry.read_text())
    assert result["world_size"] == 2 and result["per_process_batch"] == 4 and not result["sync_batchnorm"]
    assert Registry(results / "runs").weights_path(result["key"]).exists()
    assert done.stdout.count("rgb+depth+ir") == 1, "rank 0 prints the result"
