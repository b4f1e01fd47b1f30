"""Table 3 end to end on a tiny synthetic NYU-Depth V2: ESANet-MD + MWAM through the one trainer, the
three subsets' MIoU and PCR beside the paper's; MMANet-seg from its full-modality teacher with its weak-combination
search, and an interrupted MMANet-seg run that resumes exactly."""

import dataclasses
import json

import pytest
import torch

import mwam_harness.datasets.nyuv2 as nyuv2
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.experiments import run_table
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.tables.specs import table_runs

# No epoch checkpoints (a 72 M-parameter host's is ~0.6 GB; an interrupted run still writes one).
RUNTIME = Runtime(device="cpu", progress=False, wandb="disabled", val_every=0, log_every=1, checkpoint_every=0)


@pytest.fixture
def tiny(monkeypatch):
    """The smoke preset shrunk: 4 training and 1 test image of 32 x 32, 2 epochs of 2 steps of batch 2."""
    smoke = nyuv2.PRESETS["smoke"]
    run = {
        **smoke.run,
        "data": {"options": {"height": 32, "width": 32}},
        "train": {"epochs": 2, "batch_size": 2, "iterations_per_epoch": 2, "deterministic": True},
        "eval": {"batch_size": 1},
    }
    generator = {"num_train": 4, "num_test": 1, "height": 32, "width": 32}
    monkeypatch.setitem(nyuv2.PRESETS, "smoke", dataclasses.replace(smoke, run=run, generator=generator))
    return nyuv2.PRESETS["smoke"]


def test_table3_trains_esanet_md_with_mwam_and_renders_three_rows(tmp_path, tiny):
    run_table(
        3,
        "smoke",
        runtime=RUNTIME,
        output_dir=tmp_path / "out",
        results_dir=tmp_path / "results",
        columns=["ESANet-MD +MWAM"],  # (a 72 M-parameter run writes ~1 GB of checkpoints: one column here)
    )
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    assert [r["runtime"]["column"] for r in records] == ["ESANet-MD +MWAM"]
    assert records[0]["config"]["mwam"]["intervention"] == "grad"
    for record in records:
        assert list(record["subsets"]) == ["rgb", "depth", "rgb+depth"] and record["primary"] == "miou"
        assert record["synthetic"] and record["config"]["host"]["name"] == "esanet_md"
    text = (tmp_path / "out" / "table3_vs_paper.md").read_text()
    assert "SYNTHETIC" in text.splitlines()[0] and "ESANet-MD +MWAM MIoU ours" in text and "PCR" in text
    rows = [
        line for line in (tmp_path / "out" / "table3.md").read_text().splitlines() if line.startswith(("| ●", "| ○"))
    ]
    assert len(rows) == 3
    # The per-class table: one row per class some subset scored, each record's iou_<k> shown under its subset.
    record = records[0]
    classes = (tmp_path / "out" / "table3_classes.md").read_text().splitlines()
    assert "SYNTHETIC" in classes[0] and "ESANet-MD +MWAM Rgb | ESANet-MD +MWAM Depth" in classes[2]
    labels = sorted({int(k[4:]) for values in record["subsets"].values() for k in values if k.startswith("iou_")})
    assert labels and [line.split(" | ")[0][2:] for line in classes[4 : 4 + len(labels)]] == [
        nyuv2.CLASS_NAMES[k] for k in labels
    ]
    assert classes[4 + len(labels)].startswith(f"| mean of these {len(labels)} classes |")
    first = classes[4].split(" | ")
    expected = record["subsets"]["rgb"].get(f"iou_{labels[0]}")
    assert first[1] == (f"{expected:.2f}" if expected is not None else "-")


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
def test_mmanet_seg_trains_from_its_teacher_searches_and_resumes_exactly(tmp_path, tiny):
    from reproduce.paths import results_root_set_to

    config, _ = table_runs(3).configs(None, tiny, columns=["MMANet"])[0]
    assert config.method.name == "mmanet_seg" and config.host.name == "mmanet_seg"
    small = {"encoder": "resnet18", "channels_decoder": [128, 64, 32]}  # the smoke preset's ESANet
    assert config.method.options == {"search_epochs": [0], "begin_epoch": 0, "teacher_host_options": small}
    assert config.host.options == small
    run_table(3, "smoke", runtime=RUNTIME, output_dir=tmp_path / "out", results_dir=tmp_path / "results",
              columns=["MMANet"])  # fmt: skip
    registry = Registry(tmp_path / "results" / "runs")
    record = registry.load(config)
    method = record["method"]
    assert method["weak"] in ("rgb", "depth") and set(method["distance"]) == {"rgb", "depth"}
    teacher = next(json.loads(p.read_text()) for p in registry.root.glob("*.json") if p.stem == method["teacher_run"])
    assert teacher["config"]["host"]["name"] == "esanet" and teacher["config"]["method"]["name"] == "standard"
    assert teacher["config"]["host"]["options"] == small  # the teacher's features match its student's
    curves = (registry.root / config.key / "curves.csv").read_text()
    assert ",loss/distill," in curves and ",loss/auxiliary," in curves

    original = torch.load(registry.weights_path(config), weights_only=False)["host"]

    def stop(trainer, step):
        if step == 3:  # epoch 1, after its first step: the search is done, the terms are on
            trainer.request_stop()

    with results_root_set_to(tmp_path / "results"):
        with pytest.raises(TrainingInterruptedError):
            Trainer(config, registry, RUNTIME, callbacks=[stop]).run(force=True)
        resumed = Trainer(config, registry, RUNTIME).run(resume=True, force=True)
    assert resumed["subsets"] == record["subsets"] and resumed["history"] == record["history"]
    assert resumed["method"] == record["method"]
    saved = torch.load(registry.weights_path(config), weights_only=False)["host"]
    assert all(torch.equal(saved[k], original[k]) for k in original)


def test_sde_columns_enhance_each_encoders_layer4(tiny):
    from mwam_harness import models
    from mwam_harness.models import HostOutput
    from reproduce.methods.sde.enhancer import BranchEnhancer

    columns = {runtime.column: c for c, runtime in table_runs(3).configs(None, tiny, extensions=("sde",))}
    assert columns["ESANet-MD +MWAM +SDE"].sde.enabled and columns["ESANet-MD +MWAM +SDE"].mwam.intervention == "grad"
    assert columns["MMANet"].method.name == "mmanet_seg" and not columns["ESANet-MD"].sde.enabled
    torch.manual_seed(0)
    host = models.build("esanet_md").train()
    enhancer = BranchEnhancer(host.feature_branches(), {})
    enhancer.begin_step(0.5)
    out = host(host.example_inputs(2, torch.Generator().manual_seed(0)), None)
    assert {m: e.shape for m, e in enhancer.embeddings.items()} == {"rgb": (2, 2048), "depth": (2, 2048)}
    loss, _ = enhancer.loss(HostOutput(out.logits, present=torch.ones(2, 2, dtype=torch.bool)))
    loss.backward()
    assert torch.isfinite(loss) and host.encoder_depth.layer4[0].conv1.weight.grad is not None


def test_pretrained_reaches_every_esanet_host_and_the_mmanet_seg_teacher(tiny, tmp_path):
    from reproduce.engine.plan import plan_runs

    weights = tmp_path / "resnet50-0676ba61.pth"
    with pytest.raises(ValueError, match="builds esanet_md with resnet18 encoders"):
        table_runs(3).configs(None, tiny, pretrained=str(weights))  # the smoke hosts' small encoders
    mmanet_seg = {k: v for k, v in tiny.methods["mmanet_seg"].items() if k != "teacher_host_options"}
    tiny = dataclasses.replace(tiny, hosts={}, methods={"mmanet_seg": mmanet_seg})  # the paper's ResNet-50 hosts
    pairs = table_runs(3).configs(None, tiny, pretrained=str(weights))
    columns = {runtime.column: c for c, runtime in pairs}
    assert columns["ESANet-MD"].host.options["pretrained"] == str(weights.resolve())
    student = columns["MMANet"]
    assert student.host.options["pretrained"] == str(weights.resolve())
    teacher = next(p for p in plan_runs(pairs) if p.config.host.name == "esanet")
    assert teacher.config.host.options == {"pretrained": str(weights.resolve())}
    plain = {runtime.column: c for c, runtime in table_runs(3).configs(None, tiny)}
    assert "pretrained" not in plain["ESANet-MD"].host.options and plain["ESANet-MD"].key != columns["ESANet-MD"].key
    with pytest.raises(ValueError, match="no chosen column"):
        import mwam_harness.datasets.brats2020 as brats

        table_runs(2).configs(None, brats.PRESETS["smoke"], pretrained=str(weights))


def test_checkpoint_every_is_a_runtime_setting_with_a_flag():
    import argparse

    from reproduce.runargs import add_runtime_arguments, runtime_from
    from reproduce.runs.config import ConfigError

    parser = argparse.ArgumentParser()
    add_runtime_arguments(parser)
    assert runtime_from(parser.parse_args(["--checkpoint-every", "0"])).checkpoint_every == 0
    assert runtime_from(parser.parse_args([])).checkpoint_every == 1
    with pytest.raises(ConfigError, match="checkpoint_every"):
        Runtime(checkpoint_every=-1)


def test_per_element_extension_sets_the_normalisation_only_on_its_columns():
    from reproduce.experiments import plan_table

    plan = plan_table(3, "smoke", extensions=("per_element",), require_data=False)
    options = {p.runtime.column: p.config.mwam.options for p in plan.plan if p.runtime.column}
    assert options["ESANet-MD +MWAM (per-element FRM)"]["frm_normalisation"] == "per_element"
    assert options["MMANet +MWAM (per-element FRM)"]["frm_normalisation"] == "per_element"
    assert "frm_normalisation" not in options["ESANet-MD +MWAM"]
