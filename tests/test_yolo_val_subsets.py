"""Per-epoch validation of every subset in the DroneVehicle (ultralytics) runs (reproduce/yolo/trainer.py,
``validate_subsets``): with ``runtime.val_subsets: all`` each ``val_every``-th epoch logs ``val/<subset>/mAP50`` and
``val/<subset>/mAP50-95`` for RGB, IR and RGB+IR at the epoch's step (the full set's from ultralytics' own
validation, the others from an extra masked pass over the EMA model, the first ``val_cases`` images when set); the
pass leaves the weights, the EMA, the modes and AMP alone and restores the global random generators (ultralytics'
``Format`` draws from Python's once per validation image), so training is bit-for-bit the same as with
``val_subsets: full``, which adds nothing."""

from types import SimpleNamespace

import pytest
import torch

from reproduce.runs.config import ConfigError
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime

RUNTIME = Runtime(device="cpu", progress=False, wandb="disabled", log_every=1)
SUBSETS = ("rgb", "ir", "rgb+ir")
NAMES = ("mAP50", "mAP50-95")


def train_smoke(results, monkeypatch, **runtime):
    """A smoke T-yolov8n run with these ``runtime`` settings: what its tracker was given ``[(values, step)]``, the
    training model's and the EMA's weights after the last batch, the registry entry, and each per-subset pass."""
    import mwam_harness.datasets.dronevehicle as dronevehicle
    from reproduce.paths import results_root_set_to
    from reproduce.tables.specs import table_runs
    from reproduce.tracking import Tracker
    from reproduce.yolo import trainer as yolo_trainer
    from reproduce.yolo.runner import UltralyticsRunner

    logged, passes, final = [], [], {}
    validate_subset = yolo_trainer.validate_subset

    def spy(validator, model, subset, trainer=None):
        passes.append({"subset": subset, "images": len(validator.dataloader.dataset), "epoch": trainer.epoch})
        return validate_subset(validator, model, subset, trainer=trainer)

    validate_subsets = yolo_trainer.TwoStreamDetectionTrainer.validate_subsets

    def unchanged(trainer):
        """The whole per-subset validation of an epoch changes no weight, mode, EMA or AMP state."""

        def state():
            return {
                "model": {k: v.clone() for k, v in trainer.model.state_dict().items()},
                "ema": {k: v.clone() for k, v in trainer.ema.ema.state_dict().items()},
                "modes": (trainer.model.training, trainer.ema.ema.training, trainer.ema.ema.present),
                "updates": trainer.ema.updates, "amp": trainer.amp, "scaler": trainer.scaler.state_dict(),
            }  # fmt: skip

        before = state()
        values = validate_subsets(trainer)
        after = state()
        for part in ("model", "ema"):
            assert all(torch.equal(before[part][k], after[part][k]) for k in before[part]), part
        assert {k: v for k, v in before.items() if k not in ("model", "ema")} == {
            k: v for k, v in after.items() if k not in ("model", "ema")
        }
        return values

    def keep_weights(trainer, batch):
        final["model"] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        final["ema"] = {k: v.detach().clone() for k, v in trainer.ema.ema.state_dict().items()}

    with monkeypatch.context() as patch, results_root_set_to(results):
        patch.setattr(Tracker, "log", lambda self, values, step: logged.append((dict(values), step)))
        patch.setattr(yolo_trainer, "validate_subset", spy)
        patch.setattr(yolo_trainer.TwoStreamDetectionTrainer, "validate_subsets", unchanged)
        config, planned = table_runs(12).configs(
            None, dronevehicle.PRESETS["smoke"], columns=["T-yolov8n"], runtime=RUNTIME
        )[0]
        entry = UltralyticsRunner([keep_weights]).run(config, Registry(), planned.replace(**runtime))
    return SimpleNamespace(logged=logged, passes=passes, final=final, entry=entry)


def epoch_logs(run):
    """The tracker's per-epoch entries (ultralytics' ``on_fit_epoch_end``; the last one is its final evaluation of
    ``best.pt``, logged as epoch ``epochs + 1``)."""
    return [(values, step) for values, step in run.logged if "epoch" in values]


def subset_keys(values):
    return {k for k in values if k.startswith("val/") and k.split("/")[1] in SUBSETS}


@pytest.mark.ci  # three ultralytics runs, ~13 s: .ci/run runs it after make test (pytest -m ci)
def test_every_epoch_logs_every_subset_and_training_is_the_same_as_without(tmp_path, monkeypatch):
    every = train_smoke(tmp_path / "all", monkeypatch, val_every=1, val_subsets="all", val_cases=None)
    full = train_smoke(tmp_path / "full", monkeypatch, val_every=1, val_subsets="full", val_cases=None)
    limited = train_smoke(tmp_path / "limited", monkeypatch, val_every=2, val_subsets="all", val_cases=3)
    expected = {f"val/{s}/{n}" for s in SUBSETS for n in NAMES}

    # val_subsets: all, every epoch: both epochs log all three subsets with the epoch's values, at the epoch's step
    logs = epoch_logs(every)
    assert [values["epoch"] for values, _ in logs] == [1.0, 2.0, 3.0]
    batches = 2  # 8 training images, batch 4
    for epoch, (values, step) in enumerate(logs[:2], 1):
        assert subset_keys(values) == expected and step == epoch * batches
        assert all(0.0 <= values[k] <= 1.0 for k in expected)
        assert values["val/rgb+ir/mAP50"] == values["val/metrics/mAP50(B)"], "the full set: ultralytics' own"
        assert values["val/rgb+ir/mAP50-95"] == values["val/metrics/mAP50-95(B)"]
    assert not subset_keys(logs[2][0]), "nothing more for ultralytics' final evaluation of best.pt"
    assert [(p["epoch"], p["subset"]) for p in every.passes] == [(e, s) for e in (0, 1) for s in (("rgb",), ("ir",))]
    assert {p["images"] for p in every.passes} == {4}, "the whole validation split (smoke: 4 images)"

    # val_subsets: full adds nothing: no extra pass, no subset key, the same epoch metrics
    assert full.passes == [] and not any(subset_keys(values) for values, _ in full.logged)
    for (a, step_a), (b, step_b) in zip(epoch_logs(every), epoch_logs(full), strict=True):
        assert step_a == step_b and {k: v for k, v in a.items() if k not in expected} == b

    # val_every 2 with val_cases 3: only epoch 2, the extra passes on the first three images
    logs = epoch_logs(limited)
    assert not subset_keys(logs[0][0]) and subset_keys(logs[1][0]) == expected
    assert [(p["epoch"], p["subset"], p["images"]) for p in limited.passes] == [(1, ("rgb",), 3), (1, ("ir",), 3)]

    # training is bit-for-bit the same: the training model, the EMA, the history and the test evaluation
    for other in (full, limited):
        for part in ("model", "ema"):
            assert every.final[part].keys() == other.final[part].keys()
            assert all(torch.equal(every.final[part][k], other.final[part][k]) for k in every.final[part]), part
        assert every.entry["subsets"] == other.entry["subsets"]
        strip = [{k: v for k, v in row.items() if k != "time"} for row in every.entry["history"]]
        assert strip == [{k: v for k, v in row.items() if k != "time"} for row in other.entry["history"]]
        assert every.entry["key"] == other.entry["key"], "the runtime is not part of the run's key"


def test_the_presets_validate_every_subset():
    """smoke and paper: every epoch; demo: every third (the costs: datasets/dronevehicle/__init__.py)."""
    import mwam_harness.datasets.dronevehicle as dronevehicle

    every = {name: Runtime.from_dict(preset.runtime) for name, preset in dronevehicle.PRESETS.items()}
    assert {name: (r.val_every, r.val_subsets, r.val_cases) for name, r in every.items()} == {
        "paper": (1, "all", None), "smoke": (1, "all", None), "demo": (3, "all", None)
    }  # fmt: skip
    assert dronevehicle.PRESETS["demo"].run["train"]["epochs"] % 3 == 0, "the last epoch is among them"


def test_the_first_images_loader_keeps_the_batches_and_draws_from_no_global_generator():
    from reproduce.yolo.trainer import first_images_loader

    dataset = [torch.full((2,), float(i)) for i in range(10)]
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    assert first_images_loader(loader, None) is loader and first_images_loader(loader, 10) is loader
    first = first_images_loader(loader, 6)
    state = torch.get_rng_state()
    batches = list(first)
    assert torch.equal(torch.get_rng_state(), state), "iterating draws from the loader's own generator"
    assert [b[:, 0].tolist() for b in batches] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]


def test_the_global_generators_are_restored_after_the_pass():
    import random

    import numpy as np

    from reproduce.yolo.trainer import global_rng_preserved

    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    with global_rng_preserved(torch.device("cpu")):
        random.random(), np.random.rand(), torch.rand(1)
    assert random.getstate() == states[0] and np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])


def test_a_validation_split_other_than_val_is_refused(tmp_path):
    import mwam_harness.datasets.dronevehicle as dronevehicle
    from reproduce.tables.specs import table_runs
    from reproduce.yolo.arguments import train_arguments

    config, runtime = table_runs(12).configs(None, dronevehicle.PRESETS["smoke"], columns=["T-yolov8n"])[0]
    train_arguments(config, runtime, tmp_path / "data.yaml", tmp_path)
    if "val_split" not in {f for f in runtime.to_dict()}:
        pytest.skip("this Runtime has no val_split")
    with pytest.raises(ConfigError, match="val_split"):
        train_arguments(config, runtime.replace(val_split="test"), tmp_path / "data.yaml", tmp_path)
