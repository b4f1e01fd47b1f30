"""Rendering this repository's results: seeds -> mean ± std, synthetic labels everywhere, clear errors."""

import csv
import io
import json
import statistics

import pytest

from reproduce.cli import main
from reproduce.runs.records import RecordError, ResultRecord, read_records, write_records
from reproduce.subsets import subset_key, subsets
from reproduce.tables.model import from_paper, from_records
from reproduce.tables.paper_data import load_paper_table
from reproduce.tables.render import FORMATS, render, render_side_by_side


def make_records(synthetic=True, seeds=(0, 1), table=4, columns=("SF-MD", "SF-MD +MWAM")):
    out = []
    for seed in seeds:
        for c, column in enumerate(columns):
            for i, s in enumerate(subsets("casia_surf")):
                value = 60.0 + 5 * i + 10 * c + seed
                out.append(
                    ResultRecord(
                        table,
                        column,
                        f"v{c}",
                        "casia_surf",
                        subset_key(s),
                        "Acc",
                        value,
                        seed,
                        f"run{c}{seed}",
                        synthetic,
                    )
                )
    return out


def test_seeds_are_aggregated_as_mean_and_std_of_per_seed_summaries():
    view = from_records(load_paper_table(4), make_records())
    column = view.blocks[0].columns[0]
    assert column.name == "SF-MD"
    assert column.values[0].mean == 60.5 and column.values[0].std == pytest.approx(statistics.stdev([60, 61]))
    pcr_seed0, pcr_seed1 = (90 - 60) / 90 * 100, (91 - 61) / 91 * 100
    assert column.pcr[0].mean == pytest.approx((pcr_seed0 + pcr_seed1) / 2)
    assert column.pcr[0].std == pytest.approx(statistics.stdev([pcr_seed0, pcr_seed1]))
    assert column.average.mean == pytest.approx(75.5) and column.values[-1].seeds == 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_synthetic_label_in_every_format(fmt):
    table = load_paper_table(4)
    ours = from_records(table, make_records())
    for text in (render(ours, fmt), render_side_by_side(ours, from_paper(table), fmt)):
        assert "SYNTHETIC DATA, not a reproduction of the paper" in text.splitlines()[0]
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(text.split("\n", 1)[1])))
            assert rows and all(r["data"] == "synthetic" for r in rows)
    real = from_records(table, make_records(synthetic=False))
    assert "SYNTHETIC" not in render(real, fmt) and "real data" in render(real, fmt).splitlines()[0]


def test_single_seed_has_no_spread_and_markdown_shows_plus_minus_only_with_seeds():
    table = load_paper_table(4)
    assert "±" not in render(from_records(table, make_records(seeds=(0,))), "md")
    assert "±" in render(from_records(table, make_records()), "md")


def test_side_by_side_delta_is_ours_minus_paper():
    table = load_paper_table(4)
    text = render_side_by_side(from_records(table, make_records(seeds=(0,))), from_paper(table), "csv")
    rows = list(csv.DictReader(io.StringIO(text.split("\n", 1)[1])))
    first = next(r for r in rows if r["column"] == "SF-MD" and r["subset"] == "rgb")
    assert float(first["ours"]) == 60.0 and float(first["paper"]) == 83.92
    assert float(first["delta"]) == pytest.approx(60.0 - 83.92)
    md = render_side_by_side(from_records(table, make_records(seeds=(0,))), from_paper(table), "md")
    assert "paper's numbers only" in md and "MMANet +MWAM" in md


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (make_records() + make_records(synthetic=False, seeds=(5,)), "mixes synthetic and real"),
        (make_records(columns=("SF",)), "does not have"),
        ([], "no result records"),
        (make_records(table=5), "no result records for Table 4"),
        (make_records() + make_records(seeds=(0,)), "two records"),
    ],
)
def test_bad_record_sets(records, message):
    with pytest.raises(ValueError, match=message):
        from_records(load_paper_table(4), records)


def test_record_with_wrong_dataset_or_subset():
    bad = ResultRecord(4, "SF-MD", "v", "nyuv2", "rgb", "Acc", 1.0, 0, "r", True)
    with pytest.raises(ValueError, match="is on 'nyuv2'"):
        from_records(load_paper_table(4), [bad])
    with pytest.raises(ValueError, match="bad subset"):
        ResultRecord(4, "SF-MD", "v", "casia_surf", "rgb+flair", "Acc", 1.0, 0, "r", True)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_records_round_trip(tmp_path, suffix):
    records = make_records()
    path = tmp_path / f"r{suffix}"
    if suffix == ".jsonl":
        write_records(records, path)
    else:
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0].to_dict()))
            writer.writeheader()
            writer.writerows(r.to_dict() for r in records)
    assert read_records(path) == records


def test_record_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(make_records()[0].to_dict())
    path.write_text(good + "\n" + good.replace('"value": 60.0', '"value": "high"') + "\n")
    with pytest.raises(RecordError, match=r"bad.jsonl:2: could not convert"):
        read_records(path)
    path.write_text(good.replace('"seed": 0, ', "") + "\n")
    with pytest.raises(RecordError, match=r"bad.jsonl:1: .*missing fields \['seed'\]"):
        read_records(path)
    with pytest.raises(RecordError, match="no such file"):
        read_records(tmp_path / "absent.jsonl")
    (tmp_path / "r.txt").write_text("x")
    with pytest.raises(RecordError, match=r"expected a \.jsonl or \.csv"):
        read_records(tmp_path / "r.txt")


def test_cli_paper_and_render(tmp_path, capsys):
    assert main(["paper", "4", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("column,subset,value,pcr\n")
    assert main(["paper", "all", "--output-dir", str(tmp_path / "paper")]) == 0
    assert len(list((tmp_path / "paper").glob("table*.md"))) == 22
    assert len(list((tmp_path / "paper").glob("table*.tex"))) == 22
    records = write_records(make_records(), tmp_path / "runs.jsonl")
    out = tmp_path / "table4.md"
    assert main(["render", "4", "--records", str(records), "--side-by-side", "--output", str(out)]) == 0
    assert "SYNTHETIC" in out.read_text()
    assert main(["paper", "99"]) == 2
    assert "no data for Table 99" in capsys.readouterr().err
