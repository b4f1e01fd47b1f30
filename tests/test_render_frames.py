"""Tables as pandas DataFrames (reproduce/tables/frames.py) and their rendering through pandas: the tidy frame holds
the numbers, the CSV is written from it, Markdown (DataFrame.to_markdown) and LaTeX (Styler.to_latex) from the wide
frames; a golden table pins the exact output and the drawn cells parse back to the frames' texts."""

import io
import math

import pandas as pd
import pytest

from reproduce.tables.frames import side_by_side_frame, side_by_side_grids, tidy_frame, wide_frames
from reproduce.tables.model import BlockView, TableView, column_from_runs, from_paper, from_records
from reproduce.tables.paper_data import available_tables, load_paper_table
from reproduce.tables.render import _tex_cell, _tex_escape, render, render_side_by_side
from tests.test_render_results import make_records
from tests.test_render_settings import make_records as make_settings_records


def toy_view() -> TableView:
    """Two seeds (mean ± std), one column with a missing subset (— / --), a LaTeX special in a name and a note."""
    subsets = (("rgb",), ("depth",), ("rgb", "depth"))
    columns = (
        column_from_runs("Mine", "MIoU", True, [[40.0, 38.5, 50.0], [41.0, 39.0, 51.0]]),
        column_from_runs("Mine_2 +MWAM", "MIoU", True, [[45.0, math.nan, 50.5]]),
    )
    block = BlockView("nyuv2", None, None, subsets, columns)
    return TableView(3, "A toy table", "subsets", "MIoU", 2, "ours", True, blocks=(block,), notes=("50% & more",))


HEADING = "Table 3 (this repository, SYNTHETIC DATA, not a reproduction of the paper): A toy table"
FOOTER = (
    "PCR (Eq. 26, %) and the Average row are computed from the per-subset values: Average = mean over all rows "
    "including the full set; Average PCR = mean over the incomplete rows."
)
GOLDEN_MD = f"""**{HEADING}**

| Rgb | Depth | Mine MIoU | Mine PCR | Mine_2 +MWAM MIoU | Mine_2 +MWAM PCR |
| :-: | :-: | --: | --: | --: | --: |
| ● | ○ | 40.50 ± 0.71 | 19.80 ± 0.28 | 45.00 | 10.89 |
| ○ | ● | 38.75 ± 0.35 | 23.26 ± 0.37 | — | — |
| ● | ● | 50.50 ± 0.71 | / | 50.50 | / |
| Average |  | 43.25 ± 0.59 | 21.53 ± 0.05 | — | — |

{FOOTER}
50% & more
"""
GOLDEN_TEX = rf"""% {HEADING}

\begin{{tabular}}{{ccrrrr}}
\toprule
Rgb & Depth & Mine MIoU & Mine PCR & Mine\_2 +MWAM MIoU & Mine\_2 +MWAM PCR \\
\midrule
$\bullet$ & $\circ$ & 40.50 $\pm$ 0.71 & 19.80 $\pm$ 0.28 & 45.00 & 10.89 \\
$\circ$ & $\bullet$ & 38.75 $\pm$ 0.35 & 23.26 $\pm$ 0.37 & -- & -- \\
$\bullet$ & $\bullet$ & 50.50 $\pm$ 0.71 & / & 50.50 & / \\
\midrule
Average &  & 43.25 $\pm$ 0.59 & 21.53 $\pm$ 0.05 & -- & -- \\
\bottomrule
\end{{tabular}}

% {FOOTER}
% 50% & more
"""
GOLDEN_CSV = f"""# {HEADING}
column,subset,value,pcr,value_std,pcr_std,seeds,data
Mine,rgb,40.5,19.8039,0.707107,0.277297,2,synthetic
Mine,depth,38.75,23.2647,0.353553,0.374351,2,synthetic
Mine,rgb+depth,50.5,,0.707107,,2,synthetic
Mine,average,43.25,21.5343,0.589256,0.048527,2,synthetic
Mine_2 +MWAM,rgb,45,10.8911,,,1,synthetic
Mine_2 +MWAM,depth,,,,,1,synthetic
Mine_2 +MWAM,rgb+depth,50.5,,,,1,synthetic
Mine_2 +MWAM,average,,,,,1,synthetic
"""


@pytest.mark.parametrize(("fmt", "golden"), [("md", GOLDEN_MD), ("tex", GOLDEN_TEX), ("csv", GOLDEN_CSV)])
def test_golden_rendering(fmt, golden):
    assert render(toy_view(), fmt) == golden


def markdown_grids(text: str) -> list[list[list[str]]]:
    """Every pipe table of ``text``: its lines split on ``|`` and stripped, the alignment rule left out."""
    grids, current = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        if current is None:
            current = []
            grids.append(current)
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if not all(set(cell) <= set(":-") and cell for cell in cells):
            current.append(cells)
    return grids


def latex_grids(text: str) -> list[list[list[str]]]:
    """Every ``tabular`` of ``text``: its rows split on `` & ``, booktabs rules left out."""
    grids, current = [], None
    for line in text.splitlines():
        if line.startswith(r"\begin{tabular}"):
            current = []
            grids.append(current)
        elif line == r"\end{tabular}":
            current = None
        elif current is not None and line.endswith(r" \\"):
            current.append([cell.strip() for cell in line.removesuffix(r" \\").split(" & ")])
    return grids


def texts(grid, tex: bool) -> list[list[str]]:
    header = [_tex_escape(h) if tex else h for h in grid.frame.columns]
    rows = [[_tex_cell(x) if tex else x for x in row] for row in grid.frame.itertuples(index=False)]
    return [[h.strip() for h in header], *[[x.strip() for x in row] for row in rows]]


def views():
    for number in available_tables():
        yield from_paper(load_paper_table(number))
    yield from_records(load_paper_table(4), make_records())
    yield from_records(load_paper_table(9), make_settings_records())
    yield toy_view()


def test_markdown_and_latex_parse_back_to_the_wide_frames():
    """The drawn cells are the frames' texts, cell by cell: Markdown split on ``|``, LaTeX on ``&``."""
    for view in views():
        for fmt, parse in (("md", markdown_grids), ("tex", latex_grids)):
            expected = [texts(grid, fmt == "tex") for grid in wide_frames(view, fmt)]
            assert parse(render(view, fmt)) == expected, (view.number, fmt)
    for number, records in ((4, make_records()), (9, make_settings_records())):
        table = load_paper_table(number)
        ours, paper = from_records(table, records), from_paper(table)
        for fmt, parse in (("md", markdown_grids), ("tex", latex_grids)):
            expected = [texts(grid, fmt == "tex") for grid in side_by_side_grids(ours, paper, fmt)]
            assert parse(render_side_by_side(ours, paper, fmt)) == expected, (number, fmt)


def test_the_toy_markdown_parses_back_to_the_cells_drawn_before_pandas():
    """The cells of the hand-written renderer that DataFrame.to_markdown replaced, written out."""
    [grid] = markdown_grids(render(toy_view(), "md"))
    assert grid == [
        ["Rgb", "Depth", "Mine MIoU", "Mine PCR", "Mine_2 +MWAM MIoU", "Mine_2 +MWAM PCR"],
        ["●", "○", "40.50 ± 0.71", "19.80 ± 0.28", "45.00", "10.89"],
        ["○", "●", "38.75 ± 0.35", "23.26 ± 0.37", "—", "—"],
        ["●", "●", "50.50 ± 0.71", "/", "50.50", "/"],
        ["Average", "", "43.25 ± 0.59", "21.53 ± 0.05", "—", "—"],
    ]


def test_tidy_frame_has_one_row_per_block_subset_and_column():
    view = from_records(load_paper_table(4), make_records())
    frame = view.to_frame()
    assert frame.equals(tidy_frame(view))
    assert frame.attrs["heading"] == view.heading and frame.attrs["kind"] == "subsets"
    assert set(frame["data"]) == {"synthetic"} and set(frame["source"]) == {"ours"} and set(frame["table"]) == {4}
    assert len(frame) == 2 * (7 + 1)  # two columns, seven subsets and the average each
    rgb = frame[(frame["column"] == "SF-MD") & (frame["subset"] == "rgb")].iloc[0]
    cell = view.blocks[0].columns[0].values[0]
    assert (rgb["value"], rgb["value_std"], rgb["seeds"], rgb["missing"]) == (cell.mean, cell.std, 2, False)
    assert rgb["marks"] == "●○○" and rgb["dataset"] == "casia_surf" and rgb["metric"] == "Acc"
    full = frame[(frame["column"] == "SF-MD") & (frame["subset"] == "rgb+depth+ir")].iloc[0]
    assert full["marks"] == "●●●" and math.isnan(full["pcr"])
    average = frame[(frame["column"] == "SF-MD") & (frame["subset"] == "average")].iloc[0]
    assert average["value"] == pytest.approx(75.5) and average["marks"] == ""


def test_tidy_frame_of_table1_has_its_deltas_and_no_frm_average():
    frame = from_paper(load_paper_table(1)).to_frame()
    delta = frame[frame["column"] == "Multi-modal - Uni-modal"]
    assert set(delta["reference"]) == {"Uni-modal"} and len(delta) == 8
    rgb = delta[delta["subset"] == "rgb"].iloc[0]
    assert rgb["value"] == pytest.approx(80.10 - 91.06)
    frm = frame[frame["column"] == "FRM"]
    assert "average" not in set(frm["subset"]) and frm["pcr"].isna().all()


def test_tidy_frames_of_settings_and_cost_tables():
    settings = from_records(load_paper_table(9), make_settings_records()).to_frame()
    assert list(settings.columns[3:9]) == ["column", "subset", "alpha", "beta", "gamma", "lam"]
    assert set(settings["subset"]) == {"average"} and list(settings["seeds"]) == [1, 1, 2]
    cost = from_paper(load_paper_table(6)).to_frame()
    assert {"quantity", "value"} <= set(cost.columns) and cost["pcr"].isna().all()
    assert set(cost["subset"]) >= {"params_m", "flops_g"}


@pytest.mark.parametrize("number", [1, 2, 4, 6, 9, 13])
def test_the_csv_is_the_tidy_frame(number):
    """Reading the CSV back with pandas gives the tidy frame's columns (numbers to the CSV's six digits)."""
    view = from_paper(load_paper_table(number))
    read = pd.read_csv(io.StringIO(render(view, "csv")), keep_default_na=False, na_values=[""])
    frame = view.to_frame()
    assert list(read["column"]) == list(frame["column"]) and list(read["subset"]) == list(frame["subset"])
    for name in ("value", "pcr"):
        assert read[name].to_numpy() == pytest.approx(frame[name].to_numpy(), rel=1e-5, abs=1e-6, nan_ok=True)


def test_the_side_by_side_csv_is_its_frame():
    table = load_paper_table(4)
    ours, paper = from_records(table, make_records()), from_paper(table)
    text = render_side_by_side(ours, paper, "csv")
    read = pd.read_csv(io.StringIO(text), comment="#", keep_default_na=False, na_values=[""])
    frame = side_by_side_frame(ours, paper)
    assert list(read.columns) == list(frame.columns) and len(read) == len(frame)
    for name in ("ours", "paper", "delta", "ours_pcr", "paper_pcr", "delta_pcr", "ours_std"):
        assert read[name].to_numpy() == pytest.approx(frame[name].to_numpy(), rel=1e-5, abs=1e-6, nan_ok=True)
    assert (frame["delta"] == frame["ours"] - frame["paper"]).all()


def test_wide_frames_are_in_the_papers_layout():
    [grid] = wide_frames(toy_view())
    assert grid.marks == 2 and grid.label is None
    assert list(grid.frame.columns) == [
        "Rgb",
        "Depth",
        "Mine MIoU",
        "Mine PCR",
        "Mine_2 +MWAM MIoU",
        "Mine_2 +MWAM PCR",
    ]
    assert list(grid.frame.iloc[-1]) == ["Average", "", "43.25 ± 0.59", "21.53 ± 0.05", "—", "—"]
    [tex] = wide_frames(toy_view(), "tex")
    assert list(tex.frame.iloc[1, :2]) == [r"$\circ$", r"$\bullet$"] and tex.frame.iloc[1, -1] == "--"
    assert [g.label for g in wide_frames(from_paper(load_paper_table(13)))] == ["Rgb / Depth", "Rgb / Ir", "Depth / Ir"]
    with pytest.raises(ValueError, match="grid format"):
        wide_frames(toy_view(), "csv")
