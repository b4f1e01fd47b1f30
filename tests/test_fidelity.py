"""CASIA-SURF fidelity options: the ``paper`` and ``released`` schedule presets epoch by epoch, skipped and lr-0
epochs, checkpoint selection (``eval.select``), validation under the host's own modality dropout, the precision
record, and what the released extension of Table 4 changes."""

import warnings

import pytest
import torch

from mwam_harness.datasets.registry import dataset_spec
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.methods.mmanet import MMANet
from reproduce.runs.config import ConfigError, RunConfig
from reproduce.runs.registry import Registry
from reproduce.runs.schedules import lr_per_epoch
from tests.toy_run import RUNTIME, toy_config, use_tiny_smoke_preset, weights

# ---------------------------------------------------------------- the schedules, written out from the facts
# ../shared/notes/host-facts.md section 3 and the paper's Sec. A.3, epoch by epoch over 100 epochs (base lr 1e-3).


def table(*segments):
    """``[(first, last, lr), ...]`` (inclusive) -> the learning rate of each of the 100 epochs."""
    out = [None] * 100
    for first, last, lr in segments:
        for epoch in range(first, last + 1):
            out[epoch] = lr
    assert all(lr is not None or epoch == 0 for epoch, lr in enumerate(out))
    return out


PAPER_SF = table((0, 29, 1e-3), (30, 59, 1e-4), (60, 89, 1e-5), (90, 99, 1e-6))  # "/10 every 30 epochs"
PAPER_MMANET = table((0, 15, 1e-3), (16, 32, 1e-4), (33, 49, 1e-5), (50, 99, 1e-6))  # "at epochs 16, 33 and 50"
# Released: epoch 0 skipped (None); SF: drops at 17, 34, 51; MMANet: epoch 1 at lr 0, warm-up over epochs 2-5,
# drops at 22, 39, 56.
RELEASED_SF = table((1, 16, 1e-3), (17, 33, 1e-4), (34, 50, 1e-5), (51, 99, 1e-6))
RELEASED_MMANET = table(
    (1, 1, 0.0), (2, 2, 2e-4), (3, 3, 4e-4), (4, 4, 6e-4), (5, 5, 8e-4),
    (6, 21, 1e-3), (22, 38, 1e-4), (39, 55, 1e-5), (56, 99, 1e-6),
)  # fmt: skip
EXPECTED = {
    ("paper", "sf"): PAPER_SF,
    ("paper", "sf_md"): PAPER_SF,
    ("paper", "mmanet"): PAPER_MMANET,
    ("released", "sf"): RELEASED_SF,
    ("released", "sf_md"): RELEASED_SF,
    ("released", "mmanet"): RELEASED_MMANET,
}


def surf_config(host, preset, tmp_path):
    data = {"dataset": "casia_surf", "root": str(tmp_path)}
    return RunConfig.from_dict({"data": data, "host": {"name": host}, "schedule": {"preset": preset}})


@pytest.mark.parametrize(("preset", "host"), sorted(EXPECTED))
def test_schedule_presets_give_the_transcribed_learning_rate_of_every_epoch(preset, host, tmp_path):
    config = surf_config(host, preset, tmp_path)
    lrs = lr_per_epoch(config.schedule, config.optim.lr, config.train.epochs, 1)
    expected = EXPECTED[(preset, host)]
    assert [lr is None for lr in lrs] == [lr is None for lr in expected]
    assert [lr for lr in lrs if lr is not None] == pytest.approx([lr for lr in expected if lr is not None], rel=1e-9)


def _authors_stepping(warmup_total, epochs=100):
    """The learning rate each epoch of the authors' loop trains with: their scheduler (MultiStepLR at 1/6, 2/6, 3/6
    of the epochs, under a multiplier-1 gradual warm-up of ``warmup_total`` epochs when > 0) stepped with
    ``step(epoch=epoch)`` after every epoch, re-created here on torch's MultiStepLR."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    milestones = [int(epochs * 1 / 6), int(epochs * 2 / 6), int(epochs * 3 / 6)]
    after = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones)
    base = 1e-3
    if warmup_total:
        optimizer.param_groups[0]["lr"] = 0.0  # the warm-up scheduler's construction: lr * 0 / total
    lrs, finished = [], False
    for epoch in range(epochs):
        lrs.append(None if epoch == 0 else optimizer.param_groups[0]["lr"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # step(epoch) is deprecated in torch, still the closed form
            if not warmup_total:
                after.step(epoch)
            elif finished:
                after.step(epoch - warmup_total)
            elif epoch > warmup_total:
                finished = True  # hands over; the learning rate stays as it is this time
            else:
                optimizer.param_groups[0]["lr"] = base * epoch / warmup_total
    return lrs


@pytest.mark.parametrize(("host", "warmup"), [("sf_md", 0), ("mmanet", 5)])
def test_released_presets_equal_the_authors_scheduler_stepping(host, warmup, tmp_path):
    config = surf_config(host, "released", tmp_path)
    ours = lr_per_epoch(config.schedule, 1e-3, 100, 1)
    theirs = _authors_stepping(warmup)
    assert ours[0] is None and theirs[0] is None
    assert ours[1:] == pytest.approx(theirs[1:], rel=1e-9, abs=1e-15)


def test_a_preset_resolves_per_host_and_explicit_fields_win(root):
    config = RunConfig.from_dict(
        {
            "data": {"dataset": "casia_surf", "root": str(root)},
            "host": {"name": "mmanet"},
            "schedule": {"preset": "released", "milestones": [40]},
        }
    )
    assert config.schedule.milestones == (40,) and config.schedule.warmup_start == 2
    assert config.schedule.skip_epochs == 1
    assert config.to_dict()["schedule"] == {"preset": "released", "milestones": [40]}
    again = RunConfig.from_dict(config.to_dict())
    assert again.schedule == config.schedule and again.key == config.key
    # The same schedule written out is the same run (the preset's name is a label, not part of the key).
    explicit = RunConfig.from_dict(
        {**config.to_dict(), "schedule": {"skip_epochs": 1, "warmup_start": 2, "warmup_epochs": 5, "milestones": [40]}}
    )
    assert explicit.key == config.key
    with pytest.raises(ConfigError, match="no schedule preset 'nope'"):
        RunConfig.from_dict({**config.to_dict(), "schedule": {"preset": "nope"}})


def test_the_mmanet_teacher_gets_the_sf_schedule_of_the_students_preset(tmp_path):
    for preset, milestones in (("paper", (30, 60, 90)), ("released", (17, 34, 51))):
        student = RunConfig.from_dict(
            {
                "data": {"dataset": "casia_surf", "root": str(tmp_path)},
                "host": {"name": "mmanet"},
                "method": {"name": "mmanet"},
                "schedule": {"preset": preset},
            }
        )
        teacher = MMANet.dependencies(student)["teacher"].config
        assert teacher.host.name == "sf" and teacher.schedule.milestones == milestones
        assert teacher.schedule.warmup_epochs == 0 and student.schedule.milestones != milestones


def test_settings_that_leave_nothing_to_train_or_select_are_errors(root):
    base = {"data": {"dataset": "casia_surf", "root": str(root)}, "host": {"name": "sf_md"}}
    with pytest.raises(ConfigError, match=r"skips all 3 epochs"):
        RunConfig.from_dict({**base, "train": {"epochs": 3}, "schedule": {"skip_epochs": 3}})
    with pytest.raises(ConfigError, match=r"lower eval\.select_after"):
        RunConfig.from_dict({**base, "train": {"epochs": 31}, "eval": {"select": "best_val"}})
    with pytest.raises(ConfigError, match=r"eval\.select_inputs"):
        RunConfig.from_dict({**base, "eval": {"select": "best_val", "select_inputs": "random"}})
    # select_* mean nothing with select: last and are dropped (they do not change the key)
    last = RunConfig.from_dict({**base, "eval": {"select": "last", "select_after": 3}})
    assert last.key == RunConfig.from_dict(base).key and "select_after" not in last.to_dict()["eval"]


def test_the_paper_preset_is_fp32_paper_schedule_best_val_after_epoch_30():
    run = dataset_spec("casia_surf").preset("paper").run
    assert run["schedule"] == {"preset": "paper"}
    assert run["eval"]["select"] == "best_val" and run["eval"]["select_after"] == 30
    assert "amp" not in run.get("train", {})  # the default: fp32


# ---------------------------------------------------------------- the trainer
pytestmark_toy = pytest.mark.usefixtures("toy")


def _snapshots():
    """A callback keeping the host's weights after every step, by epoch (the last one is the epoch's end)."""
    seen: dict[int, torch.Tensor] = {}

    def callback(trainer, step):
        seen[trainer.epoch] = weights(trainer.host).clone()

    return seen, callback


@pytestmark_toy
def test_a_skipped_epoch_trains_no_batch_and_an_lr_0_epoch_changes_no_weight(tmp_path, root):
    cfg = toy_config(
        root,
        train={"epochs": 4},
        schedule={"skip_epochs": 1, "warmup_start": 2, "warmup_epochs": 1, "milestones": []},
        mwam={"intervention": "none"},
    )
    fresh = Trainer(cfg, Registry(tmp_path / "unused"), RUNTIME)
    fresh.setup()
    initial = weights(fresh.host).clone()  # the same seed: the weights the run starts from
    seen, callback = _snapshots()
    trainer = Trainer(cfg, Registry(tmp_path / "runs"), RUNTIME, callbacks=[callback])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "lr_scheduler.step() before optimizer.step()" for the skipped epoch
        result = trainer.run()
    assert sorted(seen) == [1, 2, 3], "epoch 0 runs no step"
    # The toy host has no BatchNorm: an lr-0 epoch leaves every weight as it is.
    assert torch.equal(seen[1], initial), "epoch 1 trains at learning rate 0"
    assert not torch.equal(seen[2], seen[1])
    history = result["history"]
    assert history[0]["skipped"] and history[0]["lr"] is None and history[1]["lr"] == 0.0
    assert history[2]["lr"] == pytest.approx(0.05) and trainer.global_step == 3 * 4


@pytestmark_toy
def test_an_lr_0_epoch_still_moves_momentum_as_the_authors_sgd_does(tmp_path, root):
    cfg = toy_config(
        root,
        train={"epochs": 3},
        schedule={"warmup_start": 1, "warmup_epochs": 1, "milestones": []},
        mwam={"intervention": "none"},
    )
    trainer = Trainer(cfg, Registry(tmp_path / "runs"), RUNTIME)
    trainer.run()
    buffers = [s["momentum_buffer"] for s in trainer.optimizer.state.values()]
    assert buffers and all(b is not None for b in buffers)


@pytestmark_toy
def test_best_val_evaluates_the_best_epochs_weights_and_records_the_rule(tmp_path, root):
    cfg = toy_config(
        root,
        train={"epochs": 4},
        eval={"batch_size": 8, "select": "best_val", "select_after": 0, "select_metric": "acc"},
    )
    seen, callback = _snapshots()
    reg = Registry(tmp_path / "runs")
    result = Trainer(cfg, reg, RUNTIME, callbacks=[callback]).run()
    values = {h["epoch"]: h["select"]["acc"] for h in result["history"] if "select" in h}
    assert sorted(values) == [1, 2, 3], "candidates: the epochs after select_after"
    best = max(values.values())
    chosen = min(e for e, v in values.items() if v == best)  # ties keep the earlier epoch (strictly better only)
    selection = result["selection"]
    assert selection["select"] == "best_val" and selection["epoch"] == chosen and selection["value"] == best
    assert selection["select_split"] == "val" and selection["select_inputs"] == "full"
    saved = torch.load(reg.weights_path(cfg), weights_only=False)["host"]
    assert torch.equal(torch.cat([saved[k].flatten() for k in saved if "weight" in k or "bias" in k]).sort().values,
                       seen[chosen].sort().values)  # fmt: skip
    last = Trainer(toy_config(root, train={"epochs": 4}), Registry(tmp_path / "last"), RUNTIME).run()
    assert last["selection"] == {"select": "last", "epoch": 3}


@pytestmark_toy
def test_best_val_resumes_exactly(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 4}, eval={"batch_size": 8, "select": "best_val", "select_after": 0})
    whole = Trainer(cfg, Registry(tmp_path / "a"), RUNTIME).run()

    def stop(trainer, step):
        if step == 10:  # epoch 2, after a selection at epoch 1
            trainer.request_stop()

    with pytest.raises(TrainingInterruptedError):
        Trainer(cfg, Registry(tmp_path / "b"), RUNTIME, callbacks=[stop]).run()
    resumed = Trainer(cfg, Registry(tmp_path / "b"), RUNTIME).run(resume=True)
    assert resumed["selection"] == whole["selection"] and resumed["subsets"] == whole["subsets"]


@pytestmark_toy
def test_validation_under_training_dropout_is_seeded_and_leaves_training_alone(tmp_path, root):
    select = {"batch_size": 8, "select": "best_val", "select_after": 0}
    full = toy_config(root, train={"epochs": 3}, eval={**select, "select_inputs": "full"})
    dropped = toy_config(root, train={"epochs": 3}, eval={**select, "select_inputs": "training_dropout"})
    runs = {}
    for name, cfg in (("full", full), ("dropped", dropped), ("again", dropped)):
        seen, callback = _snapshots()
        result = Trainer(cfg, Registry(tmp_path / name), RUNTIME, callbacks=[callback]).run()
        runs[name] = (seen, [h["select"]["acc"] for h in result["history"] if "select" in h])
    assert all(torch.equal(runs["full"][0][e], runs["dropped"][0][e]) for e in range(3)), "training is unchanged"
    assert runs["dropped"][1] == runs["again"][1], "the validation draws are seeded"
    assert runs["dropped"][1] != runs["full"][1], "the toy host drops modalities: another validation accuracy"


@pytestmark_toy
def test_the_record_says_which_precision_and_tf32_settings_trained(tmp_path, root):
    result = Trainer(toy_config(root, train={"epochs": 1}), Registry(tmp_path / "runs"), RUNTIME).run()
    assert result["config"]["train"]["amp"] == "off" and result["precision"] == "fp32"
    assert set(result["tf32"]) == {"cudnn_conv", "cuda_matmul"}
    assert result["schedule"]["milestones"] == [2] and result["schedule"]["skip_epochs"] == 0, "the resolved one"


# ---------------------------------------------------------------- Table 4's released extension


def test_released_columns_train_after_their_released_teacher_and_render_beside_table4(tmp_path, monkeypatch):
    import json

    from reproduce.experiments import run_table
    from reproduce.runs.runtime import Runtime

    use_tiny_smoke_preset(
        monkeypatch,
        train={"epochs": 3, "iterations_per_epoch": 2},
        methods={"mmanet": {"search_epochs": (1,), "begin_epoch": 1}},
    )
    run_table(
        4,
        "smoke",
        columns=["MMANet +MWAM [released]"],
        extensions=("released",),
        runtime=Runtime(wandb="disabled", progress=False),
        output_dir=tmp_path / "out",
        results_dir=tmp_path / "results",
    )
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    by_host = {r["config"]["host"]["name"]: r for r in records}
    assert set(by_host) == {"sf", "mmanet"}
    student, teacher = by_host["mmanet"], by_host["sf"]
    assert student["config"]["schedule"]["preset"] == teacher["config"]["schedule"]["preset"] == "released"
    # Epoch 0 skipped by both; the student's epoch 1 at lr 0 (MMANet's warm-up starts at epoch 2), the teacher's not.
    assert [h.get("skipped", False) for h in student["history"]] == [True, False, False]
    assert student["history"][1]["lr"] == 0.0 and teacher["history"][1]["lr"] == pytest.approx(1e-2)
    assert student["config"]["mwam"]["options"] == {"gamma": 1.0, "lam": 10.0, "soft_start": True, "t_rule": "bank"}
    assert student["precision"] == "fp32" and student["method"]["teacher_run"] == teacher["key"]
    text = (tmp_path / "out" / "table4_vs_paper.md").read_text()
    assert "SYNTHETIC" in text.splitlines()[0] and "MMANet +MWAM [released] Acc ours" in text


def test_switching_the_kind_over_a_preset_drops_the_preset(root):
    base = {"data": {"dataset": "casia_surf", "root": str(root)}, "host": {"name": "sf_md"}}
    config = RunConfig.from_dict({**base, "schedule": {"preset": "paper"}})
    poly = config.with_overrides({"schedule": {"name": "poly"}})
    assert poly.schedule.name == "poly" and poly.schedule.preset is None and poly.schedule.milestones == (30, 60, 90)
