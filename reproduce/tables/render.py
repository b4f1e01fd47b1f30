"""Draw a :class:`TableView` as Markdown, long CSV or LaTeX in the paper's layout, and ours | paper | Δ."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator

from reproduce.subsets import display_names, marks, subset_key
from reproduce.tables.model import BlockView, Cell, Column, TableView

FORMATS = ("md", "csv", "tex")


def _number(value: float, decimals: int, signed: bool = False) -> str:
    if math.isnan(value):
        return "—"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** (-decimals - 1)):
        return f"{value:+.2e}" if signed else f"{value:.2e}"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _cell(cell: Cell, decimals: int, fmt: str) -> str:
    if cell.missing:
        return "—" if fmt == "md" else "--"
    text = _number(cell.mean, decimals)
    if cell.std is not None:
        text += " ± " + _number(cell.std, decimals)  # _tex_escape writes it as $\pm$ for LaTeX
    return text


def _tex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("$", r"\$"),
        ("×", r"$\times$"),
        ("±", r"$\pm$"),
        ("—", "--"),
        ("Δ", r"$\Delta$"),
        ("α", r"$\alpha$"),
        ("β", r"$\beta$"),
        ("γ", r"$\gamma$"),
        ("λ", r"$\lambda$"),
    ):
        text = text.replace(a, b)
    return text


def _grid(header: list[str], rows: list[list[str]], fmt: str, left: int) -> str:
    """A Markdown or LaTeX (booktabs) grid; the first ``left`` columns are centred marks."""
    if fmt == "md":
        align = [":-:"] * left + ["--:"] * (len(header) - left)
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    spec = "c" * left + "r" * (len(header) - left)
    body = [" & ".join(_tex_escape(h) for h in header) + r" \\", r"\midrule"]
    for row in rows:
        if row and row[0] == "Average":
            body.append(r"\midrule")
        body.append(" & ".join(row) + r" \\")
    return "\n".join([rf"\begin{{tabular}}{{{spec}}}", r"\toprule", *body, r"\bottomrule", r"\end{tabular}"])


def _block_rows(view: TableView, block: BlockView, fmt: str) -> tuple[list[str], list[list[str]]]:
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
        row = marks(block.dataset, subset, "tex" if fmt == "tex" else "md", block.modalities)
        for c in block.columns:
            value = _cell(c.values[i], view.decimals, fmt)
            if c.name in deltas:
                value += f" ({_number(deltas[c.name].values[i], view.decimals, signed=True)})"
            row.append(value)
            if c.with_pcr:
                pcr = "/" if i == last else _cell(c.pcr[i], 2, fmt)
                if c.name in deltas and i != last:
                    pcr += f" ({_number(deltas[c.name].pcr[i], 2, signed=True)})"
                row.append(pcr)
        rows.append([_tex_escape(x) if fmt == "tex" and not x.startswith("$") else x for x in row])
    average = ["Average"] + [""] * (len(names) - 1)
    for c in block.columns:
        avg = _cell(c.average, view.decimals, fmt) if c.with_pcr else "/"
        avg_pcr = _cell(c.average_pcr, 2, fmt)
        if c.name in deltas:
            avg += f" ({_number(deltas[c.name].average, view.decimals, signed=True)})"
            avg_pcr += f" ({_number(deltas[c.name].average_pcr, 2, signed=True)})"
        average.append(avg)
        if c.with_pcr:
            average.append(avg_pcr)
    rows.append([_tex_escape(x) for x in average] if fmt == "tex" else average)
    return header, rows


def _title(view: TableView, fmt: str) -> str:
    if fmt == "tex":
        return f"% {view.heading}"
    return f"**{view.heading}**"


def _footer(view: TableView, fmt: str) -> list[str]:
    lines = []
    if view.kind == "subsets":
        lines.append(
            "PCR (Eq. 26, %) and the Average row are computed from the per-subset values: Average = mean over "
            "all rows including the full set; Average PCR = mean over the incomplete rows."
        )
    elif view.kind == "settings" and view.source == "ours":
        lines.append(
            "Average and Average PCR (Eq. 26, %) are computed per seed from the per-subset values of each setting: "
            "Average = mean over all subsets including the full set; Average PCR = mean over the incomplete subsets."
        )
    lines += list(view.notes)
    prefix = "% " if fmt == "tex" else ""
    return [prefix + line for line in lines]


SYMBOLS = {"alpha": "α", "beta": "β", "gamma": "γ", "lam": "λ"}


def _settings_header(view: TableView) -> list[str]:
    """The hyper-parameter columns of a settings table (α β γ λ; _tex_escape makes them LaTeX symbols)."""
    keys = list(view.settings[0][1]) if view.settings else []
    return [SYMBOLS.get(k, k) for k in keys]


def _setting_values(values: dict[str, float]) -> list[str]:
    return [f"{v:g}" for v in values.values()]


def _settings_column_line(view: TableView, fmt: str) -> list[str]:
    if not view.settings_column:
        return []
    return [f"% Column: {view.settings_column}" if fmt == "tex" else f"Column: {view.settings_column}", ""]


def _tex_rows(rows: list[list[str]], fmt: str) -> list[list[str]]:
    """LaTeX-escape body cells (marks, already LaTeX, start with ``$``); Markdown rows are returned as they are."""
    if fmt != "tex":
        return rows
    return [[x if x.startswith("$") else _tex_escape(x) for x in row] for row in rows]


def render_markdown_or_tex(view: TableView, fmt: str) -> str:
    parts = [_title(view, fmt), ""]
    if view.kind == "subsets":
        for block in view.blocks:
            if block.label:
                parts += [f"*{block.label}*" if fmt == "md" else f"% {block.label}", ""]
            header, rows = _block_rows(view, block, fmt)
            parts += [_grid(header, rows, fmt, left=len(display_names(block.dataset, block.modalities))), ""]
    elif view.kind == "settings":
        parts += _settings_column_line(view, fmt)
        header = [*_settings_header(view), f"Average {view.metric}", "Average PCR"]
        rows = [
            [*_setting_values(values), _cell(avg, view.decimals, fmt), _cell(p, 2, fmt)]
            for _, values, avg, p in view.settings
        ]
        parts += [_grid(header, _tex_rows(rows, fmt), fmt, left=len(_settings_header(view))), ""]
    else:  # cost
        models = list(view.cost)
        header = ["", *models]
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
        parts += [_grid(header, rows if fmt == "md" else [[_tex_escape(x) for x in r] for r in rows], fmt, 1), ""]
    parts += _footer(view, fmt)
    return "\n".join(parts).rstrip() + "\n"


def _csv_number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6g}" if abs(value) >= 1e6 else f"{round(value, 6):g}"


def render_csv(view: TableView) -> str:
    """Long format ``column,subset,value,pcr`` (+ ``value_std,pcr_std,seeds,data`` for this repository's results).

    ``subset`` is the modality names joined by ``+``; each column has one extra row ``average``. ``pcr`` is
    empty for the full set and for columns without PCR. Table 1's deltas are columns named
    ``<column> - <reference>``. Settings tables: ``column`` = the setting (``alpha=1.2/beta=1/...``),
    ``subset`` = ``average``. Cost tables: ``column`` = the model, ``subset`` = the quantity.
    """
    buffer = io.StringIO()
    ours = view.source == "ours"
    writer = csv.writer(buffer, lineterminator="\n")
    if ours:
        buffer.write(f"# {view.heading}\n")
        writer.writerow(["column", "subset", "value", "pcr", "value_std", "pcr_std", "seeds", "data"])
    else:
        writer.writerow(["column", "subset", "value", "pcr"])
    data = "synthetic" if view.synthetic else "real"

    def emit(column: str, subset: str, value: Cell, pcr: Cell) -> None:
        row = [column, subset, _csv_number(value.mean), _csv_number(pcr.mean)]
        if ours:
            std = [_csv_number(c.std) if c.std is not None else "" for c in (value, pcr)]
            row += [*std, str(value.seeds), data]
        writer.writerow(row)

    if view.kind == "subsets":
        for block in view.blocks:
            keys = [subset_key(s) for s in block.subsets]
            for c in block.columns:
                _emit_column(emit, c, keys)
            for d in block.deltas:
                name = f"{d.column} - {d.reference}"
                for i, key in enumerate(keys):
                    emit(name, key, Cell(d.values[i]), Cell(d.pcr[i]))
                emit(name, "average", Cell(d.average), Cell(d.average_pcr))
    elif view.kind == "settings":
        for label, _, avg, pcr in view.settings:
            emit(label, "average", avg, pcr)
    else:
        for model, quantities in view.cost.items():
            for key, value in quantities.items():
                emit(model, key, Cell(value), Cell(math.nan))
    return buffer.getvalue()


def _emit_column(emit, column: Column, keys: list[str]) -> None:
    for i, key in enumerate(keys):
        emit(column.name, key, column.values[i], column.pcr[i])
    if column.with_pcr:
        emit(column.name, "average", column.average, column.average_pcr)


def render(view: TableView, fmt: str) -> str:
    """``fmt`` is one of ``md``, ``csv``, ``tex``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    return render_csv(view) if fmt == "csv" else render_markdown_or_tex(view, fmt)


SIDE_BY_SIDE_CSV = (
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

# One compared line of the long CSV: column, subset, ours value, paper value, ours PCR, paper PCR.
Comparison = tuple[str, str, Cell, Cell, Cell, Cell]


def render_side_by_side(ours: TableView, paper: TableView, fmt: str) -> str:
    """ours | paper | Δ (ours − paper) for the metric and for PCR: per subset and column of a per-subset table,
    per setting (Average and Average PCR) of a settings table. Only columns / settings with results are drawn;
    the others are listed."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if ours.number != paper.number or ours.kind != paper.kind or ours.kind not in SIDE_BY_SIDE_KINDS:
        raise ValueError(
            "side-by-side needs this repository's results and the paper's numbers of one per-subset or settings table"
        )
    if ours.kind == "settings":
        reference: dict = {label: (avg, pcr) for label, _, avg, pcr in paper.settings}
        shown = [label for label, *_ in ours.settings]
        what, comparisons, grids = "Settings", _settings_comparisons, _settings_side_grid
    else:
        reference = {c.name: c for b in paper.blocks for c in b.columns}
        shown = [c.name for b in ours.blocks for c in b.columns]
        what, comparisons, grids = "Columns", _subsets_comparisons, _subsets_side_grids
    unknown = [name for name in shown if name not in reference]
    if unknown:
        raise ValueError(f"the paper's Table {paper.number} has no {what.lower()} {unknown}")
    heading = _side_heading(ours)
    if fmt == "csv":
        return _side_csv(ours, heading, comparisons(ours, reference))
    parts = [f"**{heading}**" if fmt == "md" else f"% {heading}", "", *grids(ours, reference, fmt)]
    parts += _side_footer(what, [name for name in reference if name not in shown], fmt)
    return "\n".join(parts).rstrip() + "\n"


def _side_heading(ours: TableView) -> str:
    data = "SYNTHETIC DATA, not a reproduction of the paper" if ours.synthetic else "real data"
    return f"Table {ours.number}, this repository ({data}) beside the paper's reported numbers: {ours.title}"


def _delta(a: Cell, b: Cell, decimals: int) -> str:
    return "—" if a.missing or b.missing else _number(a.mean - b.mean, decimals, signed=True)


def _compared(ours: Cell, paper: Cell, decimals: int, fmt: str) -> list[str]:
    """ours | paper | Δ."""
    return [_cell(ours, decimals, fmt), _cell(paper, decimals, fmt), _delta(ours, paper, decimals)]


def _side_footer(what: str, paper_only: list[str], fmt: str) -> list[str]:
    prefix = "% " if fmt == "tex" else ""
    lines = []
    if paper_only:
        lines.append(f"{prefix}{what} with the paper's numbers only (no results here yet): {', '.join(paper_only)}.")
    lines.append(f"{prefix}Δ = ours − paper. Values with ± are mean ± standard deviation over seeds.")
    return lines


def _side_csv(ours: TableView, heading: str, rows: Iterable[Comparison]) -> str:
    """Long CSV ``column,subset,ours,paper,delta,ours_pcr,paper_pcr,delta_pcr,ours_std,seeds,data``."""
    buffer = io.StringIO()
    buffer.write(f"# {heading}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SIDE_BY_SIDE_CSV)
    data = "synthetic" if ours.synthetic else "real"
    for column, key, value, ref_value, pcr, ref_pcr in rows:
        writer.writerow(
            [
                column,
                key,
                _csv_number(value.mean),
                _csv_number(ref_value.mean),
                _csv_number(value.mean - ref_value.mean),
                _csv_number(pcr.mean),
                _csv_number(ref_pcr.mean),
                _csv_number(pcr.mean - ref_pcr.mean),
                "" if value.std is None else _csv_number(value.std),
                value.seeds,
                data,
            ]
        )
    return buffer.getvalue()


def _subsets_comparisons(ours: TableView, paper_columns: dict[str, Column]) -> Iterator[Comparison]:
    for block in ours.blocks:
        for c in block.columns:
            ref = paper_columns[c.name]
            for key, value, ref_value, pcr, ref_pcr in zip(
                block.subset_keys, c.values, ref.values, c.pcr, ref.pcr, strict=True
            ):
                yield c.name, key, value, ref_value, pcr, ref_pcr
            yield c.name, "average", c.average, ref.average, c.average_pcr, ref.average_pcr


def _settings_comparisons(ours: TableView, paper_settings: dict[str, tuple[Cell, Cell]]) -> Iterator[Comparison]:
    for label, _, avg, pcr in ours.settings:
        ref_avg, ref_pcr = paper_settings[label]
        yield label, "average", avg, ref_avg, pcr, ref_pcr


def _subsets_side_grids(ours: TableView, paper_columns: dict[str, Column], fmt: str) -> list[str]:
    """One grid per block: the subset marks, then per column ours | paper | Δ for the metric and for PCR."""
    parts = []
    for block in ours.blocks:
        names = display_names(block.dataset, block.modalities)
        header = list(names)
        for c in block.columns:
            title = c.name if c.metric == c.name else f"{c.name} {c.metric}"  # Table 1's FRM: no "FRM FRM"
            header += [f"{title} ours", "paper", "Δ"] + (["PCR ours", "paper", "Δ"] if c.with_pcr else [])
        rows = []
        last = len(block.subsets) - 1
        for i, subset in enumerate(block.subsets):
            row = marks(block.dataset, subset, "tex" if fmt == "tex" else "md", block.modalities)
            for c in block.columns:
                ref = paper_columns[c.name]
                row += _compared(c.values[i], ref.values[i], ours.decimals, fmt)
                if c.with_pcr:
                    row += ["/", "/", ""] if i == last else _compared(c.pcr[i], ref.pcr[i], 2, fmt)
            rows.append(row)
        average = ["Average"] + [""] * (len(names) - 1)
        for c in block.columns:
            ref = paper_columns[c.name]
            average += _compared(c.average, ref.average, ours.decimals, fmt)
            if c.with_pcr:
                average += _compared(c.average_pcr, ref.average_pcr, 2, fmt)
        rows.append(average)
        if block.label:
            parts += [f"*{block.label}*" if fmt == "md" else f"% {block.label}", ""]
        parts += [_grid(header, _tex_rows(rows, fmt), fmt, left=len(names)), ""]
    return parts


def _settings_side_grid(ours: TableView, paper_settings: dict[str, tuple[Cell, Cell]], fmt: str) -> list[str]:
    """One row per setting with results: its parameter values, then Average and Average PCR ours | paper | Δ."""
    keys = _settings_header(ours)
    header = [*keys, f"Average {ours.metric} ours", "paper", "Δ", "Average PCR ours", "paper", "Δ"]
    rows = []
    for label, values, avg, pcr in ours.settings:
        ref_avg, ref_pcr = paper_settings[label]
        rows.append(
            _setting_values(values) + _compared(avg, ref_avg, ours.decimals, fmt) + _compared(pcr, ref_pcr, 2, fmt)
        )
    return [*_settings_column_line(ours, fmt), _grid(header, _tex_rows(rows, fmt), fmt, left=len(keys)), ""]
