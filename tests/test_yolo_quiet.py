"""ultralytics follows the project's verbosity: quiet by default (one line per epoch from the project), its own
console output with ``--verbose`` (reproduce/yolo/runner.py)."""

from __future__ import annotations

import argparse
import logging
from types import SimpleNamespace

import torch

from reproduce.runargs import add_runtime_arguments, runtime_from
from reproduce.yolo.runner import epoch_line, ultralytics_quiet


def test_quiet_hides_ultralytics_messages_and_bars_and_restores_them():
    from ultralytics.utils import LOGGER
    from ultralytics.utils.tqdm import TQDM

    before = LOGGER.level
    with ultralytics_quiet(True):
        assert LOGGER.getEffectiveLevel() == logging.WARNING
        bar = TQDM(total=3)
        assert bar.disable
        bar.close()
    assert LOGGER.level == before
    with ultralytics_quiet(False):
        assert LOGGER.level == before


def test_each_epoch_gets_one_project_line(caplog):
    report = epoch_line("T-yolov8n +MWAM")
    trainer = SimpleNamespace(tloss=torch.tensor([1.0, 0.5, 0.25]), metrics={"metrics/mAP50(B)": 0.4321}, epoch=2,
                              epochs=10)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="reproduce.yolo.runner"):
        report(trainer)
    items = {"box": torch.tensor(1.0), "cls": torch.tensor(0.5), "dfl": torch.tensor(0.25)}  # ultralytics 8.4's form
    with caplog.at_level(logging.INFO, logger="reproduce.yolo.runner"):
        report(SimpleNamespace(tloss=items, metrics={}, epoch=3, epochs=10))
        report(SimpleNamespace(tloss=None, metrics={}, epoch=4, epochs=10))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("train T-yolov8n +MWAM: epoch 3/10: loss 1.7500, val mAP50 0.4321, ")
    assert lines[1].startswith("train T-yolov8n +MWAM: epoch 4/10: loss 1.7500, val mAP50 n/a, ")
    assert lines[2].startswith("train T-yolov8n +MWAM: epoch 5/10: loss nan") and all(x.endswith("left") for x in lines)


def test_verbose_is_a_runtime_flag():
    parser = argparse.ArgumentParser()
    add_runtime_arguments(parser)
    assert runtime_from(parser.parse_args(["--verbose"])).verbose is True
    assert runtime_from(parser.parse_args([])).verbose is False
