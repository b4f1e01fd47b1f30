"""What a rendered table contains, independent of format: built from the paper's data or from results."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reproduce.pcr import deltas, summarise
from reproduce.runs.records import ResultRecord
from reproduce.subsets import subset_key, subsets
from reproduce.tables.paper_data import PaperTable

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Cell:
    """A number with its spread over seeds (``std`` is None for a single value, e.g. the paper's)."""

    mean: float
    std: float | None = None
    seeds: int = 1

    @property
    def missing(self) -> bool:
        return math.isnan(self.mean)


MISSING = Cell(math.nan)


def aggregate(values: Sequence[float]) -> Cell:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return MISSING
    if len(finite) == 1:
        return Cell(finite[0], None, 1)
    return Cell(statistics.fmean(finite), statistics.stdev(finite), len(finite))


@dataclass(frozen=True)
class Column:
    name: str
    metric: str
    with_pcr: bool
    values: tuple[Cell, ...]
    pcr: tuple[Cell, ...]
    average: Cell
    average_pcr: Cell


def column_from_runs(name: str, metric: str, with_pcr: bool, runs: Sequence[Sequence[float]]) -> Column:
    """One column from one or more seeds' per-subset values (each in paper row order, full set last).

    PCR and averages are computed per seed and then aggregated, so their spread is the spread over seeds.
    """
    summaries = [summarise(run) for run in runs]
    size = len(summaries[0].values)
    return Column(
        name=name,
        metric=metric,
        with_pcr=with_pcr,
        values=tuple(aggregate([s.values[i] for s in summaries]) for i in range(size)),
        pcr=tuple(aggregate([s.pcr[i] for s in summaries]) if with_pcr else MISSING for i in range(size)),
        average=aggregate([s.average for s in summaries]) if with_pcr else MISSING,
        average_pcr=aggregate([s.average_pcr for s in summaries]) if with_pcr else MISSING,
    )


@dataclass(frozen=True)
class DeltaColumn:
    """Table 1's parenthesised differences ``column - reference`` (computed, never transcribed)."""

    column: str
    reference: str
    values: tuple[float, ...]
    pcr: tuple[float, ...]
    average: float
    average_pcr: float


@dataclass(frozen=True)
class BlockView:
    dataset: str
    modalities: tuple[str, ...] | None
    label: str | None
    subsets: tuple[tuple[str, ...], ...]
    columns: tuple[Column, ...]
    deltas: tuple[DeltaColumn, ...] = ()

    @property
    def subset_keys(self) -> list[str]:
        return [subset_key(s) for s in self.subsets]


# One row of a settings table: (label ``alpha=1.2/beta=1/...``, parameter values, Average, Average PCR).
SettingRow = tuple[str, dict[str, float], Cell, Cell]


@dataclass(frozen=True)
class TableView:
    """A table ready to draw. ``source`` is "paper" or "ours"; ``synthetic`` is None for the paper's numbers."""

    number: int
    title: str
    kind: str
    metric: str
    decimals: int
    source: str
    synthetic: bool | None
    blocks: tuple[BlockView, ...] = ()
    settings: tuple[SettingRow, ...] = ()
    settings_column: str | None = None
    quantities: dict[str, str] = field(default_factory=dict)
    cost: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def heading(self) -> str:
        if self.source == "paper":
            return f"Table {self.number} (paper's reported numbers): {self.title}"
        data = "SYNTHETIC DATA, not a reproduction of the paper" if self.synthetic else "real data"
        return f"Table {self.number} (this repository, {data}): {self.title}"

    def to_frame(self) -> pd.DataFrame:
        """The numbers as a tidy pandas DataFrame, one row per block × subset × column
        (:func:`reproduce.tables.frames.tidy_frame`)."""
        from reproduce.tables.frames import tidy_frame

        return tidy_frame(self)


def _deltas_for(block: BlockView, pairs: Iterable[tuple[str, str]]) -> tuple[DeltaColumn, ...]:
    by_name = {c.name: c for c in block.columns}
    out = []
    for column, reference in pairs:
        if column in by_name and reference in by_name:
            a = summarise([c.mean for c in by_name[column].values])
            b = summarise([c.mean for c in by_name[reference].values])
            d = deltas(a, b)
            out.append(DeltaColumn(column, reference, d.values, d.pcr, d.average, d.average_pcr))
    return tuple(out)


def _heading_fields(table: PaperTable) -> dict[str, object]:
    """The TableView fields every view of ``table`` shares, whoever's numbers it shows."""
    return {
        "number": table.number,
        "title": table.title,
        "kind": table.kind,
        "metric": table.metric,
        "decimals": table.decimals,
    }


def from_paper(table: PaperTable) -> TableView:
    """The paper's measured numbers with every PCR, average and delta computed from them."""
    common = {**_heading_fields(table), "source": "paper", "synthetic": None, "notes": table.notes}
    if table.kind == "settings":
        settings = tuple((s.label, s.values, Cell(s.average), Cell(s.average_pcr)) for s in table.settings)
        return TableView(settings=settings, settings_column=table.settings_column, **common)
    if table.kind == "cost":
        return TableView(quantities=table.quantities, cost=table.cost, **common)
    pairs = [(d.column, d.reference) for d in table.deltas]
    blocks = []
    for block in table.blocks:
        columns = tuple(column_from_runs(c.name, c.metric, c.with_pcr, [c.values]) for c in block.columns)
        view = BlockView(block.dataset, block.modalities, block.label, tuple(block.subsets), columns)
        blocks.append(dataclasses.replace(view, deltas=_deltas_for(view, pairs)))
    return TableView(blocks=tuple(blocks), **common)


def from_records(table: PaperTable, records: Iterable[ResultRecord]) -> TableView:
    """This repository's results in the layout of ``table`` (per-subset or settings); seeds -> mean ± std.

    Only the columns (settings) that have records are drawn. Every record must name a column (setting label)
    of the table, its data set, and subsets of that column's block; synthetic and real results are never
    mixed in one table. A settings table's records are, per setting and seed, the values of the full subset
    list of the table's data set, from which Average and Average PCR are computed per seed.
    """
    if table.kind not in ("subsets", "settings"):
        raise ValueError(
            f"Table {table.number} is a {table.kind} table; results are drawn for per-subset and settings tables"
        )
    records = [r for r in records if r.table == table.number]
    if not records:
        raise ValueError(f"no result records for Table {table.number}")
    kinds = {r.synthetic for r in records}
    if len(kinds) > 1:
        raise ValueError(f"Table {table.number} mixes synthetic and real results; render them separately")
    common = {**_heading_fields(table), "source": "ours", "synthetic": kinds.pop()}
    if table.kind == "settings":
        settings = _settings_from_records(table, records)
        return TableView(settings=settings, settings_column=table.settings_column, **common)
    return TableView(blocks=_blocks_from_records(table, records), **common)


def _blocks_from_records(table: PaperTable, records: list[ResultRecord]) -> tuple[BlockView, ...]:
    block_of = {c.name: i for i, b in enumerate(table.blocks) for c in b.columns}
    unknown = sorted({r.column for r in records} - set(block_of))
    if unknown:
        raise ValueError(f"records name columns {unknown} that Table {table.number} does not have: {list(block_of)}")
    runs: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        block = table.blocks[block_of[r.column]]
        if r.dataset != block.dataset:
            raise ValueError(f"record for {r.column!r} is on {r.dataset!r}; the table's column is on {block.dataset!r}")
        keys = [subset_key(s) for s in block.subsets]
        if r.subset not in keys:
            raise ValueError(f"record for {r.column!r} has subset {r.subset!r}; the block's subsets are {keys}")
        if r.subset in runs[r.column][r.seed]:
            raise ValueError(f"two records for {r.column!r}, subset {r.subset!r}, seed {r.seed}")
        runs[r.column][r.seed][r.subset] = r.value
    pairs = [(d.column, d.reference) for d in table.deltas]
    blocks = []
    for block in table.blocks:
        keys = [subset_key(s) for s in block.subsets]
        columns = []
        for spec in block.columns:
            if spec.name not in runs:
                continue
            per_seed = [[seeds.get(k, math.nan) for k in keys] for _, seeds in sorted(runs[spec.name].items())]
            columns.append(column_from_runs(spec.name, spec.metric, spec.with_pcr, per_seed))
        if columns:
            view = BlockView(block.dataset, block.modalities, block.label, tuple(block.subsets), tuple(columns))
            blocks.append(dataclasses.replace(view, deltas=_deltas_for(view, pairs)))
    return tuple(blocks)


def _settings_from_records(table: PaperTable, records: list[ResultRecord]) -> tuple[SettingRow, ...]:
    """Per setting with records: (label, values, Average, Average PCR), in the paper's setting order."""
    if table.dataset is None:
        raise ValueError(
            f"Table {table.number} names no data set: add a top-level 'dataset:' to {table.source.name} "
            "so its settings' averages can be computed"
        )
    labels = [s.label for s in table.settings]
    unknown = sorted({r.column for r in records} - set(labels))
    if unknown:
        raise ValueError(
            f"records name settings {unknown} that Table {table.number} does not have; its settings are {labels}"
        )
    keys = [subset_key(s) for s in subsets(table.dataset)]
    runs: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        if r.dataset != table.dataset:
            raise ValueError(
                f"record for setting {r.column!r} is on {r.dataset!r}; Table {table.number}'s settings are on "
                f"{table.dataset!r}"
            )
        if r.subset not in keys:
            raise ValueError(f"record for setting {r.column!r} has subset {r.subset!r}; the subsets are {keys}")
        if r.subset in runs[r.column][r.seed]:
            raise ValueError(f"two records for setting {r.column!r}, subset {r.subset!r}, seed {r.seed}")
        runs[r.column][r.seed][r.subset] = r.value
    rows = []
    for setting in table.settings:
        if setting.label not in runs:
            continue
        summaries = []
        for seed, values in sorted(runs[setting.label].items()):
            missing = [k for k in keys if k not in values]
            if missing:
                raise ValueError(
                    f"setting {setting.label!r}, seed {seed}: no records for subsets {missing}; its Average needs "
                    f"all {len(keys)} {table.dataset} subsets {keys}"
                )
            summaries.append(summarise([values[k] for k in keys]))
        average = aggregate([s.average for s in summaries])
        average_pcr = aggregate([s.average_pcr for s in summaries])
        rows.append((setting.label, dict(setting.values), average, average_pcr))
    return tuple(rows)
