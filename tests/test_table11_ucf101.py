"""Table 11 (UCF-101 video + optical flow): its columns and presets, the A.3 option, and the table trained from
real runs on synthetic ``.avi`` files that went through ``prepare`` (three rows, beside the paper's numbers)."""

from __future__ import annotations

import pytest

from reproduce.experiments import run_table
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.tables.specs import A3_CLASSIFICATION, table_runs

RUNTIME = Runtime(device="cpu", progress=False, wandb="disabled", log_every=1, checkpoint_every=0)


def _columns(preset: str, extensions: tuple[str, ...] = ()) -> dict:
    import mwam_harness.datasets.ucf101 as ucf101

    pairs = table_runs(11).configs(None, ucf101.PRESETS[preset], extensions=extensions)
    return {runtime.column: (config, runtime) for config, runtime in pairs}


def test_table11_columns_are_the_video_host_with_mwam_ogm_ge_and_lfm_under_balancebenchmarks_settings():
    columns = _columns("paper")
    assert list(columns) == ["Baseline", "MWAM", "OGM-GE", "LFM"]
    for config, runtime in columns.values():
        assert config.host.name == "resnet18_concat_video" and config.modalities == ("video", "flow")
        assert (config.optim.name, config.optim.lr, config.optim.weight_decay) == ("adamw", 1e-3, 0.01)
        assert (config.schedule.name, tuple(config.schedule.milestones), config.schedule.gamma) == (
            "step",
            (10, 20),
            0.1,
        )
        assert (config.train.batch_size, config.train.epochs, config.eval.select) == (32, 30, "last")
        assert runtime.val_split == "test"  # no validation split: monitored, never selected on
    assert columns["MWAM"][0].mwam.intervention == "grad" and columns["Baseline"][0].mwam.intervention == "none"
    assert [p.name for p in columns["OGM-GE"][0].plugins] == ["ogm_ge"]
    assert [p.name for p in columns["LFM"][0].plugins] == ["lfm"]


def test_the_a3_extension_trains_the_same_columns_under_mwams_classification_settings():
    columns = _columns("paper", ("a3", "sum_fusion"))
    a3 = {name: config for name, (config, _) in columns.items() if name.endswith("(A.3)")}
    assert list(a3) == ["Baseline (A.3)", "MWAM (A.3)", "OGM-GE (A.3)", "LFM (A.3)"]
    for config in a3.values():
        assert (config.optim.name, config.optim.lr, config.optim.momentum) == ("sgd", 1e-3, 0.9)
        assert config.optim.weight_decay == 5e-4 and tuple(config.schedule.milestones) == (30, 60, 90)
        assert (config.train.batch_size, config.train.epochs, config.data.options["size"]) == (64, 100, 112)
    assert A3_CLASSIFICATION["train"] == {"epochs": 100, "batch_size": 64}
    assert columns["LFM [sum]"][0].host.options == {"fusion": "sum"}
    assert len({repr(config.to_dict()) for config, _ in columns.values()}) == len(columns)  # distinct runs


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
def test_table11_smoke_trains_every_column_from_prepared_synthetic_videos(tmp_path):
    from mwam_harness.datasets import dataset_spec
    from mwam_harness.datasets.registry import load_object
    from reproduce.paths import results_root_set_to

    out = tmp_path / "out"
    written = run_table(11, "smoke", runtime=RUNTIME, output_dir=out, results_dir=tmp_path / "results")
    assert {"table11.md", "table11_vs_paper.md", "table11.csv"} <= {p.name for p in written}
    text = (out / "table11.md").read_text()
    assert "SYNTHETIC" in text and all(name in text for name in ("Baseline", "MWAM", "OGM-GE", "LFM"))
    rows = [line for line in text.splitlines() if line.startswith(("| ●", "| ○"))]
    assert len(rows) == 3  # video, optical flow, both
    assert "80.71" in (out / "table11_vs_paper.md").read_text()  # the paper's Baseline on both beside ours
    spec = dataset_spec("ucf101")
    with results_root_set_to(tmp_path / "results"):
        registry = Registry()
        config, _ = table_runs(11).configs(None, spec.preset("smoke"), columns=["MWAM"])[0]
        entry = registry.load(config)
        root = config.data.locate()
    assert entry["synthetic"] is True and list(entry["subsets"]) == ["video", "flow", "video+flow"]
    assert any(k.startswith("mwam/") for k in entry["history"][-1]) or entry["plugins"]
    assert load_object(spec.checker)(root) == []  # the prepared synthetic set passes check-data
