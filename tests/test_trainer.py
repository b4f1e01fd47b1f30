"""The engine with a toy host and an in-memory task: exact resume, registry skip / force, the split training step,
W&B offline files, curves, and the configuration's own checks."""

import json
import os
import signal

import pytest
import torch
import yaml

from mwam_harness.catalog import PLUGINS
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.methods import Plugin
from reproduce.runs.config import SCHEMA
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config, weights

pytestmark = pytest.mark.usefixtures("toy")


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, root):
    cfg = toy_config(root)
    whole = Trainer(cfg, Registry(tmp_path / "a" / "runs"), RUNTIME)
    result_whole = whole.run()

    def stop_at_step_6(trainer, step):
        if step == 6:  # mid-epoch: 4 steps per epoch
            trainer.request_stop()

    interrupted = Trainer(cfg, Registry(tmp_path / "b" / "runs"), RUNTIME, callbacks=[stop_at_step_6])
    with pytest.raises(TrainingInterruptedError, match="--resume"):
        interrupted.run()
    assert not Registry(tmp_path / "b" / "runs").has(cfg)
    resumed = Trainer(cfg, Registry(tmp_path / "b" / "runs"), RUNTIME)
    result_resumed = resumed.run(resume=True)
    assert resumed.global_step == whole.global_step == 12
    assert torch.equal(weights(resumed.host), weights(whole.host))
    assert torch.equal(resumed.plugins["mwam"].mwam.bank.value, whole.plugins["mwam"].mwam.bank.value)
    assert result_resumed["subsets"] == result_whole["subsets"]
    assert result_resumed["history"] == result_whole["history"]


def test_result_covers_every_subset_in_paper_order_and_registry_skips(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 1})
    reg = Registry(tmp_path / "runs")
    steps = []
    result = Trainer(cfg, reg, RUNTIME, callbacks=[lambda t, s: steps.append(s)]).run()
    assert list(result["subsets"]) == ["rgb", "depth", "ir", "rgb+depth", "rgb+ir", "depth+ir", "rgb+depth+ir"]
    assert set(result["subsets"]["rgb"]) == {"acc", "apcer", "npcer", "acer"}
    saved = json.loads(reg.path(cfg).read_text())
    assert saved["key"] == cfg.key and saved["synthetic"] is True and saved["git_commit"]
    assert saved["variant"] == "toy+mwam-hybrid" and saved["metric"] == "Acc" and saved["schema"] == SCHEMA
    assert saved["world_size"] == 1 and saved["precision"] == "fp32" and saved["identity"] == cfg.identity()
    assert saved["runtime"]["column"] == "SF-MD" and saved["config"] == cfg.to_dict()
    assert len(steps) == 4
    Trainer(cfg, reg, RUNTIME, callbacks=[lambda t, s: steps.append(s)]).run()
    assert len(steps) == 4, "a finished run is not retrained"
    Trainer(cfg, reg, RUNTIME, callbacks=[lambda t, s: steps.append(s)]).run(force=True)
    assert len(steps) == 8, "force retrains"
    records = reg.records(cfg, RUNTIME)
    assert len(records) == 7 and records[0].column == "SF-MD" and records[0].synthetic and records[0].table == 4


def test_the_resolved_config_is_saved_beside_the_run_and_reads_back(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 1})
    reg = Registry(tmp_path / "runs")
    Trainer(cfg, reg, RUNTIME).run()
    text = reg.config_path(cfg).read_text()
    assert text.startswith(f"# run {cfg.key}")
    values = yaml.safe_load(text)
    assert values["runtime"]["column"] == "SF-MD" and values["train"]["epochs"] == 1
    from reproduce.runs.config import RunConfig

    assert RunConfig.from_yaml(reg.config_path(cfg)).key == cfg.key


def test_sigint_checkpoints_and_resume_finishes(tmp_path, root):
    """A real SIGINT mid-epoch: the step finishes, a checkpoint is written, and --resume completes the run."""
    cfg = toy_config(root, train={"epochs": 2})
    reg = Registry(tmp_path / "runs")

    def interrupt(trainer, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    # A process started in the background inherits SIGINT ignored; the run must install its own handler anyway
    # and put back whatever was there before.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(TrainingInterruptedError):
            Trainer(cfg, reg, RUNTIME, callbacks=[interrupt]).run()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is restored
    finally:
        signal.signal(signal.SIGINT, before)
    assert (reg.run_dir(cfg) / "last.pt").exists() and not reg.has(cfg)
    resumed = Trainer(cfg, reg, RUNTIME)
    result = resumed.run(resume=True)
    assert resumed.global_step == 8 and reg.has(cfg) and len(result["history"]) == 2


def test_validation_every_epoch_is_in_history_and_does_not_change_training(tmp_path, root):
    with_val = Trainer(toy_config(root, train={"epochs": 2}), Registry(tmp_path / "a"), RUNTIME)
    result = with_val.run()
    assert [list(h["val"]) for h in result["history"]] == [list(result["subsets"])] * 2
    without = Trainer(toy_config(root, train={"epochs": 2}), Registry(tmp_path / "b"), RUNTIME.replace(val_every=0))
    without.run()
    assert torch.equal(weights(with_val.host), weights(without.host))


def test_wandb_offline_writes_run_files_and_curves(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 1})
    reg = Registry(tmp_path / "results" / "runs")
    Trainer(cfg, reg, RUNTIME.replace(wandb="offline")).run()
    offline = list((tmp_path / "results" / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and any(offline[0].rglob("*.wandb"))
    curves = (reg.run_dir(cfg) / "curves.csv").read_text().splitlines()
    assert curves[0] == "panel,series,step,value"
    assert any(",mwam/K/depth," in line for line in curves) and any(",loss/fused," in line for line in curves)


def _curve_rows(reg, cfg):
    return (reg.run_dir(cfg) / "curves.csv").read_text().splitlines()[1:]


def test_curves_hold_each_step_once_after_force_and_after_resume(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 2})
    reg = Registry(tmp_path / "runs")
    Trainer(cfg, reg, RUNTIME).run()
    rows = _curve_rows(reg, cfg)
    Trainer(cfg, reg, RUNTIME).run(force=True)
    assert _curve_rows(reg, cfg) == rows, "a retrain starts its curves over"

    def stop(trainer, step):
        if step == 7:  # after the checkpoint of epoch 0 (4 steps), logged steps 6 are past it
            trainer.request_stop()

    other = Registry(tmp_path / "other")
    with pytest.raises(TrainingInterruptedError):
        Trainer(cfg, other, RUNTIME, callbacks=[stop]).run()
    Trainer(cfg, other, RUNTIME).run(resume=True)
    assert _curve_rows(other, cfg) == rows, "a resumed run drops the rows past its checkpoint and writes them again"


def test_same_training_different_table_column_is_one_run(tmp_path, root):
    a = toy_config(root)
    assert a.key == toy_config(root).key
    assert toy_config(root, seed=3).key != a.key and toy_config(root, mwam={"intervention": "grad"}).key != a.key


def test_batch_size_one_trains(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 1, "batch_size": 1, "iterations_per_epoch": 3})
    result = Trainer(cfg, Registry(tmp_path / "runs"), RUNTIME).run()
    assert result["history"][0]["loss"] == result["history"][0]["loss"]  # not NaN


def test_a_finished_run_keeps_its_weights_not_its_resume_checkpoint(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 1})
    reg = Registry(tmp_path / "runs")
    trainer = Trainer(cfg, reg, RUNTIME)
    trainer.run()
    assert not (reg.run_dir(cfg) / "last.pt").exists()
    saved = torch.load(reg.weights_path(cfg), weights_only=False)
    assert saved["config_key"] == cfg.key
    assert all(torch.equal(v, saved["host"][k]) for k, v in trainer.host.state_dict().items())


def test_iterations_per_epoch_can_exceed_one_pass(tmp_path, root):
    """RFNet's 150 iterations per epoch: more batches than one pass, the first pass's batches first."""
    one_pass = Trainer(toy_config(root, train={"epochs": 1}), Registry(tmp_path / "a"), RUNTIME)
    one_pass.setup()
    longer = Trainer(
        toy_config(root, train={"epochs": 1, "iterations_per_epoch": 10}), Registry(tmp_path / "b"), RUNTIME
    )
    longer.setup()
    first, more = one_pass.sampler.batches(), longer.sampler.batches()
    assert len(first) == 4 and len(more) == 10 and more[:4] == first
    assert all(len(b) == 5 for b in more)
    result = longer.run()
    assert longer.global_step == 10 and result["history"][0]["loss"] == result["history"][0]["loss"]


def test_the_step_calls_the_gradient_seam_after_backward_and_before_the_update(tmp_path, root, monkeypatch):
    """A listed plug-in's ``before_optimizer_step`` sees complete gradients (MWAM-scaled) and the weights before the
    update; what it does to the gradients is what the optimiser applies (the seam OGM-GE and AGM edit)."""
    seen = {}

    class ZeroHead(Plugin):
        name, kind = "zero_head", "plugin"

        def before_optimizer_step(self, ctx):
            seen["grad"] = ctx.host.head.weight.grad.clone()
            seen["weight"] = ctx.host.head.weight.detach().clone()
            seen["epoch"] = ctx.epoch
            ctx.host.head.weight.grad.zero_()

    PLUGINS.discover()
    monkeypatch.setitem(PLUGINS.entries, "zero_head", ZeroHead)
    cfg = toy_config(root, train={"epochs": 1}, optim={"weight_decay": 0.0}, plugins=["zero_head"])
    trainer = Trainer(cfg, Registry(tmp_path / "runs"), RUNTIME)
    trainer.setup()
    assert trainer.plugins.names == ["standard", "zero_head", "mwam", "logger"]
    before = trainer.host.head.weight.detach().clone()
    trainer.train_step(next(iter(trainer.train_loader)))
    assert seen["grad"].abs().sum() > 0 and torch.equal(seen["weight"], before) and seen["epoch"] == 0
    assert torch.equal(trainer.host.head.weight.detach(), before), "the edited (zero) gradient was applied"


def test_per_iteration_schedule_steps_every_iteration(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 2}, schedule={"name": "poly", "interval": "iteration", "power": 1.0})
    trainer = Trainer(cfg, Registry(tmp_path / "runs"), RUNTIME)
    result = trainer.run()
    total = 2 * 4
    assert trainer.scheduler.last_epoch == total
    assert [h["lr"] for h in result["history"]] == [0.05, 0.05 * (1 - 4 / total)]  # the lr each epoch starts with
    assert trainer.optimizer.param_groups[0]["lr"] == 0.0


def test_mwam_off_builds_no_mwam_and_none_only_measures(tmp_path, root):
    off = Trainer(
        toy_config(root, train={"epochs": 1}, mwam={"intervention": "off"}), Registry(tmp_path / "a"), RUNTIME
    )
    off.run()
    none = Trainer(
        toy_config(root, train={"epochs": 1}, mwam={"intervention": "none"}), Registry(tmp_path / "b"), RUNTIME
    )
    none.run()
    assert "mwam" not in off.plugins and "mwam" in none.plugins
    assert torch.equal(weights(off.host), weights(none.host)), "measuring alone changes nothing"
    assert not any(",mwam/" in line for line in _curve_rows(Registry(tmp_path / "a"), off.config))


def test_a_host_for_other_modalities_is_a_clear_error(tmp_path, root):
    cfg = toy_config(root, data={"modalities": ["rgb", "depth"]})
    with pytest.raises(ValueError, match=r"host toy has modalities \('rgb', 'depth', 'ir'\); the run uses"):
        Trainer(cfg, Registry(tmp_path / "runs"), RUNTIME).setup()


def test_cheap_validation_takes_the_first_cases_and_the_full_set_and_leaves_training_alone(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 2})
    full = Trainer(cfg, Registry(tmp_path / "a"), RUNTIME.replace(val_every=1)).run()
    cheap_runtime = RUNTIME.replace(val_every=1, val_cases=5, val_subsets="full")
    cheap_trainer = Trainer(cfg, Registry(tmp_path / "b"), cheap_runtime)
    cheap = cheap_trainer.run()
    assert all(list(h["val"]) == ["rgb+depth+ir"] for h in cheap["history"])
    assert len(full["history"][0]["val"]) == 7
    assert len(cheap_trainer.eval_loader("val", limit=5).dataset) == 5
    assert cheap["subsets"] == full["subsets"], "validation never changes training"
