"""Results registry: one JSON per finished run under ``<results>/runs/``, keyed by the run's key.

Beside each entry, ``<key>/`` holds the run's resolved configuration (``config.yaml``, written when the run
starts, so an interrupted run has it too), its curves, its resume checkpoint while it trains and its final weights
(``model.pt``); ``<key>.lock`` is the run's lock, held by the process that trains it (:mod:`reproduce.runs.lock`).
Tables are rendered from the registry alone; a finished run is not trained again unless forced.
"""

from __future__ import annotations

import json
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from reproduce.io import write_text_atomic
from reproduce.paths import runs_dir
from reproduce.runs.config import RunConfig
from reproduce.runs.lock import RunHold, lock_run
from reproduce.runs.records import ResultRecord
from reproduce.runs.runtime import Runtime


def git_commit() -> str:
    """The repository's HEAD commit (with ``-dirty`` when there are uncommitted changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _key(run: RunConfig | str) -> str:
    return run if isinstance(run, str) else run.key


class Registry:
    """The run registry under ``root`` (default: ``<results root>/runs``, see :mod:`reproduce.paths`)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else runs_dir()

    def path(self, run: RunConfig | str) -> Path:
        return self.root / f"{_key(run)}.json"

    def run_dir(self, run: RunConfig | str) -> Path:
        """Where a run keeps its configuration, checkpoints, curves and weights."""
        return self.root / _key(run)

    def weights_path(self, run: RunConfig | str) -> Path:
        """The finished run's host weights (``{"config_key", "host"}``), e.g. a teacher for distillation."""
        return self.run_dir(run) / "model.pt"

    def config_path(self, run: RunConfig | str) -> Path:
        return self.run_dir(run) / "config.yaml"

    def lock_path(self, run: RunConfig | str) -> Path:
        """The run's lock file (:mod:`reproduce.runs.lock`), beside its entry."""
        return self.root / f"{_key(run)}.lock"

    def lock(
        self, run: RunConfig | str, wait: bool | None = None, process: Any = None
    ) -> AbstractContextManager[RunHold]:
        """Hold the run's lock from the registry check to the final write (:func:`reproduce.runs.lock.lock_run`):
        another process asking for the run waits (or, ``wait=False``, raises ``RunLockedError``)."""
        return lock_run(self.lock_path(run), _key(run), wait=wait, entry=self.path(run), process=process)

    def has(self, run: RunConfig | str) -> bool:
        return self.path(run).exists()

    def load(self, run: RunConfig | str) -> dict[str, Any]:
        path = self.path(run)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no finished run {_key(run)} in {self.root}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: corrupt registry entry ({error}); delete it or rerun with --force") from None

    def save(self, result: dict[str, Any]) -> Path:
        """Write a finished run's result atomically."""
        return write_text_atomic(self.path(result["key"]), json.dumps(result, indent=2))

    def save_config(self, config: RunConfig, runtime: Runtime | None = None) -> Path:
        """``<key>/config.yaml``: the resolved configuration (and the runtime it ran with), which
        ``python -m reproduce run`` takes back."""
        return write_config(self.config_path(config), config, runtime)

    def records(self, config: RunConfig, runtime: Runtime | None = None) -> list[ResultRecord]:
        """Long-format records of a finished run, labelled with ``runtime``'s table and column."""
        result = self.load(config)
        runtime = runtime or Runtime()
        return [
            ResultRecord(
                table=runtime.table,
                column=runtime.column or config.host.name,
                variant=result["variant"],
                dataset=result["config"]["data"]["dataset"],
                subset=subset,
                metric=result["metric"],
                value=float(values[result["primary"]]),
                seed=int(result["seed"]),
                run_id=result["key"],
                synthetic=bool(result["synthetic"]),
            )
            for subset, values in result["subsets"].items()
        ]


def write_config(path: str | Path, config: RunConfig, runtime: Runtime | None = None) -> Path:
    """Write ``config`` (and ``runtime``) as a run configuration file, with its key in a comment. The data are
    named by their absolute root (a preset's synthetic set by where it lies), so the file means the same data in
    any directory and any version of the presets."""
    import yaml

    values = config.to_dict()
    if values["data"]["root"] is not None or values["data"]["synthetic"] is not None:
        values["data"]["root"] = str(config.data.locate(generate=False).resolve())
        values["data"]["synthetic"] = None
    if runtime is not None:
        values["runtime"] = runtime.to_dict()
    text = f"# run {config.key} (python -m reproduce run {path})\n" + yaml.safe_dump(values, sort_keys=False)
    return write_text_atomic(path, text)
