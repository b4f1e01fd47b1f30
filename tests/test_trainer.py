"""The engine with a toy host and an in-memory task: exact resume, registry skip / force, W&B offline files."""

import json

import pytest
import torch
from torch import nn

import reproduce.tasks as tasks
from models import Host, HostOutput, registry
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.runs.config import RunConfig
from reproduce.runs.registry import Registry
from reproduce.tasks.classification import ClassificationTask

MODALITIES = ("rgb", "depth", "ir")


class ToyHost(Host):
    modalities = MODALITIES

    def __init__(self, aux_heads: bool = False):
        super().__init__()
        self.branch = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
                for m in MODALITIES
            }
        )
        self.head = nn.Linear(12, 2)
        self.aux = nn.ModuleDict({m: nn.Linear(4, 2) for m in MODALITIES}) if aux_heads else None

    def branches(self):
        return dict(self.branch.items())

    def forward(self, inputs, present=None):
        present = self.check_inputs(inputs, present)
        if self.training:  # a random per-sample draw, like SF-MD, to exercise the RNG state on resume
            present = present & (torch.rand(present.shape, device=present.device) > 0.3)
        feats = {m: self.branch[m](inputs[m]) for m in MODALITIES}
        fused = torch.cat([feats[m] * present[:, i, None] for i, m in enumerate(MODALITIES)], dim=1)
        aux = {m: self.aux[m](feats[m]) for m in MODALITIES} if self.aux is not None else None
        return HostOutput(self.head(fused), aux=aux, present=present)


class ToyData(torch.utils.data.Dataset):
    def __init__(self, size, seed, train):
        g = torch.Generator().manual_seed(seed + (0 if train else 1))
        self.labels = torch.randint(0, 2, (size,), generator=g)
        self.x = {
            m: torch.randn(size, 3, 16, 16, generator=g) + self.labels.view(-1, 1, 1, 1) * k
            for k, m in zip((0.2, 1.0, 0.5), MODALITIES, strict=True)
        }
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        item = {m: self.x[m][i] for m in MODALITIES}
        item["label"] = self.labels[i]
        return item


class ToyTask(ClassificationTask):
    def build_dataset(self, split, train):
        return ToyData(24 if train else 16, self.seed, train)


@pytest.fixture(autouse=True)
def toy_components(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {**registry._REGISTRY, "toy": ToyHost})
    monkeypatch.setitem(tasks.TASKS, "toy", ToyTask)


def config(tmp_path, **changes):
    values = dict(
        host="toy",
        dataset="casia_surf",
        data_root=str(tmp_path),
        synthetic=True,
        table=4,
        column="SF-MD",
        task="toy",
        epochs=3,
        batch_size=5,
        lr=0.05,
        warmup_epochs=1,
        milestones=(2,),
        mwam="hybrid",
        host_options={"aux_heads": True},
        eval_batch_size=8,
        deterministic=True,
        device="cpu",
        progress=False,
        log_every=2,
    )
    values.update(changes)
    return RunConfig(**values)


def weights(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.host.parameters()])


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    cfg = config(tmp_path)
    whole = Trainer(cfg, Registry(tmp_path / "a" / "runs"), wandb_mode="disabled")
    result_whole = whole.run()

    def stop_at_step_6(trainer, step):
        if step == 6:  # mid-epoch: 4 steps per epoch
            trainer.request_stop()

    interrupted = Trainer(cfg, Registry(tmp_path / "b" / "runs"), wandb_mode="disabled", callbacks=[stop_at_step_6])
    with pytest.raises(TrainingInterruptedError, match="--resume"):
        interrupted.run()
    assert not Registry(tmp_path / "b" / "runs").has(cfg)
    resumed = Trainer(cfg, Registry(tmp_path / "b" / "runs"), wandb_mode="disabled")
    result_resumed = resumed.run(resume=True)
    assert resumed.global_step == whole.global_step == 12
    assert torch.equal(weights(resumed), weights(whole))
    assert torch.equal(resumed.mwam.bank.value, whole.mwam.bank.value)
    assert result_resumed["subsets"] == result_whole["subsets"]
    assert result_resumed["history"] == result_whole["history"]


def test_result_covers_every_subset_in_paper_order_and_registry_skips(tmp_path):
    cfg = config(tmp_path, epochs=1)
    reg = Registry(tmp_path / "runs")
    steps = []
    result = Trainer(cfg, reg, wandb_mode="disabled", callbacks=[lambda t, s: steps.append(s)]).run()
    assert list(result["subsets"]) == ["rgb", "depth", "ir", "rgb+depth", "rgb+ir", "depth+ir", "rgb+depth+ir"]
    assert set(result["subsets"]["rgb"]) == {"acc", "apcer", "npcer", "acer"}
    saved = json.loads(reg.path(cfg).read_text())
    assert saved["key"] == cfg.key and saved["synthetic"] is True and saved["git_commit"]
    assert saved["variant"] == "toy+mwam-hybrid" and saved["metric"] == "Acc"
    assert len(steps) == 4
    Trainer(cfg, reg, wandb_mode="disabled", callbacks=[lambda t, s: steps.append(s)]).run()
    assert len(steps) == 4, "a finished run is not retrained"
    Trainer(cfg, reg, wandb_mode="disabled", callbacks=[lambda t, s: steps.append(s)]).run(force=True)
    assert len(steps) == 8, "force retrains"
    records = reg.records(cfg)
    assert len(records) == 7 and records[0].column == "SF-MD" and records[0].synthetic


def test_sigint_checkpoints_and_resume_finishes(tmp_path):
    """A real SIGINT mid-epoch: the step finishes, a checkpoint is written, and --resume completes the run."""
    import os
    import signal

    cfg = config(tmp_path, epochs=2)
    reg = Registry(tmp_path / "runs")

    def interrupt(trainer, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterruptedError):
        Trainer(cfg, reg, wandb_mode="disabled", callbacks=[interrupt]).run()
    assert (reg.run_dir(cfg) / "last.pt").exists() and not reg.has(cfg)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is restored
    resumed = Trainer(cfg, reg, wandb_mode="disabled")
    result = resumed.run(resume=True)
    assert resumed.global_step == 8 and reg.has(cfg) and len(result["history"]) == 2


def test_validation_every_epoch_is_in_history_and_does_not_change_training(tmp_path):
    with_val = Trainer(config(tmp_path, epochs=2), Registry(tmp_path / "a"), wandb_mode="disabled")
    result = with_val.run()
    assert [list(h["val"]) for h in result["history"]] == [list(result["subsets"])] * 2
    without = Trainer(config(tmp_path, epochs=2, val_every=0), Registry(tmp_path / "b"), wandb_mode="disabled")
    without.run()
    assert torch.equal(weights(with_val), weights(without))


def test_same_training_different_table_column_is_one_run(tmp_path):
    a = config(tmp_path)
    b = a.replace(table=5, column="Hybrid")
    assert a.key == b.key and a.replace(seed=3).key != a.key and a.replace(mwam="grad").key != a.key


def test_wandb_offline_writes_run_files_and_curves(tmp_path):
    cfg = config(tmp_path, epochs=1)
    reg = Registry(tmp_path / "results" / "runs")
    Trainer(cfg, reg, wandb_mode="offline").run()
    offline = list((tmp_path / "results" / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and any(offline[0].rglob("*.wandb"))
    curves = (reg.run_dir(cfg) / "curves.csv").read_text().splitlines()
    assert curves[0] == "panel,series,step,value"
    assert any(",mwam/K/depth," in line for line in curves) and any(",loss/fused," in line for line in curves)


def test_unknown_run_settings_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown keys"):
        RunConfig.from_dict({"host": "toy", "dataset": "casia_surf", "data_root": "x", "synthetic": True, "lr_": 1})
    with pytest.raises(ValueError, match="mwam must be"):
        config(tmp_path, mwam="gradient")
    with pytest.raises(ValueError, match="unknown"):
        config(tmp_path, mwam_options={"windw": 4})


def test_batch_size_one_trains(tmp_path):
    result = Trainer(
        config(tmp_path, epochs=1, batch_size=1, steps_per_epoch=3), Registry(tmp_path / "runs"), wandb_mode="disabled"
    ).run()
    assert result["history"][0]["loss"] == result["history"][0]["loss"]  # not NaN


def test_a_finished_run_keeps_its_weights_not_its_resume_checkpoint(tmp_path):
    cfg = config(tmp_path, epochs=1)
    reg = Registry(tmp_path / "runs")
    trainer = Trainer(cfg, reg, wandb_mode="disabled")
    trainer.run()
    assert not (reg.run_dir(cfg) / "last.pt").exists()
    saved = torch.load(reg.weights_path(cfg), weights_only=False)
    assert saved["config_key"] == cfg.key
    assert all(torch.equal(v, saved["host"][k]) for k, v in trainer.host.state_dict().items())
