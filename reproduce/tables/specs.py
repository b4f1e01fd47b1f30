"""Which runs fill which columns of a paper table (the training side of a Table spec).

The paper's numbers, metric and row order live in ``reproduce/tables/paper/tableNN.yaml``; this file says how
this repository produces each column it can produce. Columns not listed show the paper's numbers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reproduce.runs.config import RunConfig


@dataclass(frozen=True)
class ColumnRun:
    """A column and the run settings that produce it (merged over the preset's)."""

    column: str
    host: str
    mwam: str = "none"
    host_options: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TableRuns:
    table: int
    dataset: str
    task: str
    columns: tuple[ColumnRun, ...]

    def configs(self, data_root: str, synthetic: bool, overrides: dict[str, Any], seed: int = 0) -> list[RunConfig]:
        out = []
        for c in self.columns:
            values = {**overrides, **c.run}
            out.append(
                RunConfig(
                    host=c.host,
                    host_options=dict(c.host_options),
                    dataset=self.dataset,
                    data_root=data_root,
                    synthetic=synthetic,
                    table=self.table,
                    column=c.column,
                    task=self.task,
                    mwam=c.mwam,
                    seed=seed,
                    **values,
                )
            )
        return out


# SF-MD + MWAM in Table 4 is the hybrid intervention with auxiliary heads: its numbers are Table 5's Hybrid
# column (Sec. 5.2: "In SF-MD, we additionally introduce auxiliary heads").
SF_MD = ColumnRun("SF-MD", "sf_md")
SF_MD_MWAM = ColumnRun("SF-MD +MWAM", "sf_md", "hybrid", {"aux_heads": True})

TABLE_RUNS: dict[int, TableRuns] = {
    4: TableRuns(4, "casia_surf", "classification", (SF_MD, SF_MD_MWAM)),
    5: TableRuns(
        5,
        "casia_surf",
        "classification",
        (
            ColumnRun("w/o MWAM", "sf_md"),
            ColumnRun("Loss", "sf_md", "loss", {"aux_heads": True}),
            ColumnRun("Gradient", "sf_md", "grad"),
            ColumnRun("Hybrid", "sf_md", "hybrid", {"aux_heads": True}),
        ),
    ),
}


def table_runs(number: int) -> TableRuns:
    if number not in TABLE_RUNS:
        raise ValueError(
            f"this repository cannot train the columns of Table {number} yet; it can: "
            f"{sorted(TABLE_RUNS)} (python -m reproduce paper {number} shows the paper's numbers)"
        )
    return TABLE_RUNS[number]
