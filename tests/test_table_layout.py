"""Columns of one's own in a paper table: a column on fewer modalities than the table's data set is drawn in a block
of its own subsets (never the table's rows filled with "—"), a paper column trained on other modalities than its
block's is refused before anything trains, and the worked example (a ResNet-18 concat host on RGB + Depth with the
modality_gradient_scale plug-in, Table 4's ``resnet18`` extension) trains and renders end to end."""

import json

import pytest

import mwam_harness.datasets.casia_surf as surf
from reproduce.experiments import run_table, table_layout
from reproduce.runs.runtime import Runtime
from reproduce.tables.paper_data import load_paper_table, with_extension_columns
from reproduce.tables.specs import table_runs
from tests.toy_run import use_tiny_smoke_preset


def test_a_two_modality_extension_column_gets_a_block_of_its_own():
    table = with_extension_columns(load_paper_table(4), {"Mine": ("rgb", "depth"), "Mine on all": None})
    first, own = table.blocks[0], table.blocks[-1]
    assert "Mine on all" in [c.name for c in first.columns] and len(first.subsets) == 7
    assert own.modalities == ("rgb", "depth") and own.label == "Rgb / Depth"
    assert [c.name for c in own.columns] == ["Mine"]
    assert own.subsets == [("rgb",), ("depth",), ("rgb", "depth")]
    again = with_extension_columns(table, {"Mine too": ("rgb", "depth")})
    assert len(again.blocks) == len(table.blocks), "a second column on the same modalities joins that block"


def test_a_paper_column_on_other_modalities_is_refused_before_training():
    smoke = surf.PRESETS["smoke"]
    config, runtime = table_runs(4).configs(None, smoke, columns=["SF-MD"])[0]
    narrowed = config.with_overrides({"data": {"modalities": ["rgb", "depth"]}})
    with pytest.raises(ValueError, match="column 'SF-MD': its runs use the modalities"):
        table_layout(4, [(narrowed, runtime)])
    assert table_layout(4, [(config, runtime)]).blocks[0].columns  # the paper's own modalities: fine


@pytest.mark.slow
def test_the_worked_example_trains_and_renders_its_own_block(tmp_path, monkeypatch):
    use_tiny_smoke_preset(monkeypatch)
    column = "ResNet-18 concat +Depth grad x0.5"
    run_table(4, "smoke", columns=[column], extensions=("resnet18",), runtime=Runtime(wandb="disabled", progress=False),
              output_dir=tmp_path / "out", results_dir=tmp_path / "results")  # fmt: skip
    [entry] = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    assert list(entry["subsets"]) == ["rgb", "depth", "rgb+depth"]
    assert entry["config"]["host"]["name"] == "resnet18_concat"
    # MWAM measures FRM / T / K in every baseline column (intervention none), as in the paper's tables
    assert [p["name"] for p in entry["plugins"]] == ["standard", "modality_gradient_scale", "mwam", "logger"]
    assert entry["plugins"][1]["scales"] == {"depth": 0.5}
    text = (tmp_path / "out" / "table4.md").read_text()
    assert "*Rgb / Depth*" in text and f"{column} Acc" in text and "—" not in text
    rows = [line for line in text.splitlines() if line.startswith(("| ●", "| ○"))]
    assert len(rows) == 3 and all(len(row.split("|")) == 6 for row in rows), rows
