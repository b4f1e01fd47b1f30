"""Experiment tracking: Weights & Biases (offline by default) plus a local ``curves.csv`` for the plots.

Mode: ``--wandb offline|online|disabled``, else the ``WANDB_MODE`` environment variable, else ``offline``.
Offline runs are written under ``<results>/wandb/`` and uploaded later with ``wandb sync <dir>``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from reproduce.runs.runtime import WANDB_MODES, Runtime

PROJECT = "mwam-robust-multimodal"


def resolve_mode(mode: str | None) -> str:
    mode = mode or os.environ.get("WANDB_MODE") or "offline"
    if mode == "dryrun":
        mode = "offline"
    if mode not in WANDB_MODES:
        raise ValueError(f"W&B mode must be one of {WANDB_MODES}, got {mode!r}")
    return mode


def wandb_grouping(runtime: Runtime) -> dict[str, Any]:
    """A run's W&B ``group``, ``job_type`` and ``tags``: the group of its table (``table4``) or the one the planner
    gave it with its dependencies (``runtime.wandb_group``), its role as job type (``teacher``; ``train`` for a
    requested run), its table as a tag."""
    group = runtime.wandb_group or (f"table{runtime.table}" if runtime.table else None)
    return {
        "group": group,
        "job_type": runtime.role or "train",
        "tags": [f"table{runtime.table}"] if runtime.table else [],
    }


class Tracker:
    """A thin wrapper: ``log(values, step)``, ``log_table(...)``, ``summary(...)``, ``finish()``.

    With mode ``disabled`` wandb is never imported. ``run_id`` lets a resumed run continue the same W&B run.
    """

    def __init__(
        self,
        mode: str | None,
        directory: str | Path,
        name: str,
        config: dict[str, Any],
        run_id: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        tags: list[str] | None = None,
    ) -> None:
        self.mode = resolve_mode(mode)
        self.run = None
        self.run_id = run_id
        if self.mode == "disabled":
            return
        import wandb

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=PROJECT,
            name=name,
            config=config,
            dir=str(directory),
            mode=self.mode,
            id=run_id,
            resume="allow",
            group=group,
            job_type=job_type,
            tags=tags or None,
            reinit="finish_previous",
        )
        self.run_id = self.run.id

    def log(self, values: dict[str, float], step: int) -> None:
        if self.run is not None:
            self.run.log(values, step=step)

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        if self.run is not None:
            import wandb

            self.run.log({key: wandb.Table(columns=columns, data=rows)})

    def log_frame(self, key: str, frame: Any) -> None:
        """A pandas DataFrame as a ``wandb.Table`` (its columns and rows as they are)."""
        if self.run is not None:
            import wandb

            self.run.log({key: wandb.Table(dataframe=frame)})

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.summary.update(values)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


class CurveWriter:
    """Appends ``panel,series,step,value`` rows to a CSV (the input of ``python -m reproduce plot losses``).

    A fresh run (``resume_step=None``) starts the file over; a resumed run keeps the rows up to its checkpoint's
    step and drops the later ones, which the interrupted run wrote after its last checkpoint and the resumed run
    writes again -- so a retrained or resumed run never holds a curve twice.
    """

    HEADER = ("panel", "series", "step", "value")

    def __init__(self, path: str | Path, panel: str, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.panel = panel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[list[str]] = []
        if resume_step is not None and self.path.exists():
            with self.path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
            kept = [row for row in rows[1:] if len(row) == 4 and row[2].isdigit() and int(row[2]) <= resume_step]
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.HEADER)
            writer.writerows(kept)

    def write(self, values: dict[str, float], step: int) -> None:
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for series, value in values.items():
                writer.writerow([self.panel, series, step, f"{value:.6g}"])
