"""What the balancing plug-ins need of the engine: a split's batches (``ctx.loader``), ending training early
(``ctx.finish_training``, also across a resume), the shared per-modality readings (``modality_signals``) and the
ResNet-18 host's sum fusion and OGM-GE initialisation."""

import pytest
import torch

from mwam_harness import models
from mwam_harness.catalog import PLUGINS
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.methods import LoopContext, Plugin
from reproduce.methods.modality_signals import (
    branch_parameters,
    correct_class_probability,
    unimodal_logits,
    unimodal_validation,
)
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config, weights


@pytest.fixture
def toy_root(toy, root):
    return root


class Finisher(Plugin):
    """Ends training at the end of epoch ``at`` and counts the validation samples it reads."""

    name, kind, at = "finisher", "plugin", 1

    def on_epoch_end(self, ctx, epoch, entry):
        entry["val_seen"] = sum(len(batch["label"]) for batch in ctx.loader("val"))
        entry["unimodal"] = unimodal_validation(ctx, "val", self.name)
        if epoch == self.at:
            ctx.finish_training("every modality stopped")


def _run(tmp_path, toy_root, name="a", callbacks=None, resume=False, epochs=4):
    with pytest.MonkeyPatch.context() as patch:
        PLUGINS.discover()
        patch.setitem(PLUGINS.entries, "finisher", Finisher)
        config = toy_config(toy_root, train={"epochs": epochs}, plugins=["finisher"], mwam={"intervention": "off"})
        trainer = Trainer(config, Registry(tmp_path / name), RUNTIME, callbacks=callbacks)
        return trainer, trainer.run(resume=resume)


def test_a_plugin_ends_training_early_and_the_run_is_recorded_with_why(tmp_path, toy_root):
    trainer, result = _run(tmp_path, toy_root)
    assert [e["epoch"] for e in result["history"]] == [0, 1], "no epoch after the one that finished"
    assert result["finished_early"] == {"epoch": 1, "reason": "every modality stopped"}
    assert result["selection"] == {"select": "last", "epoch": 1}
    assert result["history"][0]["val_seen"] == 16, "ctx.loader('val') gives every validation sample"
    unimodal = result["history"][0]["unimodal"]
    assert set(unimodal) == {"rgb", "depth", "ir"} and all(0 <= v["acc"] <= 100 and v["loss"] > 0 for v in
                                                           unimodal.values())  # fmt: skip
    assert trainer.host.training, "the host's mode is restored after the plug-in's evaluation"


def test_finishing_early_survives_a_resume(tmp_path, toy_root):
    whole, result_whole = _run(tmp_path, toy_root, "whole")

    def stop(trainer, step):
        if step == 7:  # in epoch 1, before it finishes the run
            trainer.request_stop()

    with pytest.raises(TrainingInterruptedError):
        _run(tmp_path, toy_root, "cut", callbacks=[stop])
    resumed, result = _run(tmp_path, toy_root, "cut", resume=True)
    assert result["history"] == result_whole["history"] and result["finished_early"] == result_whole["finished_early"]
    assert torch.equal(weights(resumed.host), weights(whole.host))


def test_modality_signals_read_the_hosts_per_modality_predictions():
    host = models.build("resnet18_concat", modalities=["rgb", "depth"])
    task = type("T", (), {"modalities": ("rgb", "depth"), "modality_logits": staticmethod(lambda o: o.modality_logits)})
    ctx = LoopContext(host=host, task=task())
    out = host(host.example_inputs(3))
    assert list(unimodal_logits(ctx, out, "probe")) == ["rgb", "depth"]
    out.modality_logits.pop("depth")
    with pytest.raises(ValueError, match=r"probe scores each modality.*\['depth'\]"):
        unimodal_logits(ctx, out, "probe")
    logits, target = torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.tensor([1, 0])
    expected = torch.tensor([0.5, 1 / (1 + 2.718281828**-2)])
    torch.testing.assert_close(correct_class_probability(logits, target), expected)
    conv = branch_parameters(host, "rgb", "conv")
    assert conv and all(p.dim() == 4 for _, p in conv) and len(branch_parameters(host, "rgb", "matrix")) == len(conv)
    assert len(branch_parameters(host, "rgb", "all")) > len(conv), "BatchNorm weights and biases are 1-D"
    with pytest.raises(ValueError, match="no branch 'ir'"):
        branch_parameters(host, "ir")


def test_resnet18_sum_fusion_and_ogm_initialisation():
    torch.manual_seed(0)
    host = models.build("resnet18_concat", fusion="sum").eval()
    assert sum(p.numel() for p in host.parameters()) == 2 * 11_176_512 + 2 * 1_026
    out = host(host.example_inputs(4), torch.tensor([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=torch.bool))
    torch.testing.assert_close(out.modality_logits["rgb"] + out.modality_logits["depth"], out.logits)
    torch.testing.assert_close(out.modality_logits["depth"][1], host.heads["depth"].bias, msg="absent: zero features")
    concat = models.build("resnet18_concat")
    assert torch.count_nonzero(concat.head.bias) == 0, "OGM-GE's weight_init: linear bias 0"
    std = concat.head.weight.std().item()  # Xavier-normal: std sqrt(2 / (fan_in + fan_out)) = sqrt(2 / 1026)
    assert abs(std - (2 / 1026) ** 0.5) < 0.1 * (2 / 1026) ** 0.5
    timm_init = models.build("resnet18_concat", init="timm")
    assert torch.count_nonzero(timm_init.head.bias) > 0, "torch's default Linear init draws the bias"
    with pytest.raises(ValueError, match="fusion must be one of"):
        models.build("resnet18_concat", fusion="attention")
