"""Load and validate the paper's measured numbers: ``reproduce/tables/paper/tableNN.yaml``.

The files hold only what the paper measured per subset or per setting -- never PCR, averages or deltas,
which are always computed (``reproduce.pcr``). Three kinds of table (docs/tables.md has the long form):

- ``subsets``: blocks of columns, each column one value per subset in the data set's paper row order;
- ``settings``: one column, one measured (average, average PCR) pair per hyper-parameter setting (Table 9);
  an optional top-level ``dataset`` names the data set whose full subset list the averages are taken over;
- ``cost``: per model, named quantities such as parameters and FLOPs (Table 6).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reproduce.subsets import dataset, display_names, subsets

PAPER_DIR = Path(__file__).resolve().parent / "paper"
KINDS = ("subsets", "settings", "cost")


class PaperDataError(ValueError):
    """A paper table file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class PaperColumn:
    name: str
    values: tuple[float, ...]
    metric: str
    with_pcr: bool = True


@dataclass(frozen=True)
class Block:
    dataset: str
    columns: tuple[PaperColumn, ...]
    modalities: tuple[str, ...] | None = None
    label: str | None = None

    @property
    def subsets(self) -> list[tuple[str, ...]]:
        return subsets(self.dataset, self.modalities)

    def column(self, name: str) -> PaperColumn:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class Setting:
    values: dict[str, float]
    average: float
    average_pcr: float

    @property
    def label(self) -> str:
        return "/".join(f"{k}={v:g}" for k, v in self.values.items())


@dataclass(frozen=True)
class Delta:
    column: str
    reference: str


@dataclass(frozen=True)
class PaperTable:
    number: int
    title: str
    kind: str
    metric: str
    decimals: int
    source: Path
    blocks: tuple[Block, ...] = ()
    deltas: tuple[Delta, ...] = ()
    settings_column: str | None = None
    settings: tuple[Setting, ...] = ()
    dataset: str | None = None
    quantities: dict[str, str] = field(default_factory=dict)
    cost: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [c.name for b in self.blocks for c in b.columns]


def _fail(path: Path, where: str, message: str) -> PaperDataError:
    return PaperDataError(f"{path.name}: {where}: {message}")


def _keys(path: Path, where: str, entry: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise _fail(path, where, f"expected a mapping, got {type(entry).__name__}")
    unknown = set(entry) - allowed
    if unknown:
        raise _fail(path, where, f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = required - set(entry)
    if missing:
        raise _fail(path, where, f"missing keys {sorted(missing)}")
    return entry


def _number(path: Path, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(path, where, f"expected a finite number, got {value!r}")
    return float(value)


def _block(path: Path, index: int, entry: Any, metric: str) -> Block:
    where = f"blocks[{index}]"
    entry = _keys(path, where, entry, {"dataset", "modalities", "label", "columns"}, {"dataset", "columns"})
    try:
        dataset(entry["dataset"])
        modalities = tuple(entry["modalities"]) if entry.get("modalities") is not None else None
        rows = subsets(entry["dataset"], modalities)
    except ValueError as error:
        raise _fail(path, where, str(error)) from None
    columns_entry = entry["columns"]
    if not isinstance(columns_entry, dict) or not columns_entry:
        raise _fail(path, where, "columns must be a non-empty mapping {column name: values}")
    columns = []
    for name, spec in columns_entry.items():
        cwhere = f"{where}.columns[{name!r}]"
        column_metric, with_pcr = metric, True
        if isinstance(spec, dict):
            spec = _keys(path, cwhere, spec, {"values", "metric", "pcr"}, {"values"})
            column_metric = str(spec.get("metric", metric))
            with_pcr = bool(spec.get("pcr", True))
            spec = spec["values"]
        if not isinstance(spec, list) or len(spec) != len(rows):
            got = len(spec) if isinstance(spec, list) else type(spec).__name__
            raise _fail(path, cwhere, f"expected {len(rows)} values (one per subset, paper row order), got {got}")
        values = tuple(_number(path, f"{cwhere}[{i}]", v) for i, v in enumerate(spec))
        columns.append(PaperColumn(str(name), values, column_metric, with_pcr))
    return Block(entry["dataset"], tuple(columns), modalities, entry.get("label"))


def _settings_dataset(path: Path, name: Any) -> str | None:
    if name is None:
        return None
    try:
        return dataset(str(name)).name
    except ValueError as error:
        raise _fail(path, "dataset", str(error)) from None


def load_paper_table(number: int, directory: Path = PAPER_DIR) -> PaperTable:
    """Read and validate ``tableNN.yaml``; every problem is a :class:`PaperDataError` naming the file."""
    path = Path(directory) / f"table{number:02d}.yaml"
    if not path.exists():
        known = ", ".join(str(n) for n in available_tables(directory)) or "none"
        raise PaperDataError(f"no data for Table {number} ({path} does not exist); tables with data: {known}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise PaperDataError(f"{path.name}: not valid YAML: {error}") from None
    allowed = {
        "table",
        "title",
        "kind",
        "metric",
        "decimals",
        "blocks",
        "deltas",
        "settings_column",
        "setting_keys",
        "settings",
        "dataset",
        "quantities",
        "cost",
        "notes",
    }
    raw = _keys(path, "top level", raw, allowed, {"table", "title", "kind", "metric"})
    if raw["table"] != number:
        raise _fail(path, "table", f"says {raw['table']!r}, the file name says {number}")
    kind = raw["kind"]
    if kind not in KINDS:
        raise _fail(path, "kind", f"must be one of {KINDS}, got {kind!r}")
    metric = str(raw["metric"])
    decimals = raw.get("decimals", 2)
    notes = tuple(str(n) for n in raw.get("notes", []) or [])
    common = {
        "number": number,
        "title": str(raw["title"]),
        "kind": kind,
        "metric": metric,
        "decimals": int(decimals),
        "source": path,
        "notes": notes,
    }

    if "dataset" in raw and kind != "settings":
        raise _fail(path, "dataset", f"only settings tables take a top-level data set ({kind} tables: none)")

    if kind == "subsets":
        blocks_entry = raw.get("blocks")
        if not isinstance(blocks_entry, list) or not blocks_entry:
            raise _fail(path, "blocks", "a subsets table needs a non-empty list of blocks")
        blocks = tuple(_block(path, i, b, metric) for i, b in enumerate(blocks_entry))
        names = [c.name for b in blocks for c in b.columns]
        deltas = []
        for i, d in enumerate(raw.get("deltas", []) or []):
            d = _keys(path, f"deltas[{i}]", d, {"column", "reference"}, {"column", "reference"})
            for key in ("column", "reference"):
                if d[key] not in names:
                    raise _fail(path, f"deltas[{i}].{key}", f"no column named {d[key]!r}")
            deltas.append(Delta(d["column"], d["reference"]))
        return PaperTable(blocks=blocks, deltas=tuple(deltas), **common)

    if kind == "settings":
        keys = raw.get("setting_keys")
        if not isinstance(keys, list) or not keys:
            raise _fail(path, "setting_keys", "a settings table needs the list of hyper-parameter names")
        settings = []
        for i, s in enumerate(raw.get("settings") or []):
            s = _keys(path, f"settings[{i}]", s, {*keys, "average", "average_pcr"}, {*keys, "average", "average_pcr"})
            values = {k: _number(path, f"settings[{i}].{k}", s[k]) for k in keys}
            settings.append(
                Setting(
                    values,
                    _number(path, f"settings[{i}].average", s["average"]),
                    _number(path, f"settings[{i}].average_pcr", s["average_pcr"]),
                )
            )
        if not settings:
            raise _fail(path, "settings", "no settings")
        labels = [s.label for s in settings]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise _fail(path, "settings", f"settings listed twice: {repeated}")
        return PaperTable(
            settings_column=str(raw.get("settings_column", "")),
            settings=tuple(settings),
            dataset=_settings_dataset(path, raw.get("dataset")),
            **common,
        )

    quantities = raw.get("quantities")
    cost = raw.get("cost")
    if not isinstance(quantities, dict) or not isinstance(cost, dict) or not cost:
        raise _fail(path, "cost", "a cost table needs 'quantities' {key: name} and 'cost' {model: {key: value}}")
    parsed: dict[str, dict[str, float]] = {}
    for model, entries in cost.items():
        entries = _keys(path, f"cost[{model!r}]", entries, set(quantities), set())
        parsed[str(model)] = {k: _number(path, f"cost[{model!r}].{k}", v) for k, v in entries.items()}
    return PaperTable(quantities={str(k): str(v) for k, v in quantities.items()}, cost=parsed, **common)


def available_tables(directory: Path = PAPER_DIR) -> list[int]:
    return sorted(int(p.stem[5:]) for p in Path(directory).glob("table[0-9][0-9].yaml"))


def with_extension_columns(
    table: PaperTable, columns: Sequence[str] | Mapping[str, tuple[str, ...] | None]
) -> PaperTable:
    """``table`` with this repository's extension ``columns`` (e.g. SF-MD + SDE beside Table 4) added without numbers
    (NaN), rendered like the paper's. ``columns`` maps each name to the modalities its runs use (None: all of the data
    set's, or give a plain list of names): a column on all modalities joins the first block; a column on fewer joins
    the block of exactly those modalities, which is added (labelled with their printed names) when the table has
    none -- its rows are then its own subsets, never the table's rows filled with "—"."""
    if table.kind != "subsets":
        raise ValueError(f"Table {table.number} is a {table.kind} table; only per-subset tables take extra columns")
    wanted = dict(columns) if isinstance(columns, Mapping) else dict.fromkeys(columns)
    existing = {c.name for b in table.blocks for c in b.columns}
    clash = sorted(set(wanted) & existing)
    if clash:
        raise ValueError(f"Table {table.number} already has columns {clash}")
    blocks = list(table.blocks)
    dataset = blocks[0].dataset
    for name, modalities in wanted.items():
        if modalities is not None:
            modalities = tuple(modalities)
        index = next(
            (i for i, b in enumerate(blocks) if b.dataset == dataset and b.modalities == modalities),
            0 if modalities is None else None,
        )
        if index is None:  # a block of its own for a column on fewer modalities
            label = " / ".join(display_names(dataset, modalities))
            blocks.append(Block(dataset, (), modalities, label))
            index = len(blocks) - 1
        block = blocks[index]
        column = PaperColumn(name, (math.nan,) * len(block.subsets), table.metric)
        blocks[index] = dataclasses.replace(block, columns=(*block.columns, column))
    note = f"Not in the paper (this repository's extension, no paper numbers): {', '.join(wanted)}."
    return dataclasses.replace(table, blocks=tuple(blocks), notes=(*table.notes, note))


def check_column_modalities(table: PaperTable, column: str, modalities: tuple[str, ...] | None) -> None:
    """A paper column trained on ``modalities`` (None: all of the data set's) must sit in a block of the same
    modalities; ValueError otherwise (its subsets would not be the rows the paper prints)."""
    for block in table.blocks:
        if any(c.name == column for c in block.columns):
            if block.modalities != (tuple(modalities) if modalities is not None else None):
                printed = block.modalities or "all of the data set's"
                raise ValueError(
                    f"Table {table.number}, column {column!r}: its runs use the modalities {list(modalities or [])} "
                    f"but the paper's column is in the block of {printed}; train it on those modalities, or make it "
                    "an extension column (it then gets a block of its own)"
                )
            return
    raise ValueError(f"Table {table.number} has no column {column!r}")
