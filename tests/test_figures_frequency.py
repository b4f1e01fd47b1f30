"""Fig. 1 and Fig. 5 (reproduce/figures_frequency.py) and the ``validation_loss`` plug-in whose per-epoch value
Fig. 1b draws (reproduce/methods/validation_loss): its value against hand computations, a run's training bit-identical
with and without it (also with MWAM), exact resume, its options; the figures rendered into tmp_path, bad input
refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from mwam_harness.datasets.frequency_filter import FrequencyFilter
from mwam_harness.datasets.registry import dataset_spec
from mwam_harness.models import Host, HostOutput
from reproduce import figures_frequency
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.figures_frequency import curve_values, figure1, figure5
from reproduce.methods import LoopContext, plugins_for
from reproduce.methods.context import SingleProcess
from reproduce.methods.validation_loss import ValidationLoss, ValidationLossOptions
from reproduce.runs.config import ConfigError
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, ToyData, ToyHost, ToyTask, toy_config, weights

PLUGIN = {"name": "validation_loss"}


# ------------------------------------------------------------------ the plug-in, by hand
class FixedLogits(Host):
    """A host whose fused logits are given per sample (column ``logits`` of the batch's ``rgb`` input)."""

    modalities = ("rgb", "depth", "ir")

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def branches(self):
        return {}

    def forward(self, inputs, present=None):
        present = self.check_inputs(inputs, present)
        self.seen.append(present.clone())
        return HostOutput(inputs["rgb"][:, :, 0, 0].clone(), present=present)


class Recorder:
    def __init__(self) -> None:
        self.logged: list[tuple[dict, int]] = []

    def log(self, values, step):
        self.logged.append((dict(values), step))


class TwoProcesses(SingleProcess):
    """This process and another whose shard had loss sum 3.0 over 2 samples."""

    def gather(self, value):
        return [value, (3.0, 2)]


def _batch(logits, labels):
    x = torch.zeros(len(labels), 2, 1, 1)
    x[:, :, 0, 0] = torch.tensor(logits, dtype=torch.float32)
    return {"rgb": x, "depth": x.clone(), "ir": x.clone(), "label": torch.tensor(labels)}


def _ctx(host, batches, root, **fields):
    task = ToyTask(dataset_spec("casia_surf"), str(root), 0)
    return LoopContext(host=host, task=task, loaders={"val": batches, "test": batches[:1]}, tracker=Recorder(),
                       global_step=12, **fields)  # fmt: skip


def _cross_entropy(a, b, label):
    """-log softmax([a, b])[label], written out."""
    top = max(a, b)
    log_sum = top + math.log(math.exp(a - top) + math.exp(b - top))
    return log_sum - (a, b)[label]


def test_the_value_is_the_mean_cross_entropy_of_the_fused_prediction_by_hand(root):
    rows = [((0.0, 0.0), 1), ((2.0, -1.0), 0), ((2.0, -1.0), 1), ((0.5, 3.0), 1), ((-4.0, 1.0), 0)]
    batches = [_batch([r[0] for r in rows[:3]], [r[1] for r in rows[:3]]),
               _batch([r[0] for r in rows[3:]], [r[1] for r in rows[3:]])]  # fmt: skip
    host = FixedLogits().train()
    ctx = _ctx(host, batches, root)
    entry = {"epoch": 4, "loss": 0.3}
    ValidationLoss().on_epoch_end(ctx, 4, entry)
    expected = sum(_cross_entropy(*logits, label) for logits, label in rows) / len(rows)
    assert rows[0] and _cross_entropy(0.0, 0.0, 1) == pytest.approx(math.log(2))
    assert entry["val_loss"] == pytest.approx(expected, rel=1e-6) and entry["loss"] == 0.3
    assert host.training, "the host's mode is restored"
    assert all(bool(p.all()) for p in host.seen), "complete inputs: every modality present"
    assert ctx.tracker.logged == [({"epoch/val_loss": entry["val_loss"]}, 12)]
    # another split: its own key; several processes: losses and counts summed before the mean
    other = {}
    ValidationLoss(ValidationLossOptions(split="test")).on_epoch_end(ctx, 4, other)
    first = sum(_cross_entropy(*logits, label) for logits, label in rows[:3]) / 3
    assert list(other) == ["test_loss"] and other["test_loss"] == pytest.approx(first, rel=1e-6)
    merged = {}
    ValidationLoss().on_epoch_end(_ctx(host, batches, root, distributed=TwoProcesses()), 4, merged)
    assert merged["val_loss"] == pytest.approx((expected * len(rows) + 3.0) / (len(rows) + 2), rel=1e-6)


def test_the_toy_hosts_value_by_hand_in_eval_mode(root):
    data = ToyData(10, 3, train=False)
    batches = [default_collate([data[i] for i in range(0, 6)]), default_collate([data[i] for i in range(6, 10)])]
    host = ToyHost(dropout=True).train()  # in train mode it would drop modalities at random
    entry = {}
    state = torch.get_rng_state()
    ValidationLoss().on_epoch_end(_ctx(host, batches, root), 0, entry)
    assert torch.equal(torch.get_rng_state(), state), "it draws no randomness"
    with torch.no_grad():
        features = torch.cat([host.branch[m](data.x[m]) for m in ("rgb", "depth", "ir")], dim=1)
        logits = host.head(features)
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    expected = float(-log_probs[torch.arange(10), data.labels].double().mean())
    assert entry["val_loss"] == pytest.approx(expected, rel=1e-6) and host.training


def test_options_and_description(toy, root):
    assert ValidationLossOptions().split == "val" and ValidationLossOptions().key == "val_loss"
    with pytest.raises(ValueError, match="split must be one of"):
        ValidationLossOptions(split="holdout")
    with pytest.raises(ConfigError, match="split must be one of"):
        toy_config(root, plugins=[{"name": "validation_loss", "options": {"split": "holdout"}}])
    config = toy_config(root, plugins=[{"name": "validation_loss", "options": {"split": "test"}}])
    plugins = plugins_for(config, RUNTIME)
    assert plugins.names == ["standard", "validation_loss", "mwam", "logger"]
    assert plugins["validation_loss"].describe() == {"plugin": "validation_loss", "split": "test"}


# ------------------------------------------------------------------ the plug-in in the engine's runs
def _without(history, key="val_loss"):
    return [{k: v for k, v in entry.items() if k != key} for entry in history]


def test_training_is_bit_identical_with_and_without_it_also_with_mwam_and_figure1_draws_it(toy, root, tmp_path):
    sections = {"mwam": {"intervention": "grad"}, "train": {"epochs": 2}}
    plain = Trainer(toy_config(root, **sections), Registry(tmp_path / "plain"), RUNTIME)
    measured = Trainer(toy_config(root, plugins=[PLUGIN], **sections), Registry(tmp_path / "measured"), RUNTIME)
    result_plain, result = plain.run(), measured.run()
    assert torch.equal(weights(measured.host), weights(plain.host))
    assert _without(result["history"]) == result_plain["history"] and result["subsets"] == result_plain["subsets"]
    assert all(math.isfinite(e["val_loss"]) for e in result["history"]) and len(result["history"]) == 2
    assert [p["name"] for p in result["plugins"]] == ["standard", "validation_loss", "mwam", "logger"]
    # the last epoch's value is the eval-mode cross-entropy of the final weights on the validation set
    data = measured.task.build_dataset("val", train=False)
    host = measured.host.eval()
    with torch.no_grad():
        logits = host({m: data.x[m] for m in host.modalities}).logits
    expected = float(torch.nn.functional.cross_entropy(logits.double(), data.labels))
    assert result["history"][-1]["val_loss"] == pytest.approx(expected, rel=1e-6)
    path = figure1({"raw": result["history"], "low-15": result["history"][:1]}, tmp_path / "fig1", synthetic=True)
    assert path == tmp_path / "fig1.png" and path.read_bytes()[:4] == b"\x89PNG"


def test_a_stopped_run_resumes_to_the_same_history_and_weights(toy, root, tmp_path):
    config = toy_config(root, plugins=[PLUGIN], train={"epochs": 2})
    whole = Trainer(config, Registry(tmp_path / "whole"), RUNTIME)
    expected = whole.run()

    def stop(trainer, step):
        if step == 6:  # mid-epoch 1
            trainer.request_stop()

    registry = Registry(tmp_path / "stopped")
    with pytest.raises(TrainingInterruptedError):
        Trainer(config, registry, RUNTIME, callbacks=[stop]).run()
    resumed = Trainer(config, registry, RUNTIME)
    result = resumed.run(resume=True)
    assert result["history"] == expected["history"] and torch.equal(weights(resumed.host), weights(whole.host))
    assert [sorted(e) for e in result["history"]] == [["epoch", "loss", "lr", "val", "val_loss"]] * 2


# ------------------------------------------------------------------ Fig. 1
def _history(epochs=4, offset=0.0, with_val_loss=True):
    history = []
    for e in range(epochs):
        entry = {
            "epoch": e,
            "lr": 0.1,
            "loss": 1.0 / (e + 1) + offset,
            "val": {"rgb": {"acc": 50.0}, "rgb+depth": {"acc": 60.0 + e}, "rgb+depth+ir": {"acc": 70.0 + e}},
        }
        if with_val_loss:
            entry["val_loss"] = 1.2 / (e + 1) + offset
        history.append(entry)  # fmt: skip
    return history


def test_curve_values_reads_the_three_panels():
    history = _history(3)
    history[0]["skipped"] = True
    curves = curve_values(history, "raw")
    assert curves["loss"] == [(1, 0.5), (2, 1.0 / 3)], "a skipped epoch has no training loss"
    assert curves["val_loss"] == [(0, 1.2), (1, 0.6), (2, 1.2 / 3)]
    assert curves["acc"] == [(0, 70.0), (1, 71.0), (2, 72.0)], "the full set by default"
    assert curve_values(history, "raw", subset="rgb+depth")["acc"][2] == (2, 62.0)


def test_figure1_writes_a_png_labelled_synthetic_when_told(tmp_path, monkeypatch):
    titles = []
    save = figures_frequency._save_png

    def spy(figure, path):
        titles.append([t.get_text() for t in figure.texts])
        return save(figure, path)

    monkeypatch.setattr(figures_frequency, "_save_png", spy)
    histories = {"low-15": _history(offset=0.2), "raw": _history(), "high-30": _history(offset=0.5)}
    path = figure1(histories, tmp_path / "out" / "fig1.png")
    assert path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
    assert not any("SYNTHETIC" in t for t in titles[-1])
    figure1(histories, tmp_path / "synthetic", synthetic=True)
    assert (tmp_path / "synthetic.png").is_file()
    assert "SYNTHETIC" in titles[-1] and any(t.startswith("SYNTHETIC: ") for t in titles[-1])


@pytest.mark.parametrize(
    ("histories", "message"),
    [
        ({}, "at least one labelled history"),
        ({"raw": []}, "non-empty list"),
        ({"raw": [{"epoch": 0}]}, "with 'loss'"),
        ({"raw": [{"epoch": 0, "loss": "low"}]}, "must be a number"),
        ({"raw": _history(with_val_loss=False)}, "validation_loss plug-in"),
        ({"raw": [{"loss": 1.0, "val_loss": 1.0}]}, "per-epoch validation"),
        ({"raw": [{"loss": 1.0, "val_loss": 1.0, "val": {"rgb": {"miou": 3.0}}}]}, "no val\\['rgb'\\]\\['acc'\\]"),
    ],
)
def test_figure1_refuses_bad_input(tmp_path, histories, message):
    with pytest.raises(ValueError, match=message):
        figure1(histories, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


# ------------------------------------------------------------------ Fig. 5
def _images():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (24, 24, 1)).astype(np.uint8)
    return {
        "rgb": rng.integers(0, 256, (24, 24, 3)).astype(np.uint8),
        "depth": np.repeat(grey, 3, axis=2),
        "ir": grey[:, :, 0],
    }


def test_figure5_draws_a_grid_of_modalities_and_filters(tmp_path, monkeypatch):
    seen = []
    save = figures_frequency._save_png

    def spy(figure, path):
        axes = figure.axes
        seen.append(
            ([ax.get_title() for ax in axes], [ax.get_ylabel() for ax in axes], [t.get_text() for t in figure.texts])
        )
        return save(figure, path)  # fmt: skip

    monkeypatch.setattr(figures_frequency, "_save_png", spy)
    filters = [{"kind": "high", "size": 15}, {"kind": "high", "size": 5}, FrequencyFilter("low", 5),
               FrequencyFilter("low", 3, reading="spatial")]  # fmt: skip
    path = figure5(_images(), filters, tmp_path / "fig5")
    assert path == tmp_path / "fig5.png" and path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 1000
    titles, ylabels, texts = seen[-1]
    assert len(titles) == 3 * 6
    assert titles[:6] == ["raw", "spectrum", "high-15", "high-5", "low-5", "low-3-spatial"]
    assert [ylabels[r * 6] for r in range(3)] == ["rgb", "depth", "ir"] and "SYNTHETIC" not in texts
    figure5(_images(), filters[:1], tmp_path / "fig5b.png", spectrum=False, synthetic=True)
    titles, _, texts = seen[-1]
    assert titles[:2] == ["raw", "high-15"] and len(titles) == 6 and "SYNTHETIC" in texts


@pytest.mark.parametrize(
    ("images", "filters", "message"),
    [
        ({}, [{"kind": "low", "size": 3}], "at least one image"),
        ({"rgb": np.zeros((8, 8, 3), dtype=np.float32)}, [{"kind": "low", "size": 3}], "must be a uint8"),
        ({"rgb": np.zeros((8,), dtype=np.uint8)}, [{"kind": "low", "size": 3}], "must be a uint8"),
        ({"rgb": np.zeros((8, 8, 3), dtype=np.uint8)}, [], "non-empty list of filters"),
        ({"rgb": np.zeros((8, 8, 3), dtype=np.uint8)}, {"kind": "low", "size": 3}, "non-empty list of filters"),
        ({"rgb": np.zeros((8, 8, 3), dtype=np.uint8)}, [{"kind": "band", "size": 3}], "kind must be one of"),
        ({"rgb": np.zeros((8, 8, 3), dtype=np.uint8)}, [None], "may not be None"),
    ],
)
def test_figure5_refuses_bad_input(tmp_path, images, filters, message):
    with pytest.raises(ValueError, match=message):
        figure5(images, filters, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
