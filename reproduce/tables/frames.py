"""A :class:`~reproduce.tables.model.TableView` as pandas DataFrames (docs/tables.md, "Results as DataFrames").

:func:`tidy_frame` (also ``TableView.to_frame()``) is the long form of the numbers, one row per block × subset ×
column with mean, std, seeds and the subset's marks: what the CSV is written from and what to analyse.
:func:`wide_frames` are the grids in the paper's layout (display strings, one frame per block): what Markdown and
LaTeX are drawn from. :func:`side_by_side_frame` and :func:`side_by_side_grids` are the same for ours | paper | Δ.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from reproduce.subsets import display_names, marks
from reproduce.tables.model import BlockView, Cell, Column, TableView

# The display texts of the grids: "md" (● ○, "—" for a missing number) or "tex" (LaTeX marks, "--"; the rest is
# LaTeX-escaped when drawn).
GRID_FORMATS = ("md", "tex")
VALUE_FIELDS = ("value", "value_std", "pcr", "pcr_std", "seeds", "missing")
SIDE_BY_SIDE_FIELDS = (
    "column",
    "subset",
    "ours",
    "paper",
    "delta",
    "ours_pcr",
    "paper_pcr",
    "delta_pcr",
    "ours_std",
    "seeds",
    "data",
)
SIDE_BY_SIDE_KINDS = ("subsets", "settings")
SYMBOLS = {"alpha": "α", "beta": "β", "gamma": "γ", "lam": "λ"}

# One compared line: column, subset, ours value, paper value, ours PCR, paper PCR.
Comparison = tuple[str, str, Cell, Cell, Cell, Cell]


@dataclass(frozen=True)
class Grid:
    """One drawn grid: its block label (None: none printed), its display strings (header = the column labels, which
    may repeat: ``paper``, ``Δ``) and how many leading columns are centred marks or parameters (the rest: numbers)."""

    label: str | None
    frame: pd.DataFrame
    marks: int


# -- display texts ----------------------------------------------------------------------------------------------------


def number_text(value: float, decimals: int, signed: bool = False) -> str:
    """A number as the tables print it: ``decimals`` places, scientific when huge or tiny, "—" for NaN."""
    if math.isnan(value):
        return "—"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** (-decimals - 1)):
        return f"{value:+.2e}" if signed else f"{value:.2e}"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def cell_text(cell: Cell, decimals: int, fmt: str) -> str:
    """``mean`` or ``mean ± std``; a missing cell is "—" (md) or "--" (tex)."""
    if cell.missing:
        return "—" if fmt == "md" else "--"
    text = number_text(cell.mean, decimals)
    if cell.std is not None:
        text += " ± " + number_text(cell.std, decimals)
    return text


def _delta_text(a: Cell, b: Cell, decimals: int) -> str:
    return "—" if a.missing or b.missing else number_text(a.mean - b.mean, decimals, signed=True)


def _compared(ours: Cell, paper: Cell, decimals: int, fmt: str) -> list[str]:
    """ours | paper | Δ."""
    return [cell_text(ours, decimals, fmt), cell_text(paper, decimals, fmt), _delta_text(ours, paper, decimals)]


def _data(view: TableView) -> str:
    return "paper" if view.source == "paper" else "synthetic" if view.synthetic else "real"


def _grid(label: str | None, header: list[str], rows: list[list[str]], left: int) -> Grid:
    return Grid(label, pd.DataFrame(rows, columns=header, dtype=object), left)


def _check_fmt(fmt: str) -> None:
    if fmt not in GRID_FORMATS:
        raise ValueError(f"grid format must be one of {GRID_FORMATS}, got {fmt!r}")


# -- the tidy (long) frame --------------------------------------------------------------------------------------------


def _values(value: Cell, pcr: Cell) -> dict[str, object]:
    return {
        "value": value.mean,
        "value_std": math.nan if value.std is None else value.std,
        "pcr": pcr.mean,
        "pcr_std": math.nan if pcr.std is None else pcr.std,
        "seeds": value.seeds,
        "missing": value.missing,
    }


def _subset_rows(view: TableView) -> Iterator[dict[str, object]]:
    for b, block in enumerate(view.blocks):
        common = {"block": b, "label": block.label, "dataset": block.dataset}
        shown = ["".join(marks(block.dataset, s, "md", block.modalities)) for s in block.subsets]
        for c in block.columns:
            head = {**common, "column": c.name, "metric": c.metric, "reference": None}
            for key, mark, value, pcr in zip(block.subset_keys, shown, c.values, c.pcr, strict=True):
                yield {**head, "subset": key, "marks": mark, **_values(value, pcr)}
            if c.with_pcr:
                yield {**head, "subset": "average", "marks": "", **_values(c.average, c.average_pcr)}
        metrics = {c.name: c.metric for c in block.columns}
        for d in block.deltas:
            name = f"{d.column} - {d.reference}"
            head = {**common, "column": name, "metric": metrics[d.column], "reference": d.reference}
            for key, mark, value, pcr in zip(block.subset_keys, shown, d.values, d.pcr, strict=True):
                yield {**head, "subset": key, "marks": mark, **_values(Cell(value), Cell(pcr))}
            yield {**head, "subset": "average", "marks": "", **_values(Cell(d.average), Cell(d.average_pcr))}


def tidy_frame(view: TableView) -> pd.DataFrame:
    """The numbers of ``view`` in long form (the CSV's rows, as numbers).

    Every frame has ``table, source, data`` (``paper``, ``real`` or ``synthetic``), ``column, subset`` (as in the
    CSV) and ``value, value_std, pcr, pcr_std, seeds, missing`` (NaN where there is no number or no spread).
    Per-subset tables add ``block, label, dataset, metric, reference, marks`` (``reference``: the subtracted
    column of Table 1's delta rows, named ``<column> - <reference>``; ``marks``: ● / ○ in the printed header
    order; each column with PCR has a row ``subset == "average"``). Settings tables add one column per
    hyper-parameter (``subset`` is ``average``); cost tables add ``quantity`` (the printed name; ``subset`` is its
    key). ``frame.attrs`` holds ``heading, title, kind, metric, decimals``.
    """
    if view.kind == "subsets":
        rows = list(_subset_rows(view))
        names = ["block", "label", "dataset", "column", "metric", "reference", "subset", "marks"]
    elif view.kind == "settings":
        params = list(view.settings[0][1]) if view.settings else []
        rows = [
            {"column": label, "subset": "average", **values, **_values(avg, pcr)}
            for label, values, avg, pcr in view.settings
        ]
        names = ["column", "subset", *params]
    else:
        rows = [
            {
                "column": model,
                "subset": key,
                "quantity": view.quantities.get(key, key),
                **_values(Cell(value), Cell(math.nan)),
            }
            for model, quantities in view.cost.items()
            for key, value in quantities.items()
        ]
        names = ["column", "subset", "quantity"]
    frame = pd.DataFrame(rows, columns=[*names, *VALUE_FIELDS])
    frame = frame.astype({"value": float, "value_std": float, "pcr": float, "pcr_std": float, "seeds": int})
    frame = frame.astype({"missing": bool})
    frame.insert(0, "table", view.number)
    frame.insert(1, "source", view.source)
    frame.insert(2, "data", _data(view))
    frame.attrs = {
        "heading": view.heading,
        "title": view.title,
        "kind": view.kind,
        "metric": view.metric,
        "decimals": view.decimals,
    }
    return frame


# -- the grids in the paper's layout ----------------------------------------------------------------------------------


def _block_grid(view: TableView, block: BlockView, fmt: str) -> Grid:
    names = display_names(block.dataset, block.modalities)
    deltas = {d.column: d for d in block.deltas}
    header = list(names)
    for c in block.columns:
        header.append(c.name if c.name == c.metric else f"{c.name} {c.metric}")
        if c.with_pcr:
            header.append(f"{c.name} PCR")
    rows = []
    last = len(block.subsets) - 1
    for i, subset in enumerate(block.subsets):
        row = marks(block.dataset, subset, fmt, block.modalities)
        for c in block.columns:
            value = cell_text(c.values[i], view.decimals, fmt)
            if c.name in deltas:
                value += f" ({number_text(deltas[c.name].values[i], view.decimals, signed=True)})"
            row.append(value)
            if c.with_pcr:
                pcr = "/" if i == last else cell_text(c.pcr[i], 2, fmt)
                if c.name in deltas and i != last:
                    pcr += f" ({number_text(deltas[c.name].pcr[i], 2, signed=True)})"
                row.append(pcr)
        rows.append(row)
    average = ["Average"] + [""] * (len(names) - 1)
    for c in block.columns:
        avg = cell_text(c.average, view.decimals, fmt) if c.with_pcr else "/"
        avg_pcr = cell_text(c.average_pcr, 2, fmt)
        if c.name in deltas:
            avg += f" ({number_text(deltas[c.name].average, view.decimals, signed=True)})"
            avg_pcr += f" ({number_text(deltas[c.name].average_pcr, 2, signed=True)})"
        average.append(avg)
        if c.with_pcr:
            average.append(avg_pcr)
    rows.append(average)
    return _grid(block.label, header, rows, len(names))


def settings_header(view: TableView) -> list[str]:
    """The hyper-parameter columns of a settings table, as symbols (α β γ λ)."""
    keys = list(view.settings[0][1]) if view.settings else []
    return [SYMBOLS.get(k, k) for k in keys]


def _setting_values(values: dict[str, float]) -> list[str]:
    return [f"{v:g}" for v in values.values()]


def _cost_grid(view: TableView) -> Grid:
    models = list(view.cost)
    rows = []
    for key, printed in view.quantities.items():
        row = [printed]
        for model in models:
            value = view.cost[model].get(key)
            text = "" if value is None else f"{value:.10g}"
            base = model.removesuffix(" +MWAM")
            if value is not None and base != model and key in view.cost.get(base, {}):
                text += f" ({value - view.cost[base][key]:+.4g})"
            row.append(text)
        rows.append(row)
    return _grid(None, ["", *models], rows, 1)


def wide_frames(view: TableView, fmt: str = "md") -> list[Grid]:
    """``view`` in the paper's layout: one :class:`Grid` per block (one for settings and cost tables).

    Per-subset grids: the subset marks, then per column the metric and its PCR (``mean ± std`` over seeds, "/" for
    the full set's PCR), Table 1's deltas in parentheses, and a last row ``Average``.
    """
    _check_fmt(fmt)
    if view.kind == "subsets":
        return [_block_grid(view, block, fmt) for block in view.blocks]
    if view.kind == "settings":
        header = [*settings_header(view), f"Average {view.metric}", "Average PCR"]
        rows = [
            [*_setting_values(values), cell_text(avg, view.decimals, fmt), cell_text(pcr, 2, fmt)]
            for _, values, avg, pcr in view.settings
        ]
        return [_grid(None, header, rows, len(settings_header(view)))]
    return [_cost_grid(view)]


# -- ours | paper | Δ -------------------------------------------------------------------------------------------------


def side_by_side_reference(ours: TableView, paper: TableView) -> tuple[str, dict, list[str]]:
    """What is compared ("Settings" or "Columns"), the paper's cells by name, and the names ``ours`` shows."""
    if ours.number != paper.number or ours.kind != paper.kind or ours.kind not in SIDE_BY_SIDE_KINDS:
        raise ValueError(
            "side-by-side needs this repository's results and the paper's numbers of one per-subset or settings table"
        )
    if ours.kind == "settings":
        reference: dict = {label: (avg, pcr) for label, _, avg, pcr in paper.settings}
        shown, what = [label for label, *_ in ours.settings], "Settings"
    else:
        reference = {c.name: c for b in paper.blocks for c in b.columns}
        shown, what = [c.name for b in ours.blocks for c in b.columns], "Columns"
    unknown = [name for name in shown if name not in reference]
    if unknown:
        raise ValueError(f"the paper's Table {paper.number} has no {what.lower()} {unknown}")
    return what, reference, shown


def _comparisons(ours: TableView, reference: dict) -> Iterator[Comparison]:
    if ours.kind == "settings":
        for label, _, avg, pcr in ours.settings:
            ref_avg, ref_pcr = reference[label]
            yield label, "average", avg, ref_avg, pcr, ref_pcr
        return
    for block in ours.blocks:
        for c in block.columns:
            ref = reference[c.name]
            for key, value, ref_value, pcr, ref_pcr in zip(
                block.subset_keys, c.values, ref.values, c.pcr, ref.pcr, strict=True
            ):
                yield c.name, key, value, ref_value, pcr, ref_pcr
            yield c.name, "average", c.average, ref.average, c.average_pcr, ref.average_pcr


def side_by_side_frame(ours: TableView, paper: TableView) -> pd.DataFrame:
    """Long ours | paper | Δ (Δ = ours − paper) per column and subset (per setting: ``subset == "average"``), with
    the columns of the side-by-side CSV: ``column, subset, ours, paper, delta, ours_pcr, paper_pcr, delta_pcr,
    ours_std, seeds, data``."""
    _, reference, _ = side_by_side_reference(ours, paper)
    data = _data(ours)
    rows = [
        (
            column,
            key,
            value.mean,
            ref_value.mean,
            value.mean - ref_value.mean,
            pcr.mean,
            ref_pcr.mean,
            pcr.mean - ref_pcr.mean,
            math.nan if value.std is None else value.std,
            value.seeds,
            data,
        )
        for column, key, value, ref_value, pcr, ref_pcr in _comparisons(ours, reference)
    ]
    frame = pd.DataFrame(rows, columns=list(SIDE_BY_SIDE_FIELDS))
    return frame.astype({name: float for name in SIDE_BY_SIDE_FIELDS[2:9]} | {"seeds": int})


def _subsets_side_grids(ours: TableView, reference: dict[str, Column], fmt: str) -> list[Grid]:
    grids = []
    for block in ours.blocks:
        names = display_names(block.dataset, block.modalities)
        header = list(names)
        for c in block.columns:
            title = c.name if c.metric == c.name else f"{c.name} {c.metric}"  # Table 1's FRM: no "FRM FRM"
            header += [f"{title} ours", "paper", "Δ"] + (["PCR ours", "paper", "Δ"] if c.with_pcr else [])
        rows = []
        last = len(block.subsets) - 1
        for i, subset in enumerate(block.subsets):
            row = marks(block.dataset, subset, fmt, block.modalities)
            for c in block.columns:
                ref = reference[c.name]
                row += _compared(c.values[i], ref.values[i], ours.decimals, fmt)
                if c.with_pcr:
                    row += ["/", "/", ""] if i == last else _compared(c.pcr[i], ref.pcr[i], 2, fmt)
            rows.append(row)
        average = ["Average"] + [""] * (len(names) - 1)
        for c in block.columns:
            ref = reference[c.name]
            average += _compared(c.average, ref.average, ours.decimals, fmt)
            if c.with_pcr:
                average += _compared(c.average_pcr, ref.average_pcr, 2, fmt)
        rows.append(average)
        grids.append(_grid(block.label, header, rows, len(names)))
    return grids


def side_by_side_grids(ours: TableView, paper: TableView, fmt: str = "md") -> list[Grid]:
    """ours | paper | Δ in the paper's layout: per block, the marks then per column the metric and PCR compared;
    for a settings table one row per setting with results, its parameters then Average and Average PCR compared."""
    _check_fmt(fmt)
    _, reference, _ = side_by_side_reference(ours, paper)
    if ours.kind == "subsets":
        return _subsets_side_grids(ours, reference, fmt)
    keys = settings_header(ours)
    header = [*keys, f"Average {ours.metric} ours", "paper", "Δ", "Average PCR ours", "paper", "Δ"]
    rows = []
    for label, values, avg, pcr in ours.settings:
        ref_avg, ref_pcr = reference[label]
        rows.append(
            _setting_values(values) + _compared(avg, ref_avg, ours.decimals, fmt) + _compared(pcr, ref_pcr, 2, fmt)
        )
    return [_grid(None, header, rows, len(keys))]
