"""SDE on the two-stream YOLOv8n (Table 12's ``+SDE`` columns): the SDE plug-in on the backbones' SPPF outputs
enhances in training and passes evaluation through, its loss reaches both backbones and joins ultralytics' loss in
ultralytics' scale, nothing of it is pickled with the model; and a tiny ``T-yolov8n +MWAM +SDE`` run through the
ultralytics runner records SDE's terms and its registry entry."""

import copy
import csv
import pickle

import pytest
import torch

from mwam_harness.models.yolo.two_stream import FUSION_LAYERS, TwoStreamDetectionModel
from reproduce.methods.base import StepData
from reproduce.methods.context import LoopContext
from reproduce.methods.sde.plugin import SDEPlugin
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.tables.specs import table_runs

RUNTIME = Runtime(device="cpu", progress=False, wandb="disabled", log_every=1)


def images(batch=4, size=64, seed=0):
    return torch.rand(batch, 6, size, size, generator=torch.Generator().manual_seed(seed))


def detection_batch(x):
    size = x.shape[0]
    return {
        "img": x,
        "batch_idx": torch.arange(size).float(),
        "cls": torch.arange(size).float().remainder(5)[:, None],
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.3]]).repeat(size, 1),
    }


@pytest.fixture
def host():
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    torch.manual_seed(0)
    model = TwoStreamDetectionModel(ch=6, nc=5, verbose=False)
    model.args = get_cfg(DEFAULT_CFG)  # the loss gains, as ultralytics' trainer sets them
    return model


def sde_on(model, progress=0.5):
    ctx = LoopContext(host=model, fixed_progress=progress)
    plugin = SDEPlugin(seed=0)
    plugin.setup(ctx, {})
    return plugin, ctx


def test_the_feature_branches_are_the_backbones_sppf_outputs(host):
    branches = host.feature_branches()
    assert tuple(branches) == ("rgb", "ir")
    assert branches["rgb"] is host.rgb_backbone[-1] and branches["ir"] is host.ir_backbone[-1]
    assert type(branches["rgb"]).__name__ == "SPPF" and branches["rgb"].i == FUSION_LAYERS[-1]
    assert all(any(m is module for m in host.branches()[k].modules()) for k, module in branches.items())


def test_sde_enhances_p5_in_training_passes_evaluation_through_and_reaches_both_backbones(host):
    x = images()
    host.train()
    with torch.no_grad():
        plain = host.fused_features(x)
    plugin, ctx = sde_on(host)
    plugin.before_forward(ctx, {"rgb": x[:, :3], "ir": x[:, 3:]})
    enhanced = host.fused_features(x)
    assert {m: tuple(e.shape) for m, e in plugin.enhancer.embeddings.items()} == {"rgb": (4, 256), "ir": (4, 256)}
    assert torch.equal(enhanced[0], plain[0]) and torch.equal(enhanced[1], plain[1]), "P3 / P4 pass as they are"
    change = (enhanced[2] - plain[2]).detach()
    assert change.abs().max() > 1e-4, "P5 (the sum of the two SPPF outputs) is enhanced in training"
    # the change is the embeddings' change added to every pixel: constant over the map
    assert torch.allclose(change, change.mean(dim=(2, 3), keepdim=True).expand_as(change), atol=1e-5)

    loss, parts = plugin.loss(ctx, StepData({}, None, {}, None), torch.zeros(()), {})
    assert torch.isfinite(loss) and loss > 0 and parts["sde/pairs"] == 1 and "sde/info_nce" in parts
    host.zero_grad(set_to_none=True)
    loss.backward()
    for backbone in (host.rgb_backbone, host.ir_backbone):
        assert backbone[0].conv.weight.grad is not None and backbone[0].conv.weight.grad.abs().sum() > 0
        assert backbone[-1].cv2.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in host.model.parameters()), "SDE's loss does not reach the head"

    host.eval()
    plugin.enhancer.begin_step(0.5)
    with torch.no_grad():
        evaluated = host.fused_features(x)
        plugin.enhancer.remove()
        reference = host.fused_features(x)
    assert plugin.enhancer.embeddings == {}, "evaluation records and enhances nothing"
    assert all(torch.equal(a, b) for a, b in zip(evaluated, reference, strict=True))


def test_the_added_loss_is_scaled_as_ultralytics_loss_and_never_pickled(host):
    from reproduce.yolo.trainer import forward_hooks_detached

    x = images()
    batch = detection_batch(x)
    host.train()
    detection, items = host.loss(batch)
    plugin, ctx = sde_on(host)
    terms = []

    def term(batch_, preds):
        loss, _ = plugin.loss(ctx, StepData({}, preds, batch_, None), torch.zeros(()), {})
        terms.append(loss.detach())
        return loss

    host.add_training_loss("sde", term)
    plugin.before_forward(ctx, {})
    total, items_sde = host.loss(batch)
    assert total.shape == (detection.numel() + 1,)
    assert set(items_sde) == set(items) == {"box_loss", "cls_loss", "dfl_loss"}, "the items stay the detection's"
    assert float(total[-1].detach()) == pytest.approx(float(terms[-1]) * 4, rel=1e-6), (
        "the batch mean times the batch size"
    )
    assert torch.isfinite(total).all() and len(terms) == 1
    total.sum().backward()
    assert host.rgb_backbone[0].conv.weight.grad is not None

    host.eval()
    with torch.no_grad():
        preds = host(x)
    assert host.loss(batch, preds)[0].shape == detection.shape, "no added term outside training"

    with pytest.raises(Exception, match=r"pickle|local object"):
        pickle.dumps(host)  # SDE's forward hooks are closures ...
    with forward_hooks_detached(host.feature_branches().values()):
        ema = copy.deepcopy(host)  # ... which the trainer detaches while ultralytics copies the model (its EMA)
    restored = pickle.loads(pickle.dumps(ema))
    assert len(host.rgb_backbone[-1]._forward_hooks) == 1 and not ema.rgb_backbone[-1]._forward_hooks
    assert "_training_losses" in host.__dict__
    for copied in (restored, ema):
        assert "_training_losses" not in copied.__dict__
        copied.train()
        assert copied.loss(batch)[0].shape == detection.shape


def test_table12_mwam_sde_column_trains_through_the_ultralytics_runner(tmp_path):
    import mwam_harness.datasets.dronevehicle as dronevehicle
    from reproduce.paths import results_root_set_to
    from reproduce.yolo.runner import UltralyticsRunner

    with results_root_set_to(tmp_path / "results"):
        columns = {
            r.column: c for c, r in table_runs(12).configs(None, dronevehicle.PRESETS["smoke"], extensions=("sde",))
        }
        assert set(columns) == {"T-yolov8n", "T-yolov8n +MWAM", "T-yolov8n +SDE", "T-yolov8n +MWAM +SDE"}
        assert columns["T-yolov8n +SDE"].mwam.intervention == "none" and columns["T-yolov8n +SDE"].sde.enabled
        config, runtime = table_runs(12).configs(
            None, dronevehicle.PRESETS["smoke"], columns=["T-yolov8n +MWAM +SDE"], runtime=RUNTIME
        )[0]
        assert config.sde.enabled and config.mwam.intervention == "grad"
        registry = Registry()
        result = UltralyticsRunner().run(config, registry, runtime)
        assert registry.has(config) and registry.load(config)["key"] == config.key == result["key"]
        run_dir = registry.run_dir(config)
    assert tuple(result["subsets"]) == ("rgb", "ir", "rgb+ir")
    assert [p["name"] for p in result["plugins"]] == ["ultralytics", "mwam", "sde"]
    sde_entry = result["plugins"][2]
    assert sde_entry["feature_branches"] == ["rgb", "ir"] and result["plugins"][1]["deferred"] is True
    assert len(result["history"]) == 2
    for epoch in result["history"]:  # SDE's per-epoch means, grouped as the engine's history keeps them
        assert set(epoch["sde"]) == {
            f"sde/{k}" for k in ("info_nce", "hellinger", "subspace", "lambda", "pairs", "total")
        }
        assert epoch["sde"]["sde/total"] > 0 and epoch["sde"]["sde/pairs"] == 1
        assert "train/box_loss" in epoch
    assert result["history"][1]["sde"]["sde/lambda"] < result["history"][0]["sde"]["sde/lambda"]  # lambda(t) falls
    with (run_dir / "curves.csv").open() as handle:
        series = {row["series"] for row in csv.DictReader(handle)}
    assert {"sde/info_nce", "sde/total", "sde/energy/rgb/strong", "sde/energy/ir/noise"} <= series
    assert {"mwam/K_applied/rgb", "loss/box_loss"} <= series
    state = torch.load(run_dir / "ultralytics" / "weights" / "plugins.pt", weights_only=True)
    assert set(state["state"]) == set(state["process"]) == {"mwam", "sde"}
    assert state["state"]["mwam"]["bank.value"].abs().sum() > 0
    assert (
        state["process"]["sde"]["epoch_terms"] == [] and "generator" in state["process"]["sde"]["sde"]["_extra_state"]
    )
