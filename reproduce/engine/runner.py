"""Runners: what trains one run. ``run(config, registry, runtime, resume, force) -> result``.

Runners live in the harness's catalog (:data:`mwam_harness.catalog.RUNNERS`). The engine's
:class:`~reproduce.engine.trainer.Trainer` is one runner (``trainer``); a host whose training loop belongs to
another library (YOLOv8's ultralytics: ``reproduce/yolo/runner.py``) registers its own (``@register_runner``) and
names it in its model registration (``models.register_model(..., runner=...)``). :func:`execute` trains a plan
(:func:`reproduce.engine.plan.plan_runs`) in order, dependencies first, in this process or -- with ``nproc > 1`` --
each run in ``nproc`` processes started by torchrun.

Every run is trained under its lock (:meth:`Registry.lock <reproduce.runs.registry.Registry.lock>`), held from the
registry check to the registry write: a second process asking for the same run waits and then reuses the result
(``wait=False``, ``--no-wait``: raises ``RunLockedError`` naming the holder); runs of different keys (tables that
share some runs) train at once. With torchrun the command holds the lock for its ranks, which die with it: torchrun
gets SIGTERM when the command dies (``PR_SET_PDEATHSIG``; it stops its ranks), the ranks get SIGKILL when torchrun
dies, and rank 0 records the run only while the command still holds the lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from mwam_harness.catalog import RUNNERS
from reproduce.engine.plan import PlannedRun
from reproduce.runs.config import RunConfig
from reproduce.runs.lock import parent_env, parent_lock
from reproduce.runs.registry import Registry, write_config
from reproduce.runs.runtime import Runtime

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(signum: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux; False elsewhere)."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0


def _child_dies_with_us(signum: int) -> Callable[[], None] | None:
    """A ``preexec_fn``: the child gets ``signum`` when this process dies, and exits if it already has."""
    prctl, parent = _prctl(), os.getpid()  # looked up before the fork: the child only calls it
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:  # we died between the fork and the prctl
            os._exit(1)

    return preexec


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
    reproduce run <key>/config.yaml``, then reads its entry from the registry. It holds the run's lock while torchrun
    runs and names it to the ranks (``$MWAM_PARENT_RUN_LOCK``: they take no lock of their own); torchrun gets
    SIGTERM when this process dies, even by SIGKILL, and stops the ranks."""

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
        from reproduce.runs.runtime import config_for_processes

        # What the ranks train: with BatchNorm not synchronised (CPU, or sync_batchnorm off) the process count is part
        # of the run (train.batchnorm_shards); plan_table / plan_figure have set it for the runs they request already.
        config = config_for_processes(config, runtime, self.nproc)
        with registry.lock(config) as hold:  # already held when called by execute (the lock is re-entrant)
            if registry.has(config) and (not force or hold.updated):
                return registry.load(config)
            path = write_config(registry.config_path(config), config, runtime)
            command = self.command(str(path), registry, resume, force)
            log.info("torchrun: %s", " ".join(command))
            env = {**os.environ, **parent_env(hold)}
            done = subprocess.run(command, check=False, env=env, preexec_fn=_child_dies_with_us(signal.SIGTERM))
        if done.returncode != 0:
            raise RuntimeError(
                f"run {config.key} failed in torchrun (exit status {done.returncode}): {' '.join(command)}"
            )
        return registry.load(config)


def runner_for(config: RunConfig, nproc: int = 1, callbacks: list | None = None) -> Runner:
    """The runner of ``config``'s host (in ``nproc`` processes when > 1)."""
    from mwam_harness.models import model_info

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
    wait: bool | None = None,
) -> dict[str, dict[str, Any]]:
    """Train the runs of ``plan`` in order; returns ``{key: registry entry}``. ``force`` retrains the requested
    runs; a dependency is trained only when the registry lacks it or its weights (a finished teacher is reused).
    ``callbacks`` (called after every step) apply to the requested runs. Each run is checked, trained and recorded
    under its lock; ``wait`` (default: ``reproduce.runs.lock.wait_default()``, which ``--no-wait`` sets) says
    whether to wait for a run another process trains or to raise ``RunLockedError``."""
    from reproduce.engine.distributed import current

    if parent_lock() is not None:  # a torchrun rank of TorchrunRunner: die when torchrun does
        die_with_parent(signal.SIGKILL)
    process = current()
    results = {}
    for i, planned in enumerate(plan, start=1):
        config, runtime = planned.config, planned.runtime
        label = runtime.column or config.host.name
        with registry.lock(config, wait=wait, process=process) as hold:
            hold.check()  # a rank whose command died before it started stops here
            if planned.requested:
                retrain = force and not hold.updated
                if force and hold.updated:
                    log.info("run %s was retrained by the process we waited for: reusing its result", config.key)
            else:
                missing_weights = registry.has(config) and not registry.weights_path(config).exists()
                if missing_weights:
                    log.warning("dependency run %s has a result but no weights: training it again", config.key)
                retrain = missing_weights
            if not (registry.has(config) and not retrain):
                dependency = "" if planned.requested else " (dependency)"
                log.info("run %d/%d: %s [%s]%s", i, len(plan), label, config.key, dependency)
            runner = runner_for(config, nproc, callbacks if planned.requested else None)
            with torch_threads(runtime.threads):
                results[planned.key] = runner.run(config, registry, runtime, resume, retrain)
    return results


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """``torch.set_num_threads(count)`` within the block (nothing when None); the previous count after it. A torchrun
    rank reads the run's runtime from its config.yaml and sets its own."""
    if count is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_config(
    config: RunConfig,
    registry: Registry | None = None,
    runtime: Runtime | None = None,
    resume: bool = False,
    force: bool = False,
    nproc: int = 1,
    callbacks: list | None = None,
    wait: bool | None = None,
) -> dict[str, Any]:
    """Train ``config`` -- its dependencies first -- unless the registry has it; returns its registry entry."""
    from reproduce.engine.plan import plan_runs

    registry = registry or Registry()
    plan = plan_runs([(config, runtime or Runtime())])
    return execute(plan, registry, resume, force, nproc, callbacks, wait)[config.key]
