"""Clean state: temporary files a kill -9 left mid-write are removed when the run starts; SIGTERM is honoured at any
point (after the last training step, during the final evaluation: checkpoint, exit 130, ``--resume`` continues);
a full disk and a read-only results root end in one clear ``OSError`` naming the path (and the free space)."""

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import mwam_harness.datasets.files as files
from mwam_harness.datasets.files import (
    NoSpaceError,
    NotWritableError,
    atomic_write,
    remove_stale_temporaries,
    temporaries_of,
)
from reproduce.checkpoints import load_checkpoint
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config

SECTIONS = {"train": {"epochs": 2}}


def plant(path: Path, age_s: float) -> Path:
    """A temporary file as a writer killed ``age_s`` seconds ago left it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a checkpoint")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


# ---------------------------------------------------------------- stale temporary files
def test_stale_temporaries_of_the_run_are_removed_when_it_starts(tmp_path, toy, root):
    config = toy_config(root, **SECTIONS)
    registry = Registry(tmp_path / "runs")
    run_dir = registry.run_dir(config)
    stale = [
        plant(run_dir / ".last.pt.k9x2ab.tmp.pt", age_s=3600),
        plant(run_dir / ".model.pt.u7y1cd.tmp.pt", age_s=3600),
        plant(registry.root / f".{config.key}.json.q3w4er.tmp.json", age_s=3600),
    ]
    live = plant(run_dir / ".last.pt.livewr.tmp.pt", age_s=0)  # a writer still at work keeps its file fresh
    other_run = plant(registry.root / "0123456789abcdef" / ".last.pt.zz11yy.tmp.pt", age_s=3600)
    not_a_temporary = plant(run_dir / "notes.last.pt.tmp.pt", age_s=3600)

    class Probe(Trainer):
        def fit(self) -> None:
            self.present_at_fit = [path.exists() for path in stale]
            super().fit()

    trainer = Probe(config, registry, RUNTIME)
    trainer.run()
    assert trainer.present_at_fit == [False, False, False], "removed before the first step"
    assert live.exists() and other_run.exists() and not_a_temporary.exists()


def test_remove_stale_temporaries_keeps_fresh_ones_and_the_file_itself(tmp_path):
    target = atomic_write(tmp_path / "last.pt", lambda tmp: tmp.write_bytes(b"good"))
    old = plant(tmp_path / ".last.pt.aaaaaa.tmp.pt", age_s=120)
    fresh = plant(tmp_path / ".last.pt.bbbbbb.tmp.pt", age_s=0)
    assert temporaries_of(target) == [old, fresh]
    assert remove_stale_temporaries(target, min_age_s=60) == [old]
    assert target.read_bytes() == b"good" and fresh.exists() and not old.exists()


# ---------------------------------------------------------------- SIGTERM at any point
class SignalAfterLastStep(Trainer):
    """SIGTERM to this process during the last epoch's validation, after its last training step."""

    def validate(self, epoch, entry) -> None:
        if epoch == self.config.train.epochs - 1:
            os.kill(os.getpid(), signal.SIGTERM)
        super().validate(epoch, entry)


def test_sigterm_after_the_last_training_step_stops_and_resume_finishes(tmp_path, toy, root):
    config = toy_config(root, **SECTIONS)
    expected = Trainer(config, Registry(tmp_path / "whole"), RUNTIME).run()

    registry = Registry(tmp_path / "runs")
    with pytest.raises(TrainingInterruptedError, match=r"stopped after epoch 1; checkpoint .*--resume"):
        SignalAfterLastStep(config, registry, RUNTIME).run()
    assert not registry.has(config)
    state = load_checkpoint(registry.run_dir(config) / "last.pt")
    assert (state["epoch"], state["step_in_epoch"]) == (2, 0)

    resumed = Trainer(config, registry, RUNTIME)
    result = resumed.run(resume=True)
    assert result["history"] == expected["history"] and result["subsets"] == expected["subsets"]


CHILD = """
import argparse, json, os, signal, sys
from mwam_harness.catalog import HOSTS, TASKS
from mwam_harness.models.registry import ModelInfo
from tests.toy_run import RUNTIME, ToyHost, ToyTask, toy_config
import reproduce.cli as cli
from reproduce.engine.trainer import Trainer
from reproduce.runs.registry import Registry

HOSTS.discover(); TASKS.discover()
HOSTS.entries["toy"] = ModelInfo("toy", ToyHost)
TASKS.entries["toy"] = ToyTask
root, results, sections, runtime = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])


class SignalDuringEvaluation(Trainer):
    sent = False

    def evaluate_subsets(self, *args, **kwargs):
        if not self.sent:  # the first subset of the final evaluation: a real SIGTERM to this process
            SignalDuringEvaluation.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
        return super().evaluate_subsets(*args, **kwargs)


def train(args):
    SignalDuringEvaluation(toy_config(root, **sections), Registry(results), RUNTIME.__class__(**runtime)).run()
    return 0


parser = argparse.ArgumentParser()
parser.set_defaults(run=train)
cli.build_parser = lambda: parser  # the CLI's own error handling around the command (exit codes)
sys.exit(cli.main([]))
"""


def test_sigterm_during_the_final_evaluation_exits_130_and_resume_reruns_it(tmp_path, toy, root):
    config = toy_config(root, **SECTIONS)
    runtime = dataclasses.replace(RUNTIME, checkpoint_every=0)  # the trained state is on disk all the same
    expected = Trainer(config, Registry(tmp_path / "whole"), runtime).run()

    results = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(results), json.dumps(SECTIONS), json.dumps(runtime.to_dict())],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 130, child.stderr[-3000:]
    assert "during the evaluation of run" in child.stderr and "--resume" in child.stderr
    registry = Registry(results)
    assert not registry.has(config)
    state = load_checkpoint(registry.run_dir(config) / "last.pt")
    assert (state["epoch"], state["step_in_epoch"]) == (2, 0), "the trained state, not an earlier one"

    resumed = Trainer(config, registry, runtime)
    result = resumed.run(resume=True)
    assert result["history"] == expected["history"] and result["subsets"] == expected["subsets"]
    assert not (registry.run_dir(config) / "last.pt").exists()


# ---------------------------------------------------------------- full disk, read-only results root
@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4352 vs 4240"),
    ],
    ids=["ENOSPC", "torch-unexpected-pos"],
)
def test_a_full_disk_at_a_checkpoint_names_the_path_and_the_free_space(tmp_path, toy, root, monkeypatch, failure):
    config = toy_config(root, **SECTIONS)
    registry = Registry(tmp_path / "runs")
    checkpoint = registry.run_dir(config) / "last.pt"
    save = torch.save
    calls = []

    def full_after_one(obj, f, *args, **kwargs):  # the first checkpoint is written, the second finds the disk full
        if Path(f).name.startswith(".last.pt."):
            calls.append(f)
            if len(calls) == 2:
                Path(f).write_bytes(b"part of it")
                raise failure
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_after_one)
    trainer = Trainer(config, registry, RUNTIME)
    with pytest.raises(NoSpaceError) as caught:
        trainer.run()
    error = caught.value
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert str(checkpoint) in str(error) and " free" in str(error) and "no space left on device" in str(error)
    assert not registry.has(config) and temporaries_of(checkpoint) == []
    assert load_checkpoint(checkpoint)["epoch"] == 1, "the last good checkpoint is intact"


def test_a_full_disk_at_any_atomic_write_is_named(tmp_path):
    def full(tmp: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(NoSpaceError, match=r"no space left on device writing .*result\.json .* free"):
        atomic_write(tmp_path / "result.json", full)
    assert list(tmp_path.iterdir()) == []


def test_a_results_root_that_refuses_writes_is_named_at_the_first_write(tmp_path, toy, root, monkeypatch):
    config = toy_config(root, **SECTIONS)
    registry = Registry(tmp_path / "runs")

    def refuse(path: Path) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(path.parent / f".{path.name}.x.tmp"))

    monkeypatch.setattr(files, "_temporary_beside", refuse)
    with pytest.raises(PermissionError) as caught:
        Trainer(config, registry, RUNTIME).run()
    assert isinstance(caught.value, NotWritableError)
    message = str(caught.value)
    assert f"cannot write {registry.run_dir(config)}" in message and "is not writable" in message, message
    assert not registry.has(config)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into a 0o555 folder")
def test_a_read_only_results_root_is_named(tmp_path, toy, root):
    config = toy_config(root, **SECTIONS)
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as caught:
            Trainer(config, Registry(results / "runs"), RUNTIME).run()
        assert str(results) in str(caught.value) and "Traceback" not in str(caught.value)
    finally:
        results.chmod(0o755)
