"""kill -9 in the middle of a run with balancing plug-ins, then ``--resume``: the same history and weights as the
run that was never interrupted. The process is really killed (SIGKILL: no handler, no last checkpoint written), so
the resume starts from the checkpoint of the last finished epoch, with every plug-in's saved state (AGM's running
scores, MSLR's accuracy memory, MSES's minima and best states, LFM's lambdas)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reproduce.engine.trainer import Trainer
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config, weights

PLUGINS = [
    {"name": "agm", "options": {"variant": "balancebenchmark"}},
    {"name": "mslr", "options": {"memory": 2}},
    {"name": "mses", "options": {"patience": 1}},
]
SECTIONS = {"train": {"epochs": 4}, "plugins": PLUGINS, "mwam": {"intervention": "grad"}}
LFM_SECTIONS = {"train": {"epochs": 3}, "plugins": [{"name": "lfm", "options": {"schedule": "learnable"}}],
                "mwam": {"intervention": "grad"}}  # fmt: skip

CHILD = """
import json, os, signal, sys
from mwam_harness.catalog import HOSTS, TASKS
from mwam_harness.models.registry import ModelInfo
from tests.toy_run import RUNTIME, ToyHost, ToyTask, toy_config
from reproduce.engine.trainer import Trainer
from reproduce.runs.registry import Registry

HOSTS.discover(); TASKS.discover()
HOSTS.entries["toy"] = ModelInfo("toy", ToyHost)
TASKS.entries["toy"] = ToyTask
root, results, sections, kill_at = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])

def kill(trainer, step):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

Trainer(toy_config(root, **sections), Registry(results), RUNTIME, callbacks=[kill]).run()
"""


@pytest.fixture
def toy_root(toy, root):
    return root


@pytest.mark.parametrize(("sections", "kill_at"), [(SECTIONS, 10), (LFM_SECTIONS, 6)], ids=["agm+mslr+mses", "lfm"])
def test_kill_9_and_resume_give_the_same_numbers(tmp_path, toy_root, sections, kill_at):
    config = toy_config(toy_root, **sections)
    whole = Trainer(config, Registry(tmp_path / "whole"), RUNTIME)
    expected = whole.run()

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(toy_root), str(killed), json.dumps(sections), str(kill_at)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    registry = Registry(killed)
    assert not registry.has(config) and (registry.run_dir(config) / "last.pt").exists(), "killed after an epoch"

    resumed = Trainer(config, registry, RUNTIME)
    result = resumed.run(resume=True)
    assert result["history"] == expected["history"] and result["subsets"] == expected["subsets"]
    assert result["plugins"] == expected["plugins"]
    assert torch.equal(weights(resumed.host), weights(whole.host))
