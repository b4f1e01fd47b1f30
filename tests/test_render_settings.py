"""Table 9 (a settings table) from this repository's results: per-seed Average / Average PCR, every format,
side by side with the paper, and clear errors."""

import csv
import io
import shutil
import statistics

import pytest

from reproduce.cli import main
from reproduce.runs.records import ResultRecord, write_records
from reproduce.subsets import subset_key, subsets
from reproduce.tables.model import from_paper, from_records
from reproduce.tables.paper_data import PaperDataError, load_paper_table
from reproduce.tables.render import FORMATS, render, render_side_by_side

SYNTHETIC = "SYNTHETIC DATA, not a reproduction of the paper"
ALPHA = "alpha=1.8/beta=1/gamma=0.7/lam=6"  # paper row 2
LAM = "alpha=1.5/beta=1/gamma=0.7/lam=5.7"  # paper row 8
DEFAULT = "alpha=1.5/beta=1/gamma=0.7/lam=6"  # paper row 10 (the paper's default setting)
KEYS = ["rgb", "depth", "ir", "rgb+depth", "rgb+ir", "depth+ir", "rgb+depth+ir"]  # CASIA-SURF, paper order

# Per-subset values in the paper's row order (full set last) and their hand-computed summaries.
VALUES = {
    (DEFAULT, 0): [80.0, 90.0, 85.0, 92.0, 88.0, 95.0, 100.0],  # Average 630/7 = 90; PCR 20,10,15,8,12,5 -> 70/6
    (DEFAULT, 1): [74.0, 90.0, 85.0, 92.0, 88.0, 95.0, 100.0],  # Average 624/7; PCR 26,10,15,8,12,5 -> 76/6
    (ALPHA, 0): [40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 80.0],  # Average 470/7; PCR 50,37.5,25,12.5,0,-12.5 -> 112.5/6
    (LAM, 0): [50.0] * 6 + [100.0],  # Average 400/7; PCR 50 each -> 50
}
AVERAGE = {(DEFAULT, 0): 90.0, (DEFAULT, 1): 624 / 7, (ALPHA, 0): 470 / 7, (LAM, 0): 400 / 7}
AVERAGE_PCR = {(DEFAULT, 0): 70 / 6, (DEFAULT, 1): 76 / 6, (ALPHA, 0): 112.5 / 6, (LAM, 0): 50.0}
PAPER = {ALPHA: (96.42, 3.09), LAM: (95.87, 3.26), DEFAULT: (97.03, 2.02)}


def record(setting, seed, subset, value, synthetic=True, dataset="casia_surf", table=9):
    return ResultRecord(table, setting, "mwam", dataset, subset, "Acc", value, seed, f"{setting}-{seed}", synthetic)


def make_records(synthetic=True, entries=((DEFAULT, 0), (LAM, 0), (DEFAULT, 1), (ALPHA, 0))):
    """Records in an order unlike the paper's (and unlike the labels' sorted order: LAM, DEFAULT, ALPHA), so
    that the view's order must come from the table."""
    return [
        record(setting, seed, key, value, synthetic)
        for setting, seed in entries
        for key, value in zip(KEYS, VALUES[(setting, seed)], strict=True)
    ]


@pytest.fixture
def table():
    return load_paper_table(9)


def csv_rows(text):
    assert text.startswith("# ")
    return list(csv.DictReader(io.StringIO(text.split("\n", 1)[1])))


def test_table9_names_its_data_set_and_the_labels_used_here(table):
    assert table.kind == "settings" and table.dataset == "casia_surf"
    assert [subset_key(s) for s in subsets(table.dataset)] == KEYS
    labels = [s.label for s in table.settings]
    assert labels.index(ALPHA) == 1 and labels.index(LAM) == 7 and labels.index(DEFAULT) == 9
    assert any("7 CASIA-SURF subsets" in note for note in table.notes)


def test_averages_are_computed_per_seed_then_mean_and_std(table):
    view = from_records(table, make_records())
    assert view.source == "ours" and view.synthetic is True and view.kind == "settings"
    assert view.settings_column == table.settings_column
    assert [label for label, *_ in view.settings] == [ALPHA, LAM, DEFAULT]  # paper order, only those with results
    rows = {label: (values, avg, pcr) for label, values, avg, pcr in view.settings}

    values, avg, pcr = rows[DEFAULT]
    assert values == {"alpha": 1.5, "beta": 1.0, "gamma": 0.7, "lam": 6.0}
    assert avg.mean == pytest.approx((90.0 + 624 / 7) / 2) and avg.seeds == 2
    assert avg.std == pytest.approx(statistics.stdev([90.0, 624 / 7]))
    assert pcr.mean == pytest.approx((70 / 6 + 76 / 6) / 2) and pcr.seeds == 2
    assert pcr.std == pytest.approx(statistics.stdev([70 / 6, 76 / 6]))

    for label in (ALPHA, LAM):
        _, avg, pcr = rows[label]
        assert avg.mean == pytest.approx(AVERAGE[(label, 0)]) and avg.std is None and avg.seeds == 1
        assert pcr.mean == pytest.approx(AVERAGE_PCR[(label, 0)]) and pcr.std is None


def test_records_of_other_tables_are_ignored(table):
    others = [record(DEFAULT, 0, key, 1.0, table=4) for key in KEYS]
    assert from_records(table, make_records() + others) == from_records(table, make_records())


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_labelled_and_drawn(table, fmt):
    ours = from_records(table, make_records())
    text = render(ours, fmt)
    assert SYNTHETIC in text.splitlines()[0]
    if fmt == "csv":
        rows = csv_rows(text)
        assert [r["column"] for r in rows] == [ALPHA, LAM, DEFAULT]
        assert all(r["subset"] == "average" and r["data"] == "synthetic" for r in rows)
        default = rows[2]
        assert float(default["value"]) == pytest.approx((90.0 + 624 / 7) / 2, abs=1e-4)
        assert float(default["pcr"]) == pytest.approx((70 / 6 + 76 / 6) / 2, abs=1e-4)
        assert float(default["value_std"]) == pytest.approx(statistics.stdev([90.0, 624 / 7]), abs=1e-5)
        assert float(default["pcr_std"]) == pytest.approx(statistics.stdev([70 / 6, 76 / 6]), abs=1e-5)
        assert default["seeds"] == "2" and rows[0]["seeds"] == "1" and rows[0]["value_std"] == ""
    elif fmt == "md":
        assert "| α | β | γ | λ | Average Acc | Average PCR |" in text
        assert f"| 1.5 | 1 | 0.7 | 6 | {(90.0 + 624 / 7) / 2:.2f} ± " in text
        assert f"| 1.8 | 1 | 0.7 | 6 | {470 / 7:.2f} | {112.5 / 6:.2f} |" in text
        assert text.index("| 1.8 |") < text.index("| 1.5 | 1 | 0.7 | 5.7 |") < text.index("| 1.5 | 1 | 0.7 | 6 |")
        assert "| 1.2 |" not in text  # settings without results are not drawn
    else:
        assert r"$\alpha$ & $\beta$ & $\gamma$ & $\lambda$ & Average Acc & Average PCR \\" in text
        assert r"$\pm$" in text and "textbackslash" not in text and "\\$" not in text
        assert r"\begin{tabular}{ccccrr}" in text
    real = render(from_records(table, make_records(synthetic=False)), fmt)
    assert "SYNTHETIC" not in real and "real data" in real.splitlines()[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_side_by_side_is_labelled_in_every_format(table, fmt):
    text = render_side_by_side(from_records(table, make_records()), from_paper(table), fmt)
    assert SYNTHETIC in text.splitlines()[0] and "beside the paper's reported numbers" in text.splitlines()[0]
    real = render_side_by_side(from_records(table, make_records(synthetic=False)), from_paper(table), fmt)
    assert "SYNTHETIC" not in real and "real data" in real.splitlines()[0]


def test_side_by_side_csv_deltas_are_ours_minus_paper(table):
    text = render_side_by_side(from_records(table, make_records()), from_paper(table), "csv")
    assert text.splitlines()[1] == "column,subset,ours,paper,delta,ours_pcr,paper_pcr,delta_pcr,ours_std,seeds,data"
    rows = csv_rows(text)
    assert [r["column"] for r in rows] == [ALPHA, LAM, DEFAULT]
    for r in rows:
        label = r["column"]
        ours = statistics.fmean(v for (s, _), v in AVERAGE.items() if s == label)
        ours_pcr = statistics.fmean(v for (s, _), v in AVERAGE_PCR.items() if s == label)
        paper, paper_pcr = PAPER[label]
        assert r["subset"] == "average" and r["data"] == "synthetic"
        assert float(r["ours"]) == pytest.approx(ours, abs=1e-4) and float(r["paper"]) == paper
        assert float(r["delta"]) == pytest.approx(ours - paper, abs=1e-4)
        assert float(r["ours_pcr"]) == pytest.approx(ours_pcr, abs=1e-4) and float(r["paper_pcr"]) == paper_pcr
        assert float(r["delta_pcr"]) == pytest.approx(ours_pcr - paper_pcr, abs=1e-4)
    assert rows[2]["seeds"] == "2" and float(rows[2]["ours_std"]) == pytest.approx(
        statistics.stdev([90.0, 624 / 7]), abs=1e-5
    )
    assert rows[0]["seeds"] == "1" and rows[0]["ours_std"] == ""


def test_side_by_side_markdown_and_tex_rows(table):
    ours, paper = from_records(table, make_records()), from_paper(table)
    md = render_side_by_side(ours, paper, "md")
    header = "| α | β | γ | λ | Average Acc ours | paper | Δ | Average PCR ours | paper | Δ |"
    assert header in md
    first = f"| 1.8 | 1 | 0.7 | 6 | {470 / 7:.2f} | 96.42 | {470 / 7 - 96.42:+.2f} | {112.5 / 6:.2f} | 3.09 | "
    assert first + f"{112.5 / 6 - 3.09:+.2f} |" in md
    assert f"| 1.5 | 1 | 0.7 | 5.7 | {400 / 7:.2f} | 95.87 | {400 / 7 - 95.87:+.2f} | 50.00 | 3.26 | +46.74 |" in md
    assert md.index("| 1.8 |") < md.index("| 1.5 | 1 | 0.7 | 5.7 |") < md.index("| 1.5 | 1 | 0.7 | 6 |")
    only = next(line for line in md.splitlines() if line.startswith("Settings with the paper's numbers only"))
    listed = only.split(": ", 1)[1].removesuffix(".").split(", ")
    assert listed == [s.label for s in table.settings if s.label not in (ALPHA, LAM, DEFAULT)]
    tex = render_side_by_side(ours, paper, "tex")
    assert r"$\alpha$ & $\beta$ & $\gamma$ & $\lambda$ & Average Acc ours & paper & $\Delta$" in tex
    assert r"\begin{tabular}{ccccrrrrrr}" in tex and r"$\pm$" in tex and "textbackslash" not in tex
    assert f"1.8 & 1 & 0.7 & 6 & {470 / 7:.2f} & 96.42 & {470 / 7 - 96.42:+.2f} &" in tex
    assert "% Settings with the paper's numbers only" in tex


def test_side_by_side_needs_one_table_of_one_kind(table):
    ours = from_records(table, make_records())
    with pytest.raises(ValueError, match="side-by-side"):
        render_side_by_side(ours, from_paper(load_paper_table(4)), "md")
    with pytest.raises(ValueError, match="format"):
        render_side_by_side(ours, from_paper(table), "html")


def test_unknown_setting_lists_the_valid_labels(table):
    bad = "alpha=1.5/beta=1/gamma=0.7/lam=6.0"  # not how Setting.label spells it
    records = make_records() + [record(bad, 0, key, 90.0) for key in KEYS]
    with pytest.raises(ValueError, match="does not have") as error:
        from_records(table, records)
    message = str(error.value)
    assert bad in message and all(repr(s.label) in message for s in table.settings)


def test_wrong_data_set_is_an_error(table):
    records = make_records() + [record(LAM, 1, key, 90.0, dataset="nyuv2") for key in ("rgb", "depth", "rgb+depth")]
    with pytest.raises(ValueError, match=r"'nyuv2'.*'casia_surf'"):
        from_records(table, records)


def test_missing_subset_names_setting_seed_and_subsets(table):
    records = [r for r in make_records() if not (r.column == DEFAULT and r.seed == 1 and r.subset in ("ir", "rgb+ir"))]
    with pytest.raises(ValueError) as error:
        from_records(table, records)
    message = str(error.value)
    assert DEFAULT in message and "seed 1" in message and "'ir'" in message and "'rgb+ir'" in message
    assert "'depth'" not in message.split("subsets")[1].split(";")[0]  # only the missing ones are listed


def test_duplicate_record_is_an_error(table):
    records = [*make_records(), record(ALPHA, 0, "depth", 51.0)]
    with pytest.raises(ValueError, match=r"two records.*'depth'.*seed 0"):
        from_records(table, records)


def test_subset_not_in_the_subset_list_is_an_error(table):
    records = [*make_records(), record(ALPHA, 3, "ir+rgb", 51.0)]  # valid modalities, not the key's spelling
    with pytest.raises(ValueError, match=r"'ir\+rgb'"):
        from_records(table, records)


def test_synthetic_and_real_are_never_mixed(table):
    records = make_records(entries=((DEFAULT, 0),)) + make_records(synthetic=False, entries=((ALPHA, 0),))
    with pytest.raises(ValueError, match="mixes synthetic and real"):
        from_records(table, records)


def test_no_records_and_cost_tables_are_errors(table):
    with pytest.raises(ValueError, match="no result records for Table 9"):
        from_records(table, [record(DEFAULT, 0, key, 1.0, table=4) for key in KEYS])
    with pytest.raises(ValueError, match="cost table"):
        from_records(load_paper_table(6), make_records())


def copy_table9(tmp_path, edit):
    source = load_paper_table(9).source
    shutil.copy(source, tmp_path / source.name)
    path = tmp_path / source.name
    path.write_text(edit(path.read_text()))
    return path


def test_settings_table_without_data_set_cannot_be_drawn_from_records(tmp_path):
    copy_table9(tmp_path, lambda text: text.replace("dataset: casia_surf\n", ""))
    table = load_paper_table(9, tmp_path)
    assert table.dataset is None
    with pytest.raises(ValueError, match="names no data set"):
        from_records(table, make_records())
    assert from_paper(table).settings == from_paper(load_paper_table(9)).settings  # the paper's view is unchanged


def test_loader_validates_the_data_set_key(tmp_path):
    copy_table9(tmp_path, lambda text: text.replace("dataset: casia_surf", "dataset: casia"))
    with pytest.raises(PaperDataError, match=r"table09\.yaml: dataset: unknown data set 'casia'"):
        load_paper_table(9, tmp_path)
    copy_table9(tmp_path, lambda text: text.replace("lam: 5.7,", "lam: 6.0,"))
    with pytest.raises(PaperDataError, match="settings listed twice"):
        load_paper_table(9, tmp_path)
    table4 = load_paper_table(4).source
    (tmp_path / table4.name).write_text(table4.read_text() + "dataset: casia_surf\n")
    with pytest.raises(PaperDataError, match=r"table04\.yaml: dataset: only settings tables"):
        load_paper_table(4, tmp_path)


@pytest.mark.parametrize("side_by_side", [False, True])
def test_cli_renders_table9_from_records(tmp_path, capsys, side_by_side):
    path = write_records(make_records(), tmp_path / "r.jsonl")
    argv = ["render", "9", "--records", str(path), "--format", "csv"] + (["--side-by-side"] if side_by_side else [])
    assert main(argv) == 0
    rows = csv_rows(capsys.readouterr().out)
    assert [r["column"] for r in rows] == [ALPHA, LAM, DEFAULT]
    out = tmp_path / "t9.md"
    assert main(["render", "9", "--records", str(path), "--output", str(out)]) == 0
    assert SYNTHETIC in out.read_text().splitlines()[0]
