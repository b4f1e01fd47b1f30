"""Draw a :class:`TableView` as Markdown, long CSV or LaTeX in the paper's layout, and ours | paper | Δ.

The numbers and texts are pandas DataFrames (:mod:`reproduce.tables.frames`); this module writes them out: CSV by
``DataFrame.to_csv``, Markdown by ``DataFrame.to_markdown`` (tabulate) and LaTeX by ``Styler.to_latex`` (jinja2,
booktabs rules), and adds titles and footers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from reproduce.tables.model import TableView

if TYPE_CHECKING:  # pandas (and NumPy) are imported when a table is drawn: planning a run (--dry-run) needs neither
    import pandas as pd
    from tabulate import TableFormat

    from reproduce.tables.frames import Grid

FORMATS = ("md", "csv", "tex")


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


def _tex_cell(text: str) -> str:
    """LaTeX-escape a body cell; the subset marks (``$\\bullet$``, ``$\\circ$``) are LaTeX already."""
    return text if text.startswith("$") else _tex_escape(text)


def _pipe_format(aligns: list[str]) -> TableFormat:
    """tabulate's pipe table without padding to the column width (the rows stay ``| a | b |``): the header rule
    carries the alignment, ``:-:`` (centred) or ``--:`` (right)."""
    from tabulate import DataRow, TableFormat

    rule = "| " + " | ".join(aligns) + " |"
    row = DataRow("|", "|", "|")
    return TableFormat(None, lambda widths, _aligns: rule, None, None, row, row, 1, ["lineabove", "linebelow"])


def markdown_grid(grid: Grid) -> str:
    """A grid as a Markdown pipe table by ``DataFrame.to_markdown``: marks centred, numbers right-aligned."""
    frame = grid.frame
    aligns = [":-:"] * grid.marks + ["--:"] * (frame.shape[1] - grid.marks)
    return frame.to_markdown(
        index=False,
        headers=list(frame.columns),
        tablefmt=_pipe_format(aligns),
        disable_numparse=True,  # the cells are the printed texts: "0.70" stays "0.70"
        stralign=None,
        numalign=None,
    )


def latex_grid(grid: Grid) -> str:
    """A grid as a booktabs ``tabular`` by ``Styler.to_latex``: texts escaped by :func:`_tex_escape`, marks centred,
    numbers right-aligned, a ``\\midrule`` above the Average row."""
    frame = grid.frame.set_axis(range(grid.frame.shape[1]), axis="columns")  # the labels may repeat
    styler = frame.style.hide(axis="index").format(_tex_cell, escape=None)
    styler = styler.relabel_index([_tex_escape(h) for h in grid.frame.columns], axis="columns")
    spec = "c" * grid.marks + "r" * (frame.shape[1] - grid.marks)
    lines = styler.to_latex(hrules=True, column_format=spec).rstrip("\n").split("\n")
    body = lines.index(r"\midrule") + 1
    for i in reversed(range(len(frame))):
        if frame.iat[i, 0] == "Average":
            lines.insert(body + i, r"\midrule")
    return "\n".join(lines)


def _draw(grid: Grid, fmt: str) -> list[str]:
    parts = []
    if grid.label:
        parts += [f"*{grid.label}*" if fmt == "md" else f"% {grid.label}", ""]
    return [*parts, markdown_grid(grid) if fmt == "md" else latex_grid(grid), ""]


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


def _settings_column_line(view: TableView, fmt: str) -> list[str]:
    if view.kind != "settings" or not view.settings_column:
        return []
    return [f"% Column: {view.settings_column}" if fmt == "tex" else f"Column: {view.settings_column}", ""]


def _heading(heading: str, fmt: str) -> str:
    return f"% {heading}" if fmt == "tex" else f"**{heading}**"


def render_markdown_or_tex(view: TableView, fmt: str) -> str:
    """The title, the grids of :func:`~reproduce.tables.frames.wide_frames` and the footer, as Markdown or LaTeX."""
    from reproduce.tables.frames import wide_frames

    parts = [_heading(view.heading, fmt), "", *_settings_column_line(view, fmt)]
    for grid in wide_frames(view, fmt):
        parts += _draw(grid, fmt)
    parts += _footer(view, fmt)
    return "\n".join(parts).rstrip() + "\n"


def _csv_number(value: float) -> str:
    value = float(value)  # Python's round, not numpy's
    return "" if math.isnan(value) else f"{value:.6g}" if abs(value) >= 1e6 else f"{round(value, 6):g}"


def _csv(frame: pd.DataFrame, numbers: list[str], heading: str | None) -> str:
    """``frame`` by ``DataFrame.to_csv`` with ``numbers`` printed by :func:`_csv_number` ("" for NaN)."""
    text = frame.assign(**{name: frame[name].map(_csv_number) for name in numbers})
    body = text.to_csv(index=False, lineterminator="\n")
    return body if heading is None else f"# {heading}\n{body}"


def render_csv(view: TableView) -> str:
    """Long format ``column,subset,value,pcr`` (+ ``value_std,pcr_std,seeds,data`` for this repository's results).

    ``subset`` is the modality names joined by ``+``; each column has one extra row ``average``. ``pcr`` is
    empty for the full set and for columns without PCR. Table 1's deltas are columns named
    ``<column> - <reference>``. Settings tables: ``column`` = the setting (``alpha=1.2/beta=1/...``),
    ``subset`` = ``average``. Cost tables: ``column`` = the model, ``subset`` = the quantity.
    The rows are those of :func:`~reproduce.tables.frames.tidy_frame`.
    """
    from reproduce.tables.frames import tidy_frame

    frame = tidy_frame(view)
    if view.source != "ours":
        return _csv(frame[["column", "subset", "value", "pcr"]], ["value", "pcr"], None)
    columns = ["column", "subset", "value", "pcr", "value_std", "pcr_std", "seeds", "data"]
    return _csv(frame[columns], ["value", "pcr", "value_std", "pcr_std"], view.heading)


def render(view: TableView, fmt: str) -> str:
    """``fmt`` is one of ``md``, ``csv``, ``tex``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    return render_csv(view) if fmt == "csv" else render_markdown_or_tex(view, fmt)


def render_side_by_side(ours: TableView, paper: TableView, fmt: str) -> str:
    """ours | paper | Δ (ours − paper) for the metric and for PCR: per subset and column of a per-subset table,
    per setting (Average and Average PCR) of a settings table. Only columns / settings with results are drawn;
    the others are listed."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    from reproduce.tables.frames import side_by_side_frame, side_by_side_grids, side_by_side_reference

    what, reference, shown = side_by_side_reference(ours, paper)
    data = "SYNTHETIC DATA, not a reproduction of the paper" if ours.synthetic else "real data"
    heading = f"Table {ours.number}, this repository ({data}) beside the paper's reported numbers: {ours.title}"
    if fmt == "csv":
        numbers = ["ours", "paper", "delta", "ours_pcr", "paper_pcr", "delta_pcr", "ours_std"]
        return _csv(side_by_side_frame(ours, paper), numbers, heading)
    parts = [_heading(heading, fmt), "", *_settings_column_line(ours, fmt)]
    for grid in side_by_side_grids(ours, paper, fmt):
        parts += _draw(grid, fmt)
    prefix = "% " if fmt == "tex" else ""
    paper_only = [name for name in reference if name not in shown]
    if paper_only:
        parts.append(f"{prefix}{what} with the paper's numbers only (no results here yet): {', '.join(paper_only)}.")
    parts.append(f"{prefix}Δ = ours − paper. Values with ± are mean ± standard deviation over seeds.")
    return "\n".join(parts).rstrip() + "\n"
