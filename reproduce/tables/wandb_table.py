"""A rendered table in Weights & Biases: one W&B run per table command (job type ``table``, in the table's group
beside its training runs) holding the table as ``wandb.Table``s -- ``table`` (the long numbers of
:func:`~reproduce.tables.frames.tidy_frame`) and ``table_vs_paper`` (ours | paper | Δ,
:func:`~reproduce.tables.frames.side_by_side_frame`) -- and the run keys it was drawn from in its config."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reproduce.runs.runtime import Runtime
from reproduce.tables.frames import side_by_side_frame, tidy_frame
from reproduce.tables.model import TableView
from reproduce.tracking import Tracker, resolve_mode


def log_table(
    stem: str, ours: TableView, paper: TableView, runtime: Runtime, directory: str | Path, keys: Sequence[str]
) -> str | None:
    """Log the table ``stem`` under ``runtime.wandb`` (nothing when disabled); returns the W&B run id."""
    if resolve_mode(runtime.wandb) == "disabled":
        return None
    data = "synthetic data" if ours.synthetic else "real data"
    tracker = Tracker(
        runtime.wandb,
        directory,
        name=f"{stem} ({data})",
        config={"table": ours.number, "stem": stem, "synthetic": bool(ours.synthetic), "runs": list(keys)},
        group=f"table{ours.number}",
        job_type="table",
        tags=[f"table{ours.number}"],
    )
    try:
        tracker.log_frame("table", tidy_frame(ours))
        tracker.log_frame("table_vs_paper", side_by_side_frame(ours, paper))
        return tracker.run_id
    finally:
        tracker.finish()
