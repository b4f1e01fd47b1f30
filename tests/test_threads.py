"""``--threads N``: torch's CPU threads while a run trains (a runtime setting: never part of the run's key), for
the engine's trainer and for ultralytics' loop, restored afterwards."""

from __future__ import annotations

import argparse

import pytest
import torch

from reproduce.engine import runner as runner_module
from reproduce.engine.plan import plan_runs
from reproduce.runargs import add_runtime_arguments, runtime_from
from reproduce.runs.config import ConfigError, RunConfig
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime


def test_the_flag_sets_the_runtime_and_bad_values_are_refused(capsys):
    parser = argparse.ArgumentParser()
    add_runtime_arguments(parser)
    assert runtime_from(parser.parse_args(["--threads", "1"])).threads == 1
    assert runtime_from(parser.parse_args([])).threads is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match=r"runtime\.threads"):
            Runtime(threads=bad)
    assert Runtime.from_dict(Runtime(threads=3).to_dict()).threads == 3  # what a torchrun rank reads back


def test_execute_trains_with_the_runtime_s_threads_and_restores_them(tmp_path, monkeypatch):
    seen = []

    class Recording:
        def __init__(self, callbacks=None) -> None: ...

        def run(self, config, registry, runtime, resume=False, force=False):
            seen.append(torch.get_num_threads())
            return {"key": config.key}

    monkeypatch.setattr(runner_module, "runner_for", lambda config, nproc, callbacks=None: Recording())
    config = RunConfig.from_dict({"data": {"dataset": "casia_surf", "synthetic": "smoke"}, "host": {"name": "sf"}})
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    monkeypatch.setenv("MWAM_RESULTS_DIR", str(tmp_path))
    registry = Registry(tmp_path / "runs")
    runner_module.execute(plan_runs([(config, Runtime(threads=target))]), registry)
    runner_module.execute(plan_runs([(config, Runtime())]), registry)
    assert seen == [target, before] and torch.get_num_threads() == before


def test_ultralytics_loop_gets_the_threads_too():
    from ultralytics.utils import torch_utils

    from reproduce.yolo.runner import ultralytics_cpu_threads

    default = torch_utils.NUM_THREADS
    with ultralytics_cpu_threads(3):
        assert torch_utils.NUM_THREADS == 3  # what its select_device passes to torch.set_num_threads on the CPU
    with ultralytics_cpu_threads(None):
        assert torch_utils.NUM_THREADS == default
    assert torch_utils.NUM_THREADS == default
