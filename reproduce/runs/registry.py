"""Results registry: one JSON per finished run under ``results/runs/``, keyed by the run's config hash.

Tables are rendered from the registry alone; a finished run is not trained again unless forced.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from reproduce.io import write_text_atomic
from reproduce.runs.config import RunConfig
from reproduce.tables.records import ResultRecord

DEFAULT_ROOT = Path("results") / "runs"


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


class Registry:
    def __init__(self, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def path(self, config: RunConfig) -> Path:
        return self.root / f"{config.key}.json"

    def run_dir(self, config: RunConfig) -> Path:
        """Where a run keeps its checkpoints and curves while it trains."""
        return self.root / config.key

    def weights_path(self, config: RunConfig) -> Path:
        """The finished run's host weights (``{"config_key", "host"}``), e.g. a teacher for distillation."""
        return self.run_dir(config) / "model.pt"

    def has(self, config: RunConfig) -> bool:
        return self.path(config).exists()

    def load(self, config: RunConfig) -> dict[str, Any]:
        path = self.path(config)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no finished run {config.key} in {self.root}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: corrupt registry entry ({error}); delete it or rerun with --force") from None

    def save(self, result: dict[str, Any]) -> Path:
        """Write a finished run's result atomically."""
        return write_text_atomic(self.root / f"{result['key']}.json", json.dumps(result, indent=2))

    def records(self, config: RunConfig) -> list[ResultRecord]:
        """Long-format records of a finished run, labelled with ``config``'s table and column."""
        result = self.load(config)
        return [
            ResultRecord(
                table=config.table,
                column=config.column or config.host,
                variant=result["variant"],
                dataset=result["config"]["dataset"],
                subset=subset,
                metric=result["metric"],
                value=float(values[result["primary"]]),
                seed=int(result["config"]["seed"]),
                run_id=result["key"],
                synthetic=bool(result["config"]["synthetic"]),
            )
            for subset, values in result["subsets"].items()
        ]
