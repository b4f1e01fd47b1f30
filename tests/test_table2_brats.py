"""Table 2 end to end on a tiny synthetic BraTS2020: RFNet with and without MWAM trained through the one trainer,
15 subsets evaluated by sliding windows, Dice and PCR rendered beside the paper's numbers; exact resume."""

import dataclasses
import json

import pytest
import torch

import mwam_harness.datasets.brats2020 as brats
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


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
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
    assert "sde" in spec.extensions
    columns = {runtime.column: c for c, runtime in spec.configs(None, tiny, extensions=("sde",))}
    assert set(columns) >= {
        *("RFNet", "RFNet +MWAM", "mmFormer", "mmFormer +MWAM", "GSS", "GSS +MWAM"),
        *("RFNet +SDE", "RFNet +MWAM +SDE", "mmFormer +SDE", "mmFormer +MWAM +SDE", "GSS +SDE", "GSS +MWAM +SDE"),
    }
    assert all(c.sde.enabled for name, c in columns.items() if name.endswith("+SDE"))
    assert columns["mmFormer +MWAM +SDE"].sde.enabled and columns["mmFormer +SDE"].mwam.intervention == "none"
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


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
def test_gss_trains_its_stages_from_the_rfnet_column_or_an_authors_checkpoint(tmp_path, tiny):
    from reproduce.engine.plan import plan_runs
    from reproduce.paths import results_root_set_to

    spec = table_runs(2)
    configs = {
        runtime.column: (c, runtime) for c, runtime in spec.configs(None, tiny, columns=["RFNet", "GSS", "GSS +MWAM"])
    }
    rfnet, gss, gss_mwam = (configs[k][0] for k in ("RFNet", "GSS", "GSS +MWAM"))
    assert gss.method.options == {"stage": 2} and gss.host.options == rfnet.host.options
    plan = plan_runs(list(configs.values()))
    by_key = {p.key: p for p in plan}
    assert len(plan) == 5, "RFNet once, two GSS stages, two GSS +MWAM stages"
    stage1 = by_key[by_key[gss.key].dependencies["previous"]]
    assert stage1.config.method.options == {"stage": 1} and stage1.dependencies == {"init": rfnet.key}
    mwam1 = by_key[by_key[gss_mwam.key].dependencies["previous"]]
    assert mwam1.config.mwam.intervention == "grad" and mwam1.dependencies == {"init": rfnet.key}
    assert [p.key for p in plan].index(rfnet.key) < [p.key for p in plan].index(stage1.key)

    run_table(
        2, "smoke", runtime=RUNTIME, output_dir=tmp_path / "out", results_dir=tmp_path / "results", columns=["GSS"]
    )
    registry = Registry(tmp_path / "results" / "runs")
    records = {
        r["config"]["method"]["options"].get("stage", 0): r for r in map(registry.load, (rfnet, stage1.config, gss))
    }
    assert records[2]["method"]["previous"] == stage1.key and records[1]["method"]["init"] == rfnet.key
    assert records[2]["runtime"]["column"] == "GSS" and len(records[2]["subsets"]) == 15
    curves = (registry.root / gss.key / "curves.csv").read_text()
    assert ",loss/soft_sep," in curves
    assert "GSS Dice ours" in (tmp_path / "out" / "table2_vs_paper.md").read_text()

    with results_root_set_to(tmp_path / "results"):
        # stage 1 starts from the RFNet column's final weights
        trainer = Trainer(stage1.config, registry, RUNTIME)
        trainer.setup()
        start = torch.load(registry.weights_path(rfnet), weights_only=False)["host"]
        assert all(torch.equal(v, start[k]) for k, v in trainer.host.state_dict().items())
        # ... or from a checkpoint file in the authors' format (DataParallel keys under state_dict)
        authors = tmp_path / "model_last_brast2020.pth"
        torch.save({"epoch": 299, "state_dict": {f"module.{k}": v for k, v in start.items()}}, authors)
        from_file = gss.with_overrides({"method": {"options": {"stage": 1, "init_weights": str(authors)}}})
        trainer = Trainer(from_file, registry, RUNTIME)
        trainer.setup()
        assert all(torch.equal(v, start[k]) for k, v in trainer.host.state_dict().items())
        import hashlib

        digest = hashlib.sha256(authors.read_bytes()).hexdigest()
        assert trainer.plugins.method.describe()["init_weights_sha256"] == digest
        torch.save({"state_dict": {"encoder.weight": torch.zeros(1)}}, authors)
        with pytest.raises(ValueError, match="not a rfnet checkpoint"):
            Trainer(from_file, registry, RUNTIME).setup()


def test_table15_is_paper_only_and_says_so(tmp_path):
    from reproduce.cli import main

    with pytest.raises(ValueError, match="Table 15 is paper-only"):
        table_runs(15)
    assert main(["paper", "15", "--output-dir", str(tmp_path)]) in (0, None)
    text = (tmp_path / "table15.md").read_text()
    assert "paper's reported numbers" in text.splitlines()[0] and "Paper-only" in text
    rows = [line for line in text.splitlines() if line.startswith(("| ○", "| ●"))]
    assert len(rows) == 15 and "| Average |" in text and "75.10 | 12.68" in text  # HeMIS: Average Dice, PCR


def test_paper_preset_trains_mmformer_as_a3_and_gss_as_five_stages_from_the_rfnet_column():
    from reproduce.engine.plan import plan_key, plan_runs

    paper = brats.PRESETS["paper"]
    configs = {runtime.column: (c, runtime) for c, runtime in table_runs(2).configs(None, paper)}
    rfnet, mmformer, gss = (configs[k][0] for k in ("RFNet", "mmFormer", "GSS"))
    assert (rfnet.train.epochs, rfnet.train.iterations_per_epoch, rfnet.optim.weight_decay) == (300, 150, 1e-5)
    assert (mmformer.train.epochs, mmformer.train.iterations_per_epoch, mmformer.optim.weight_decay) == (
        1000,
        110,
        1e-4,
    )
    assert configs["mmFormer +MWAM"][0].train.epochs == 1000 and mmformer.host.options == {}
    assert gss.method.resolved_options().stage == 5
    assert (gss.train.epochs, gss.optim.weight_decay) == (300, 1e-5)
    plan = plan_runs([configs[k] for k in ("RFNet", "GSS", "GSS +MWAM")])
    assert len(plan) == 11, "RFNet once, five stages each"
    first = [p for p in plan if p.config.method.name == "gss" and p.config.method.options == {"stage": 1}]
    assert len(first) == 2 and all(p.dependencies == {"init": plan_key(rfnet)} for p in first)
