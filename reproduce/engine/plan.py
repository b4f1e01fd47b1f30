"""Which runs to train, in which order: the requested runs and the runs they depend on, each once, dependencies
first (torch-free: ``--dry-run`` prints a plan without loading torch).

A run's plug-ins declare the runs it needs (``Plugin.dependencies``: MMANet's frozen teacher, GSS's RFNet
initialisation and its stages); they are ordinary runs of the registry, trained before the runs that need them
and shared by every run that needs the same one (one teacher for every MMANet column and seed). The planner sits
above the plug-ins (``engine``), the run configuration below them (``runs``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from reproduce.runs.config import ConfigError, RunConfig
from reproduce.runs.runtime import Runtime


@dataclass
class PlannedRun:
    """One run of a plan: its configuration and runtime, whether it was asked for (or is only a dependency),
    and its dependencies by role (``{"teacher": key}``)."""

    config: RunConfig
    runtime: Runtime
    requested: bool
    dependencies: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return plan_key(self.config)


def plan_key(config: RunConfig) -> str:
    """The run's key; without its data at hand (a dry run of the paper preset before the data arrive) a
    provisional stand-in starting with ``?``, so that the plan can still be laid out."""
    try:
        return config.key
    except (OSError, ConfigError):
        blob = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
        return "?" + hashlib.sha256(blob.encode()).hexdigest()[:15]


def dependency_group(config: RunConfig, runtime: Runtime, key: str) -> str:
    """The W&B group a run with dependencies shares with them: its table's (``table4``), else its own label
    (``MMANet [key]``). A dependency needed by several runs (one teacher for every MMANet column and seed) is
    grouped with the first that the plan visits; its W&B job type is its role (``teacher``)."""
    if runtime.table:
        return f"table{runtime.table}"
    return f"{runtime.column or config.host.name} [{key}]"


def plan_runs(requests: Sequence[tuple[RunConfig, Runtime]]) -> list[PlannedRun]:
    """The runs of ``requests`` and their dependencies (recursively), each key once, every dependency before the
    runs that need it; a run both requested and needed keeps its requested runtime."""
    from reproduce.methods import run_dependencies

    planned: dict[str, PlannedRun] = {}

    def visit(config: RunConfig, runtime: Runtime, requested: bool, path: tuple[str, ...]) -> str:
        key = plan_key(config)
        if key in path:
            raise ValueError(f"run {key} depends on itself (through {' -> '.join(path)})")
        if key not in planned:
            dependencies = {}
            needs = run_dependencies(config)
            if needs and runtime.wandb_group is None:
                runtime = runtime.replace(wandb_group=dependency_group(config, runtime, key))
            for role, dependency in needs.items():
                needed = runtime.replace(column=dependency.column, table=None, role=role)
                dependencies[role] = visit(dependency.config, needed, False, (*path, key))
            planned[key] = PlannedRun(config, runtime, requested, dependencies)
        elif requested and not planned[key].requested:
            planned[key].requested, planned[key].runtime = True, runtime
        return key

    for config, runtime in requests:
        visit(config, runtime, True, ())
    return list(planned.values())
