"""Runners: what trains one run. ``run(config, registry, runtime, resume, force) -> result``.

Runners live in the harness's catalog (:data:`mwam_harness.catalog.RUNNERS`). The engine's
:class:`~reproduce.engine.trainer.Trainer` is one runner (``trainer``); a host whose training loop belongs to
another library (YOLOv8's ultralytics: ``reproduce/yolo/runner.py``) registers its own (``@register_runner``) and
names it in its model registration (``models.register_model(..., runner=...)``). :func:`execute` trains a plan
(:func:`reproduce.engine.plan.plan_runs`) in order, dependencies first, in this process or -- with ``nproc > 1`` --
each run in ``nproc`` processes started by torchrun.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from mwam_harness.catalog import RUNNERS
from reproduce.engine.plan import PlannedRun
from reproduce.runs.config import RunConfig
from reproduce.runs.registry import Registry, write_config
from reproduce.runs.runtime import Runtime

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


class Runner(Protocol):
    def run(
        self, config: RunConfig, registry: Registry, runtime: Runtime, resume: bool = False, force: bool = False
    ) -> dict[str, Any]:
        """Train (or reuse) ``config`` and return its registry entry."""
        ...


def register_runner(name: str) -> Callable[[F], F]:
    """Decorator: register a runner factory (a class or function called with the step callbacks of the run, None
    for a dependency) as ``name`` -- what a host's ``register_model(..., runner=name)`` names."""
    return RUNNERS.register(name)


@register_runner("trainer")
class TrainerRunner:
    """The engine's trainer (``reproduce.engine.trainer.Trainer``) as a runner."""

    def __init__(self, callbacks: list[Callable[..., None]] | None = None) -> None:
        self.callbacks = callbacks

    def run(
        self, config: RunConfig, registry: Registry, runtime: Runtime, resume: bool = False, force: bool = False
    ) -> dict[str, Any]:
        from reproduce.engine.trainer import Trainer

        return Trainer(config, registry, runtime, callbacks=self.callbacks).run(resume=resume, force=force)


class TorchrunRunner:
    """Trains a run in ``nproc`` processes: ``python -m torch.distributed.run --standalone --nproc_per_node N -m
    reproduce run <key>/config.yaml``, then reads its entry from the registry."""

    def __init__(self, nproc: int) -> None:
        if nproc < 2:
            raise ValueError(f"TorchrunRunner needs at least 2 processes, got {nproc}")
        self.nproc = nproc

    def command(self, config_file: str, registry: Registry, resume: bool, force: bool) -> list[str]:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.nproc}"]
        command += ["-m", "reproduce", "run", config_file, "--results-dir", str(registry.root.parent)]
        return command + (["--resume"] if resume else []) + (["--force"] if force else [])

    def run(
        self, config: RunConfig, registry: Registry, runtime: Runtime, resume: bool = False, force: bool = False
    ) -> dict[str, Any]:
        if registry.has(config) and not force:
            return registry.load(config)
        path = write_config(registry.config_path(config), config, runtime)
        command = self.command(str(path), registry, resume, force)
        log.info("torchrun: %s", " ".join(command))
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"run {config.key} failed in torchrun (exit status {done.returncode}): {' '.join(command)}"
            )
        return registry.load(config)


def runner_for(config: RunConfig, nproc: int = 1, callbacks: list | None = None) -> Runner:
    """The runner of ``config``'s host (in ``nproc`` processes when > 1)."""
    from models import model_info

    name = model_info(config.host.name).runner
    if name not in RUNNERS:
        raise ValueError(f"host {config.host.name!r} names runner {name!r}, which is not registered: {RUNNERS.names()}")
    if nproc > 1:
        if name != "trainer":
            raise ValueError(f"runner {name!r} of host {config.host.name!r} does not run under --nproc")
        return TorchrunRunner(nproc)
    return RUNNERS.get(name)(callbacks)


def execute(
    plan: Sequence[PlannedRun],
    registry: Registry,
    resume: bool = False,
    force: bool = False,
    nproc: int = 1,
    callbacks: list | None = None,
) -> dict[str, dict[str, Any]]:
    """Train the runs of ``plan`` in order; returns ``{key: registry entry}``. ``force`` retrains the requested
    runs; a dependency is trained only when the registry lacks it or its weights (a finished teacher is reused).
    ``callbacks`` (called after every step) apply to the requested runs."""
    results = {}
    for i, planned in enumerate(plan, start=1):
        config, runtime = planned.config, planned.runtime
        label = runtime.column or config.host.name
        if planned.requested:
            retrain = force
        else:
            missing_weights = registry.has(config) and not registry.weights_path(config).exists()
            if missing_weights:
                log.warning("dependency run %s has a result but no weights: training it again", config.key)
            retrain = missing_weights
        if not (registry.has(config) and not retrain):
            log.info(
                "run %d/%d: %s [%s]%s", i, len(plan), label, config.key, "" if planned.requested else " (dependency)"
            )
        runner = runner_for(config, nproc, callbacks if planned.requested else None)
        results[planned.key] = runner.run(config, registry, runtime, resume, retrain)
    return results


def run_config(
    config: RunConfig,
    registry: Registry | None = None,
    runtime: Runtime | None = None,
    resume: bool = False,
    force: bool = False,
    nproc: int = 1,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Train ``config`` -- its dependencies first -- unless the registry has it; returns its registry entry."""
    from reproduce.engine.plan import plan_runs

    registry = registry or Registry()
    plan = plan_runs([(config, runtime or Runtime())])
    return execute(plan, registry, resume, force, nproc, callbacks)[config.key]
