"""The CASIA-SURF ablation tables (5, 7, 8, 9, 10, 16): their run specs, the scripts, and every table at tiny size."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

import mwam_harness.datasets.casia_surf as surf
from reproduce.cli import main
from reproduce.methods.mmanet import MMANet
from reproduce.tables.paper_data import load_paper_table
from reproduce.tables.specs import ABLATION_TABLES, SMALL_BATCH_WEIGHTS, TABLE_RUNS, table_runs
from tests.toy_run import toy_root

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "ablate_intervention": 5,
    "ablate_window": 7,
    "ablate_frm_rule": 8,
    "ablate_weight_fn": 9,
    "ablate_batch_size": 10,
}


@pytest.fixture(scope="module")
def surf_root(tmp_path_factory):
    """A folder with CASIA-SURF's list files: what the paper preset's keys fingerprint."""
    return toy_root(tmp_path_factory.mktemp("surf"))


@pytest.fixture
def configs(surf_root):
    def build(number, preset_name="paper", columns=None):
        preset = surf.PRESETS[preset_name]
        root = str(surf_root) if not preset.synthetic else None
        return {rt.column: c for c, rt in table_runs(number).configs(root, preset, 0, columns)}

    return build


# ---------------------------------------------------------------- specs
def test_every_trainable_column_is_a_column_of_its_paper_table():
    for number, spec in TABLE_RUNS.items():
        paper = load_paper_table(number)
        names = {s.label for s in paper.settings} | {c.name for b in paper.blocks for c in b.columns}
        assert {c.fills for c in spec.columns if c.extension is None} <= names, number  # a part fills its column
        assert not {c.column for c in spec.columns if c.extension} & names, number  # extensions are ours only
    paper_columns = {c.column for c in table_runs(4).columns if c.extension is None}
    assert paper_columns == {"SF-MD", "MMANet", "SF-MD +MWAM", "MMANet +MWAM"}
    assert len(table_runs(9).columns) == 10 and len(table_runs(10).columns) == 8


def test_the_default_setting_is_one_run_across_tables(configs):
    default = configs(4)["MMANet +MWAM"].key
    assert configs(7)["q=2"].key == configs(8)["w/ High-Freq."].key == default
    assert configs(9)["alpha=1.5/beta=1/gamma=0.7/lam=6"].key == default
    assert configs(10)["bs=64 w/ MWAM"].key == default and configs(16)["MMANet +MWAM"].key == default
    vanilla = configs(4)["MMANet"].key
    assert configs(7)["w/o MWAM"].key == configs(8)["w/o MWAM"].key == configs(10)["bs=64 w/o MWAM"].key == vanilla
    assert configs(5)["Hybrid"].key == configs(4)["SF-MD +MWAM"].key
    assert len({c.key for c in configs(7).values()}) == 5


def test_columns_carry_their_setting(configs):
    t4, t7, t8, t9, t10 = configs(4), configs(7), configs(8), configs(9), configs(10)
    assert t4["MMANet"].schedule.milestones == (16, 33, 50) and t4["SF-MD"].schedule.milestones == (30, 60, 90)
    assert t4["MMANet"].method.name == "mmanet" and t4["MMANet +MWAM"].mwam.intervention == "grad"
    assert t4["MMANet +MWAM"].host.options == {}  # no auxiliary heads for MMANet (Sec. 5.2)
    assert t4["SF-MD +MWAM"].mwam.intervention == "hybrid" and t4["SF-MD +MWAM"].host.options == {"aux_heads": True}
    assert t7["q=6"].mwam.options == {"window": 6} and t7["q=1"].mwam.options == {"window": 1}
    assert t8["Direct Sum"].mwam.options == {"rule": "sum"} and t8["w/o High-Freq."].mwam.options == {"rule": "low_l1"}
    assert t9["alpha=2/beta=1.5/gamma=1.3/lam=6.5"].mwam.options == {
        "alpha": 2.0,
        "beta": 1.5,
        "gamma": 1.3,
        "lam": 6.5,
    }
    assert t10["bs=4 w/ MWAM"].train.batch_size == 4
    assert t10["bs=4 w/ MWAM"].mwam.options == {"gamma": 1.0, "lam": 4.0}
    assert SMALL_BATCH_WEIGHTS == {"alpha": 1.5, "beta": 1.0, "gamma": 1.0, "lam": 4.0}
    assert t10["bs=16 w/ MWAM"].mwam.options == {} and t10["bs=1 w/o MWAM"].mwam.intervention == "none"


def test_small_batch_students_share_the_tables_teacher(configs):
    def teacher(config):
        return MMANet.dependencies(config)["teacher"].config

    big, small = teacher(configs(4)["MMANet"]), teacher(configs(10)["bs=1 w/ MWAM"])
    assert small.key == big.key and big.train.batch_size == 64 and big.host.name == "sf"
    smoke = configs(10, "smoke")
    assert smoke["bs=1 w/o MWAM"].method.options["teacher_run"] == {"train": {"batch_size": 8}}
    assert smoke["bs=1 w/o MWAM"].method.options["search_epochs"] == [0]  # the smoke preset's MMANet schedule
    assert teacher(smoke["bs=64 w/o MWAM"]).train.batch_size == 8


# ---------------------------------------------------------------- scripts
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_script_help_explains_the_setting_and_cites_the_table(script, capsys):
    with pytest.raises(SystemExit) as done:
        load_script(script).main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert f"Table {SCRIPTS[script]}" in out and "--preset" in out and "Example:" in out and "--nproc" in out


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("script", "argv", "table", "columns", "stem"),
    [
        ("ablate_window", ["--q", "4", "--baseline"], 7, ["w/o MWAM", "q=4"], "table7_q4"),
        ("ablate_frm_rule", ["--rule", "weighted_sum"], 8, ["Weighted Sum"], "table8_weighted_sum"),
        (
            "ablate_weight_fn",
            ["--alpha", "1.5", "--beta", "0.7"],
            9,
            ["alpha=1.5/beta=0.7/gamma=0.7/lam=6"],
            "table9_alpha=1.5_beta=0.7_gamma=0.7_lam=6",
        ),
        ("ablate_batch_size", ["--batch-size", "1"], 10, ["bs=1 w/o MWAM", "bs=1 w/ MWAM"], "table10_bs1_both"),
        ("ablate_intervention", ["--level", "grad"], 5, ["Gradient"], "table5_grad"),
    ],
)
def test_scripts_run_the_selected_columns(monkeypatch, tmp_path, script, argv, table, columns, stem):
    import reproduce.experiments as experiments

    calls = []

    def fake_run_table(number, **kw):
        calls.append((number, kw))
        out = Path(kw["output_dir"]) / f"{kw['stem']}_vs_paper.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("side by side\n")
        return [out]

    monkeypatch.setattr(experiments, "run_table", fake_run_table)
    assert load_script(script).main([*argv, "--preset", "smoke", "--output-dir", str(tmp_path)]) == 0
    ((number, kw),) = calls
    assert number == table and kw["columns"] == columns and kw["stem"] == stem and kw["preset_name"] == "smoke"
    for name in columns:
        table_runs(table).column(name)  # every selected column exists


def test_weight_fn_script_rejects_settings_the_paper_did_not_run(capsys):
    with pytest.raises(SystemExit, match="not one of Table 9's settings"):
        load_script("ablate_weight_fn").main(["--alpha", "1.7"])


# ---------------------------------------------------------------- every ablation table at tiny size
SMOKE = surf.PRESETS["smoke"]
TINY = dataclasses.replace(
    SMOKE,
    run={
        **SMOKE.run,
        "data": {"options": {"resize": 48, "crop": 36}},  # batch size 1 trains from 33 x 33 on (layer4 >= 2 x 2)
        "eval": {"batch_size": 64},
        "train": {**SMOKE.run["train"], "iterations_per_epoch": 1},
    },
    generator={"num_train": 64, "num_val": 8, "num_test": 8, "size": 48},
)


#: Three tables whose runs overlap (7 and 8 share the default setting and "w/o MWAM"; 16 shares MMANet's with
#: them and adds SF-MD's): 10 distinct runs instead of the 29 of all six tables. Every table, Table 9's ten rows and
#: Table 10's batch sizes are checked by .ci/smoke-ablations (``make ablations-smoke``, the real smoke preset).
SHARED_TABLES = (7, 8, 16)


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
@pytest.mark.slow
def test_ablations_smoke_renders_its_tables_and_trains_shared_runs_once(tmp_path, monkeypatch):
    """What ``make ablations-smoke`` runs (``python -m reproduce ablations --preset smoke``), at tiny size."""
    assert set(SHARED_TABLES) <= set(ABLATION_TABLES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(surf.PRESETS, "smoke", TINY)
    tables = [str(n) for n in SHARED_TABLES]
    assert main(["ablations", "--tables", *tables, "--preset", "smoke", "--wandb", "disabled", "--no-progress"]) == 0
    out = tmp_path / "results" / "smoke"
    for number in SHARED_TABLES:
        for suffix in ("md", "csv", "tex"):
            for stem in (f"table{number}", f"table{number}_vs_paper"):
                text = (out / f"{stem}.{suffix}").read_text()
                assert "SYNTHETIC" in text.splitlines()[0] or "synthetic" in text, (stem, suffix)
    unique = {c.key for n in SHARED_TABLES for c, _ in table_runs(n).configs(None, TINY, 0)}
    entries = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    assert len(unique) == 10 and len(entries) == len(unique) + 1  # every distinct run once, plus MMANet's teacher
    assert sum(e["variant"] == "sf" for e in entries) == 1
    table8 = (out / "table8_vs_paper.md").read_text()
    assert all(f"| {row}" in table8 for row in ("Direct Sum", "w/o High-Freq.", "w/o MWAM")), table8


def test_every_trainable_table_has_a_make_target_and_a_readme_command():
    import re

    makefile, readme = (ROOT / "Makefile").read_text(), (ROOT / "README.md").read_text()
    targets = {name for rule in re.findall(r"^([\w .-]+):", makefile, re.M) for name in rule.split()}
    for number in TABLE_RUNS:
        assert f"table{number}" in targets and f"make table{number}" in readme, number
    assert "ablations-smoke:" in makefile and "-m reproduce ablations --preset smoke" in makefile
    for script in SCRIPTS:
        assert f"scripts/{script}.py" in readme
