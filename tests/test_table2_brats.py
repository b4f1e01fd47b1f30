"""Table 2 end to end on a tiny synthetic BraTS2020: RFNet with and without MWAM trained through the one trainer,
15 subsets evaluated by sliding windows, Dice and PCR rendered beside the paper's numbers; exact resume."""

import dataclasses
import json

import pytest
import torch

import datasets.brats2020 as brats
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.experiments import run_table
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.tables.specs import table_runs

RUNTIME = Runtime(device="cpu", progress=False, wandb="disabled", val_every=0, log_every=1)


@pytest.fixture
def tiny(monkeypatch):
    """Brats' smoke preset shrunk: 4 cases of 24 x 24 x 16 voxels, 16^3 crops, 2 epochs of 2 steps."""
    smoke = brats.PRESETS["smoke"]
    run = {
        **smoke.run,
        "data": {"options": {"crop": 16}},
        "train": {"epochs": 2, "batch_size": 2, "iterations_per_epoch": 2, "deterministic": True},
    }
    generator = {"num_cases": 4, "shape": (24, 24, 16), "split": (2, 1, 1)}
    monkeypatch.setitem(brats.PRESETS, "smoke", dataclasses.replace(smoke, run=run, generator=generator))
    return brats.PRESETS["smoke"]


def test_table2_trains_rfnet_with_and_without_mwam_renders_15_rows_and_an_interrupted_run_resumes_exactly(
    tmp_path, tiny
):
    from reproduce.paths import results_root_set_to

    config, _ = table_runs(2).configs(None, tiny, columns=["RFNet +MWAM"])[0]
    with results_root_set_to(tmp_path / "results"):

        def stop(trainer, step):
            if step == 3:  # epoch 1, after its first step
                trainer.request_stop()

        with pytest.raises(TrainingInterruptedError):
            Trainer(config, Registry(tmp_path / "b"), RUNTIME, callbacks=[stop]).run()
        resumed = Trainer(config, Registry(tmp_path / "b"), RUNTIME).run(resume=True)
    run_table(
        2,
        "smoke",
        runtime=RUNTIME,
        output_dir=tmp_path / "out",
        results_dir=tmp_path / "results",
        columns=["RFNet", "RFNet +MWAM"],  # mmFormer needs 32^3 crops (P >= 2): tests/test_mmformer.py
    )
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    assert sorted(r["runtime"]["column"] for r in records) == ["RFNet", "RFNet +MWAM"]
    for record in records:
        assert len(record["subsets"]) == 15 and record["metric"] == "Dice" and record["primary"] == "wt"
        assert all(set(v) == {"wt", "tc", "et", "et_post"} for v in record["subsets"].values())
        assert list(record["subsets"])[-1] == "flair+t1ce+t1+t2" and record["synthetic"]
        assert record["config"]["host"]["options"] == {"fused_loss_start_epoch": 1}
    mwam = next(r for r in records if r["runtime"]["column"] == "RFNet +MWAM")
    assert mwam["config"]["mwam"]["intervention"] == "grad"
    text = (tmp_path / "out" / "table2_vs_paper.md").read_text()
    assert "SYNTHETIC" in text.splitlines()[0] and "RFNet +MWAM Dice ours" in text and "PCR" in text
    rows = [line for line in (tmp_path / "out" / "table2.md").read_text().splitlines() if line.startswith("| ●")
            or line.startswith("| ○")]  # fmt: skip
    assert len(rows) == 15
    # the interrupted and resumed run ends exactly like the table's uninterrupted one (the same configuration)
    assert resumed["subsets"] == mwam["subsets"] and resumed["history"] == mwam["history"]
    saved = [torch.load(r.weights_path(config), weights_only=False)["host"]
             for r in (Registry(tmp_path / "b"), Registry(tmp_path / "results" / "runs"))]  # fmt: skip
    assert all(torch.equal(saved[0][k], saved[1][k]) for k in saved[0])


def test_sde_enhances_rfnets_deepest_encoder_level_and_the_sde_columns_are_an_extension(tmp_path, tiny):
    spec = table_runs(2)
    assert spec.extensions == ("sde",)
    columns = {runtime.column: c for c, runtime in spec.configs(None, tiny, extensions=("sde",))}
    assert set(columns) == {"RFNet", "RFNet +MWAM", "mmFormer", "mmFormer +MWAM", "RFNet +SDE", "RFNet +MWAM +SDE"}
    assert columns["mmFormer"].host.options == {"patch_size": 2}, "the token grid of the preset's 32^3 crops"
    assert columns["mmFormer +MWAM"].mwam.intervention == "grad"
    config = columns["RFNet +MWAM +SDE"]
    assert config.sde.enabled and config.mwam.intervention == "grad"
    from reproduce.paths import results_root_set_to

    with results_root_set_to(tmp_path / "results"):
        one_step = config.with_overrides({"train": {"epochs": 1, "iterations_per_epoch": 1}})
        result = Trainer(one_step, Registry(tmp_path / "r"), RUNTIME).run()
    sde = result["history"][0]["sde"]
    assert {"sde/info_nce", "sde/total"} <= set(sde) and all(torch.isfinite(torch.tensor(v)) for v in sde.values())
