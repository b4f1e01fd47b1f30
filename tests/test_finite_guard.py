"""Finite or nothing: a non-finite loss (NaN data, an infinite learning rate) or, without fp16's GradScaler, a
non-finite gradient stops the run with :class:`NonFiniteLossError` naming the run, the epoch, the step and the loss
part (or parameter); nothing is recorded in the registry and the last good checkpoint stays on disk, loadable and
never overwritten by a bad step's weights -- also when the check is deferred to the logged steps and the epoch end
(what the trainer does on CUDA, to avoid a sync per step). fp16 (the GradScaler skipping overflowing steps) needs a
CUDA device and is not tested here."""

import dataclasses
import math

import pytest
import torch

from mwam_harness.catalog import TASKS
from mwam_harness.datasets.files import temporaries_of
from reproduce.checkpoints import load_checkpoint
from reproduce.engine.trainer import NonFiniteLossError, Trainer
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, ToyData, ToyTask, toy_config, weights


class NaNFromEpoch1(ToyData):
    """The toy training data whose RGB images are NaN from epoch 1 on (epoch 0 trains normally)."""

    def __getitem__(self, i: int):
        item = super().__getitem__(i)
        if self.epoch >= 1:
            item["rgb"] = torch.full_like(item["rgb"], math.nan)
        return item


class NaNTask(ToyTask):
    def build_dataset(self, split: str, train: bool) -> ToyData:
        return NaNFromEpoch1(24, self.seed, train) if train else super().build_dataset(split, train)


class DeferredCheck(Trainer):
    """The trainer with the check deferred as on CUDA; NaN RGB inputs at global step ``bad_step``."""

    bad_step = 6

    def setup(self, dependencies=None) -> None:
        super().setup(dependencies)
        self.deferred_finite_check = True

    def before_forward(self, inputs, ctx) -> None:
        if ctx.global_step == self.bad_step:
            inputs["rgb"].fill_(math.nan)
        super().before_forward(inputs, ctx)


class InfiniteGradient(Trainer):
    """A finite loss but an infinite gradient of ``head.weight`` at global step 5 (epoch 1, step 1)."""

    def before_optimizer_step(self, ctx) -> None:
        super().before_optimizer_step(ctx)
        if ctx.global_step == 5:
            self.host.head.weight.grad[0, 0] = math.inf


def assert_nothing_recorded_and_checkpoint_kept(registry: Registry, config, epoch: int | None) -> None:
    assert not registry.has(config), "a run stopped by a non-finite step is not recorded"
    checkpoint = registry.run_dir(config) / "last.pt"
    assert temporaries_of(checkpoint) == []
    if epoch is None:
        assert not checkpoint.exists()
        return
    state = load_checkpoint(checkpoint)  # loadable, and the last good epoch's: not overwritten by the bad state
    assert (state["epoch"], state["step_in_epoch"]) == (epoch, 0)
    assert all(torch.isfinite(value).all() for value in state["host"].values())


def test_nan_data_stops_the_run_naming_epoch_step_and_loss_part(tmp_path, toy, root, monkeypatch):
    monkeypatch.setitem(TASKS.entries, "toy", NaNTask)
    config = toy_config(root)
    registry = Registry(tmp_path / "runs")
    with pytest.raises(NonFiniteLossError) as caught:
        Trainer(config, registry, RUNTIME).run()
    error = caught.value
    assert (error.epoch, error.step_in_epoch, error.global_step) == (1, 0, 4)  # 4 steps an epoch
    assert "loss/fused" in error.terms and "loss/rgb" in error.terms and "loss/depth" not in error.terms
    message = str(error)
    expected = (f"run {config.key}: non-finite loss at epoch 1, step 0 of the epoch (global step 4", "loss/rgb = nan",
                "(finite: loss/depth", "last.pt")  # fmt: skip
    for text in expected:
        assert text in message, message
    assert_nothing_recorded_and_checkpoint_kept(registry, config, epoch=1)


def test_an_infinite_learning_rate_stops_the_run(tmp_path, toy, root):
    config = toy_config(root, optim={"lr": math.inf}, schedule={"warmup_epochs": 0, "milestones": []})
    registry = Registry(tmp_path / "runs")
    with pytest.raises(NonFiniteLossError, match=r"non-finite (loss|gradient) at epoch 0") as caught:
        Trainer(config, registry, RUNTIME).run()
    assert caught.value.epoch == 0 and caught.value.key == config.key
    assert_nothing_recorded_and_checkpoint_kept(registry, config, epoch=None)  # no epoch finished


def test_an_infinite_learning_rate_after_a_good_epoch_keeps_its_checkpoint(tmp_path, toy, root):
    config = toy_config(root, schedule={"warmup_epochs": 0, "milestones": []})
    registry = Registry(tmp_path / "runs")

    def blow_up(trainer: Trainer, step: int) -> None:  # from epoch 1's second step on, the learning rate is infinite
        if step == 5:
            for group in trainer.optimizer.param_groups:
                group["lr"] = math.inf

    with pytest.raises(NonFiniteLossError) as caught:
        Trainer(config, registry, RUNTIME, callbacks=[blow_up]).run()
    assert caught.value.epoch == 1 and caught.value.global_step > 5
    assert_nothing_recorded_and_checkpoint_kept(registry, config, epoch=1)


def test_a_non_finite_gradient_is_named_and_never_applied_on_the_cpu(tmp_path, toy, root):
    config = toy_config(root)
    registry = Registry(tmp_path / "runs")
    trainer = InfiniteGradient(config, registry, RUNTIME)
    with pytest.raises(NonFiniteLossError, match=r"non-finite gradient at epoch 1, step 1 ") as caught:
        trainer.run()
    error = caught.value
    assert (error.epoch, error.step_in_epoch, error.global_step) == (1, 1, 5)
    assert error.terms == ["head.weight"] and "module(s) head: head.weight (the loss is finite" in str(error)
    assert torch.isfinite(weights(trainer.host)).all(), "the bad step's update is never applied"
    assert_nothing_recorded_and_checkpoint_kept(registry, config, epoch=1)


@pytest.mark.parametrize(("log_every", "checked_at"), [(2, "logged step"), (100, "epoch end")])
def test_a_deferred_check_names_the_bad_step_and_checkpoints_no_bad_weights(tmp_path, toy, root, log_every, checked_at):
    config = toy_config(root)
    registry = Registry(tmp_path / "runs")
    runtime = dataclasses.replace(RUNTIME, log_every=log_every)
    trainer = DeferredCheck(config, registry, runtime)
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.run()
    error = caught.value
    assert (error.epoch, error.step_in_epoch, error.global_step) == (1, 2, 6), checked_at
    assert "loss/rgb" in error.terms and "global step 6" in str(error)
    # the deferred check let the bad step's update through, but no checkpoint took it
    assert not torch.isfinite(weights(trainer.host)).all()
    assert_nothing_recorded_and_checkpoint_kept(registry, config, epoch=1)


def test_a_finite_run_is_checked_at_every_step_and_recorded(tmp_path, toy, root):
    config = toy_config(root, train={"epochs": 1})
    registry = Registry(tmp_path / "runs")
    trainer = Trainer(config, registry, RUNTIME)
    result = trainer.run()
    assert registry.has(config) and result["history"][0]["loss"] == pytest.approx(result["history"][0]["loss"])
    assert trainer.finite_pending == []


class OverflowingGradient(Trainer):
    """An infinite (still scaled) gradient at global step 5, as an fp16 overflow gives: the GradScaler's case."""

    def backward(self, loss) -> None:
        super().backward(loss)
        if self.global_step == 5:
            self.host.head.weight.grad[0, 0] = math.inf


def test_fp16_overflow_skipped_by_the_grad_scaler_is_not_an_error(tmp_path, toy, root):
    config = toy_config(root, train={"amp": "fp16"})
    registry = Registry(tmp_path / "runs")
    trainer = OverflowingGradient(config, registry, RUNTIME)
    trainer.run()  # CPU autocast in float16 with torch's CPU GradScaler (a CUDA run is the same code path)
    assert trainer.precision == "fp16" and trainer.scaler.get_scale() < 2.0**16, "the scaler skipped the step"
    assert registry.has(config) and torch.isfinite(weights(trainer.host)).all()
