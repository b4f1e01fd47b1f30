"""Training progress (reproduce/engine/progress.py): a bar per epoch's steps on a terminal, one line per epoch in a
log; the trainer reports through it."""

from __future__ import annotations

import logging

import pytest

from reproduce.engine import progress as progress_module
from reproduce.engine.progress import EpochProgress, format_duration
from reproduce.engine.trainer import Trainer
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config


def test_durations_read_as_a_person_writes_them():
    assert [format_duration(s) for s in (0, 59.4, 83, 3600, 5000)] == ["0 s", "59 s", "1 min 23 s", "1 h 00 min",
                                                                        "1 h 23 min"]  # fmt: skip


def test_a_log_gets_one_line_per_epoch_with_loss_speed_and_time_left(caplog):
    display = EpochProgress("train SF-MD", epochs=3, shown=True, bars=False)
    with caplog.at_level(logging.INFO, logger="reproduce.engine.trainer"):
        for epoch in range(2):
            display.start_epoch(epoch, steps=4)
            for _ in range(4):
                display.step()
            display.end_epoch(epoch, {"epoch": epoch, "loss": 0.5 - epoch / 10})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("train SF-MD: epoch 1/3: loss 0.5000, 4 steps in ") and "steps/s), about " in lines[0]
    assert lines[1].startswith("train SF-MD: epoch 2/3: loss 0.4000") and lines[1].endswith("left")


def test_a_terminal_gets_a_bar_over_the_steps_with_the_logged_loss(capsys, caplog):
    display = EpochProgress("train SF-MD", epochs=2, shown=True, bars=True)
    display.start_epoch(0, steps=5, done=2)  # resumed at step 2
    for _ in range(3):
        display.step()
    display.loss(0.1234)
    bar = display._bar
    assert bar.n == 5 and bar.total == 5 and "loss" in bar.postfix and "0.1234" in bar.postfix
    display.end_epoch(0, {"loss": 0.2})
    assert display._bar is None and not caplog.records  # a terminal gets the bar, not the lines
    assert "epoch 1/2" in capsys.readouterr().err


def test_other_processes_report_nothing(caplog):
    display = EpochProgress("x", epochs=1, shown=False, bars=True)
    display.start_epoch(0, steps=2)
    display.step()
    display.end_epoch(0, {"loss": 1.0})
    assert display._bar is None and not caplog.records


@pytest.mark.usefixtures("toy")
@pytest.mark.parametrize("terminal", [False, True], ids=["log", "terminal"])
def test_the_trainer_reports_every_epoch(tmp_path, root, caplog, monkeypatch, terminal):
    monkeypatch.setattr(progress_module, "interactive", lambda: terminal)
    monkeypatch.setattr("reproduce.engine.trainer.interactive", lambda: terminal)
    steps = []
    original = EpochProgress.step
    monkeypatch.setattr(EpochProgress, "step", lambda self: (steps.append(self.bars), original(self))[1])
    runtime = RUNTIME.replace(progress=True)
    trainer = Trainer(toy_config(root, train={"epochs": 2}), Registry(tmp_path / "runs"), runtime)
    with caplog.at_level(logging.INFO, logger="reproduce.engine.trainer"):
        trainer.run()
    lines = [r.getMessage() for r in caplog.records if ": epoch " in r.getMessage()]
    per_epoch = trainer.sampler.batches_per_epoch
    assert len(steps) == 2 * per_epoch and set(steps) == {terminal}
    if terminal:
        assert not lines
    else:
        assert [line.split(":")[1].strip() for line in lines] == ["epoch 1/2", "epoch 2/2"]
        assert all(f"{per_epoch} steps in" in line for line in lines)
