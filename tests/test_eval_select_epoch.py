"""``eval.select: epoch:N``: the final evaluation runs on the weights after epoch ``N`` (0-based), kept in the
checkpoint so that a resumed run keeps them; the registry's ``selection`` record names the epoch; today's values
keep today's keys."""

from __future__ import annotations

import pytest
import torch

from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.runs.config import ConfigError, EvalConfig
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config, weights

pytestmark_toy = pytest.mark.usefixtures("toy")
EPOCH_1 = {"batch_size": 8, "select": "epoch:1"}


def _snapshots():
    """A step callback keeping the host's weights after every step, by epoch (the last one is the epoch's end)."""
    seen: dict[int, torch.Tensor] = {}

    def callback(trainer, step):
        seen[trainer.epoch] = weights(trainer.host).clone()

    return seen, callback


def _saved(registry: Registry, cfg) -> torch.Tensor:
    """The evaluated weights the registry keeps (model.pt), sorted (the order of the state dict may differ)."""
    host = torch.load(registry.weights_path(cfg), weights_only=False)["host"]
    return torch.cat([host[k].flatten() for k in host if "weight" in k or "bias" in k]).sort().values


def test_the_epoch_rule_is_parsed_and_validated(root):
    assert EvalConfig(select="epoch:0").fixed_epoch == 0 and EvalConfig(select="epoch:298").fixed_epoch == 298
    assert EvalConfig().fixed_epoch is None and EvalConfig(select="best_val").fixed_epoch is None
    for bad in ("epoch:", "epoch:-1", "epoch:01", "epoch:1.5", "epoch: 1", "epoch", "epochs:1", 1, None):
        with pytest.raises(ConfigError, match=r"eval\.select must be last, best_val or epoch:N"):
            EvalConfig(select=bad)
    assert toy_config(root, train={"epochs": 3}, eval={"select": "epoch:2"}).eval.fixed_epoch == 2
    with pytest.raises(ConfigError, match=r"epoch:3 names an epoch the run never reaches: train.epochs=3"):
        toy_config(root, train={"epochs": 3}, eval={"select": "epoch:3"})


def test_keys_today_unchanged_and_the_epoch_in_the_key(root):
    last = toy_config(root)
    assert toy_config(root, eval={"select": "last", "select_after": 5}).key == last.key, "last: as today"
    epoch = toy_config(root, eval={"select": "epoch:1"})
    assert epoch.key != last.key and epoch.key != toy_config(root, eval={"select": "epoch:2"}).key
    assert epoch.identity()["eval"] == {"batch_size": 8, "select": "epoch:1"}, "select_* dropped with epoch:N"
    ignored = toy_config(root, eval={"select": "epoch:1", "select_after": 5, "select_metric": "auc"})
    assert ignored.key == epoch.key and "select_after" not in ignored.to_dict()["eval"]
    best = toy_config(root, train={"epochs": 3}, eval={"select": "best_val", "select_after": 0})
    assert best.identity()["eval"] == {"batch_size": 8, "select": "best_val", "select_after": 0}, "as today"


@pytestmark_toy
def test_epoch_n_evaluates_the_weights_after_epoch_n(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 3}, eval=EPOCH_1)
    seen, callback = _snapshots()
    reg = Registry(tmp_path / "runs")
    result = Trainer(cfg, reg, RUNTIME, callbacks=[callback]).run()
    assert result["selection"] == {"select": "epoch:1", "epoch": 1}
    assert not torch.equal(seen[1], seen[2]), "the toy's last epoch moves the weights"
    assert torch.equal(_saved(reg, cfg), seen[1].sort().values), "epoch 1's weights, not the last epoch's"
    last_reg = Registry(tmp_path / "last")
    last = Trainer(toy_config(root, train={"epochs": 3}), last_reg, RUNTIME).run()
    assert torch.equal(_saved(last_reg, toy_config(root, train={"epochs": 3})), seen[2].sort().values)
    assert [h["loss"] for h in last["history"]] == [h["loss"] for h in result["history"]], "training unchanged"


@pytestmark_toy
def test_a_run_resumed_after_epoch_n_keeps_its_weights(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 3}, eval=EPOCH_1)
    whole_reg = Registry(tmp_path / "a")
    whole = Trainer(cfg, whole_reg, RUNTIME).run()

    def stop(trainer, step):
        if trainer.epoch == 2:  # in epoch 2: epoch 1's weights are only in the checkpoint
            trainer.request_stop()

    with pytest.raises(TrainingInterruptedError):
        Trainer(cfg, Registry(tmp_path / "b"), RUNTIME, callbacks=[stop]).run()
    reg = Registry(tmp_path / "b")
    resumed = Trainer(cfg, reg, RUNTIME).run(resume=True)
    assert resumed["selection"] == whole["selection"] == {"select": "epoch:1", "epoch": 1}
    assert torch.equal(_saved(reg, cfg), _saved(whole_reg, cfg)) and resumed["subsets"] == whole["subsets"]


# ---------------------------------------------------------------- NYUv2's paper preset and MMANet-seg's teacher
def _table3(preset, root=None, **methods):
    import dataclasses

    import mwam_harness.datasets.nyuv2 as nyuv2
    from reproduce.tables.specs import table_runs

    preset = nyuv2.PRESETS[preset]
    if methods:
        options = {**preset.methods.get("mmanet_seg", {}), **methods}
        preset = dataclasses.replace(preset, methods={"mmanet_seg": options})
    return {runtime.column: c for c, runtime in table_runs(3).configs(root, preset, extensions=("sde",))}


def _teacher(config):
    from reproduce.methods.mmanet_seg.plugin import MMANetSeg

    return MMANetSeg.dependencies(config)["teacher"].config


def test_nyuv2_paper_columns_evaluate_epoch_298_as_the_authors_test_script():
    columns = _table3("paper")
    assert len(columns) == 8 and all(c.eval.select == "epoch:298" for c in columns.values())
    assert all(c.train.epochs == 300 for c in columns.values())
    assert all(c.eval.select == "last" for c in _table3("smoke").values()), "synthetic presets: as today"


def test_mmanet_seg_teacher_select_sets_the_teacher_runs_eval_select(tmp_path):
    from reproduce.methods.mmanet_seg.options import MMANetSegOptions

    for name in ("train.txt", "test.txt"):  # what the keys fingerprint
        (tmp_path / name).write_text("0001\n", encoding="utf-8")
    paper = _table3("paper", tmp_path)["MMANet"]
    assert paper.method.options["teacher_select"] == "best_test"
    e = _teacher(paper).eval
    assert (e.select, e.select_split, e.select_metric, e.select_mode, e.select_after) == (
        "best_val", "test", "miou", "max", 229,
    ), "the authors' rule: best test MIoU from epoch 230"  # fmt: skip
    last = _teacher(_table3("paper", tmp_path, teacher_select="last")["MMANet"])
    assert last.eval.select == "last", "not the student's epoch:298"
    fixed = _teacher(_table3("paper", tmp_path, teacher_select="epoch:245")["MMANet"])
    assert fixed.eval.select == "epoch:245"
    assert len({_teacher(paper).key, last.key, fixed.key}) == 3, "three teacher runs in the registry"
    assert _teacher(_table3("paper", tmp_path, teacher_select_after=99)["MMANet"]).eval.select_after == 99
    smoke = _table3("smoke")["MMANet"]
    assert "teacher_select" not in smoke.method.options and _teacher(smoke).eval.select == "last"
    for bad in ("best_val", "epoch:x", "epoch:07"):
        with pytest.raises(ValueError, match="teacher_select must be last, best_test or epoch:N"):
            MMANetSegOptions(teacher_select=bad)
    with pytest.raises(ValueError, match="teacher_select_after"):
        MMANetSegOptions(teacher_select_after=-2)
