"""Which runs fill which columns of a paper table (the training side of a Table spec).

The paper's numbers, metric and row order live in ``reproduce/tables/paper/tableNN.yaml``; this file says how
this repository produces each column it can produce. Columns not listed show the paper's numbers only. Runs are
identified by their resolved configuration, so a column that several tables share (e.g. vanilla MMANet in
Tables 4, 7, 8, 10 and 16) is trained once and reused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reproduce.runs.config import RunConfig

if TYPE_CHECKING:
    from reproduce.presets import Preset


@dataclass(frozen=True)
class ColumnRun:
    """A column and the run settings that produce it.

    run: RunConfig settings of this column, merged over the preset's (they are the column's ablation: batch
        size, MWAM options ...). paper_run: settings applied only under the ``paper`` preset (the host's own
        schedule from the paper, e.g. MMANet's learning-rate steps at epochs 16, 33 and 50); synthetic presets
        keep their short schedules. trainer / trainer_options: the training method (``standard`` or ``mmanet``);
        the preset's options for that method (``Preset.trainer_options``) come first.
    extension: None for the paper's columns; a name (``"sde"``) for a column this repository adds to the table
        (no paper numbers), trained only when that extension is asked for.
    """

    column: str
    host: str
    mwam: str = "none"
    host_options: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    trainer: str = "standard"
    trainer_options: dict[str, Any] = field(default_factory=dict)
    paper_run: dict[str, Any] = field(default_factory=dict)
    extension: str | None = None

    def with_changes(self, column: str, mwam: str | None = None, **run: Any) -> ColumnRun:
        """A copy named ``column`` with ``run`` settings added (and the intervention changed when given)."""
        return dataclasses.replace(
            self, column=column, mwam=self.mwam if mwam is None else mwam, run={**self.run, **run}
        )


def _teacher_run(preset_run: dict[str, Any], column_run: dict[str, Any]) -> dict[str, Any]:
    """The teacher of an MMANet column is the table's common teacher: the column's own ablation settings (batch
    size ...) are reverted to the preset's for it. MWAM settings never reach the teacher."""
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    out = {}
    for key, value in column_run.items():
        if key in ("mwam_options", "host_options"):
            continue
        base = preset_run.get(key, defaults.get(key))
        if base != value:
            out[key] = base
    return out


@dataclass(frozen=True)
class TableRuns:
    table: int
    dataset: str
    task: str
    columns: tuple[ColumnRun, ...]

    def column(self, name: str) -> ColumnRun:
        for c in self.columns:
            if c.column == name:
                return c
        raise ValueError(
            f"Table {self.table} has no trainable column {name!r}; it has {[c.column for c in self.columns]}"
        )

    @property
    def extensions(self) -> tuple[str, ...]:
        """The names of the extensions this table has (columns beyond the paper's)."""
        return tuple(dict.fromkeys(c.extension for c in self.columns if c.extension))

    def configs(
        self,
        data_root: str,
        preset: Preset,
        seed: int = 0,
        columns: list[str] | None = None,
        extensions: tuple[str, ...] = (),
    ) -> list[RunConfig]:
        """One RunConfig per paper column and per column of the named ``extensions`` (or per named column),
        under ``preset``."""
        unknown = sorted(set(extensions) - set(self.extensions))
        if unknown:
            raise ValueError(f"Table {self.table} has no extension {unknown}; it has {list(self.extensions) or 'none'}")
        if columns is None:
            chosen = tuple(c for c in self.columns if c.extension is None or c.extension in extensions)
        else:
            chosen = tuple(self.column(name) for name in columns)
        out = []
        for c in chosen:
            values = {**preset.run, **(c.paper_run if preset.name == "paper" else {}), **c.run}
            trainer_options = {**preset.trainer_options.get(c.trainer, {}), **c.trainer_options}
            if c.trainer == "mmanet":
                teacher_run = _teacher_run(preset.run, c.run)
                if teacher_run:
                    trainer_options["teacher_run"] = teacher_run
            out.append(
                RunConfig(
                    host=c.host,
                    host_options=dict(c.host_options),
                    dataset=self.dataset,
                    data_root=data_root,
                    synthetic=preset.synthetic,
                    table=self.table,
                    column=c.column,
                    task=self.task,
                    mwam=c.mwam,
                    trainer=c.trainer,
                    trainer_options=trainer_options,
                    seed=seed,
                    **values,
                )
            )
        return out


# SF-MD + MWAM in Table 4 is the hybrid intervention with auxiliary heads: its numbers are Table 5's Hybrid
# column (Sec. 5.2: "In SF-MD, we additionally introduce auxiliary heads").
SF_MD = ColumnRun("SF-MD", "sf_md")
SF_MD_MWAM = ColumnRun("SF-MD +MWAM", "sf_md", "hybrid", {"aux_heads": True})
# MMANet: its own method and schedule (Sec. A.3: lr / 10 at epochs 16, 33, 50); +MWAM edits the branch gradients
# without auxiliary heads (Sec. 5.2).
MMANET = ColumnRun("MMANet", "mmanet", trainer="mmanet", paper_run={"milestones": (16, 33, 50)})
MMANET_MWAM = MMANET.with_changes("MMANet +MWAM", mwam="grad")
# Extension of Tables 4 / 16 (no paper numbers): SDE on SF-MD's branch embeddings, alone and with MWAM.
SF_MD_SDE = ColumnRun("SF-MD +SDE", "sf_md", run={"sde": True}, extension="sde")
SF_MD_MWAM_SDE = dataclasses.replace(SF_MD_MWAM, column="SF-MD +MWAM +SDE", run={"sde": True}, extension="sde")
# Table 10: for batch sizes 4 and 1 the paper sets alpha=1.5, beta=1, gamma=1, lambda=4 (Sec. A.10).
SMALL_BATCH_WEIGHTS = {"alpha": 1.5, "beta": 1.0, "gamma": 1.0, "lam": 4.0}
# Table 8's rows: the FRM rule of each column (Eq. 3, 4, 27, 28; Eq. 28 with omega = 0.9, MWAM's default).
FRM_RULE_COLUMNS = {
    "w/o High-Freq.": "low_l1",
    "w/ High-Freq.": "ratio",
    "Direct Sum": "sum",
    "Weighted Sum": "weighted_sum",
}
WINDOWS = (1, 2, 4, 6)
BATCH_SIZES = (64, 16, 4, 1)


def _weight_fn_columns() -> tuple[ColumnRun, ...]:
    """Table 9: MMANet + MWAM per (alpha, beta, gamma, lambda) setting; the column is the setting's label."""
    from reproduce.tables.paper_data import load_paper_table

    return tuple(MMANET_MWAM.with_changes(s.label, mwam_options=dict(s.values)) for s in load_paper_table(9).settings)


def _batch_size_columns() -> tuple[ColumnRun, ...]:
    out = []
    for size in BATCH_SIZES:
        out.append(MMANET.with_changes(f"bs={size} w/o MWAM", batch_size=size))
        weights = {"mwam_options": dict(SMALL_BATCH_WEIGHTS)} if size <= 4 else {}
        out.append(MMANET_MWAM.with_changes(f"bs={size} w/ MWAM", batch_size=size, **weights))
    return tuple(out)


def _build_table_runs() -> dict[int, TableRuns]:
    surf = ("casia_surf", "classification")
    return {
        4: TableRuns(4, *surf, (SF_MD, MMANET, SF_MD_MWAM, MMANET_MWAM, SF_MD_SDE, SF_MD_MWAM_SDE)),
        5: TableRuns(
            5,
            *surf,
            (
                ColumnRun("w/o MWAM", "sf_md"),
                ColumnRun("Loss", "sf_md", "loss", {"aux_heads": True}),
                ColumnRun("Gradient", "sf_md", "grad"),
                ColumnRun("Hybrid", "sf_md", "hybrid", {"aux_heads": True}),
            ),
        ),
        7: TableRuns(
            7,
            *surf,
            (
                MMANET.with_changes("w/o MWAM"),
                *(MMANET_MWAM.with_changes(f"q={q}", mwam_options={"window": q}) for q in WINDOWS),
            ),
        ),
        8: TableRuns(
            8,
            *surf,
            (
                MMANET.with_changes("w/o MWAM"),
                *(
                    MMANET_MWAM.with_changes(name, mwam_options={"rule": rule})
                    for name, rule in FRM_RULE_COLUMNS.items()
                ),
            ),
        ),
        9: TableRuns(9, *surf, _weight_fn_columns()),
        10: TableRuns(10, *surf, _batch_size_columns()),
        16: TableRuns(16, *surf, (SF_MD, MMANET, SF_MD_MWAM, MMANET_MWAM)),
    }


TABLE_RUNS: dict[int, TableRuns] = _build_table_runs()
#: The CASIA-SURF ablations ``make ablations-smoke`` runs (every trainable table except the main Table 4).
ABLATION_TABLES = (5, 7, 8, 9, 10, 16)


def table_runs(number: int) -> TableRuns:
    if number not in TABLE_RUNS:
        raise ValueError(
            f"this repository cannot train the columns of Table {number} yet; it can: "
            f"{sorted(TABLE_RUNS)} (python -m reproduce paper {number} shows the paper's numbers)"
        )
    return TABLE_RUNS[number]
