"""The two-stream YOLOv8n (Table 12's host): layout, parameter count, the missing-modality rules, reloading,
fusing, MWAM's editing (the MWAM plug-in) of exactly the backbone gradients inside ultralytics' step, the
run-to-ultralytics arguments and the offline set-up."""

import os
import pickle
from pathlib import Path

import pytest
import torch

from mwam import MWAM
from mwam_harness import models
from mwam_harness.models.two_stream_yolov8 import PARAMETERS
from mwam_harness.models.yolo.two_stream import FUSION_LAYERS, TwoStreamDetectionModel
from reproduce.methods.context import LoopContext
from reproduce.methods.mwam.plugin import MWAMPlugin
from reproduce.runs.config import ConfigError, RunConfig
from reproduce.runs.runtime import Runtime
from reproduce.yolo.arguments import check_config, train_arguments, ultralytics_device, validation_arguments
from reproduce.yolo.trainer import MAX_GRAD_NORM, optimizer_step_with_mwam


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return models.build("two_stream_yolov8n").eval()


def images(batch=2, size=64, seed=0):
    return torch.rand(batch, 6, size, size, generator=torch.Generator().manual_seed(seed))


def test_layout_parameter_count_and_branches(model):
    assert (
        isinstance(model, TwoStreamDetectionModel) and models.model_info("two_stream_yolov8n").runner == "ultralytics"
    )
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS == 4_284_479
    names = [name for name, _ in model.named_parameters()]
    assert {n.split(".")[0] for n in names} == {"model", "rgb_backbone", "ir_backbone"}
    rgb = sum(p.numel() for p in model.rgb_backbone.parameters())
    ir = sum(p.numel() for p in model.ir_backbone.parameters())
    assert rgb == ir == 1_272_656  # one YOLOv8n backbone (layers 0-9) each
    branches = model.branches()
    assert tuple(branches) == ("rgb", "ir") and branches["rgb"] is model.rgb_backbone
    assert not {id(p) for p in branches["rgb"].parameters()} & {id(p) for p in branches["ir"].parameters()}
    assert model.stride.tolist() == [8.0, 16.0, 32.0] and model.yaml["channels"] == 6
    assert model.rgb_backbone[0].conv.in_channels == 3 and model.ir_backbone[0].conv.in_channels == 3


def test_every_subset_forward_and_the_absent_rules(model):
    x = images()
    with torch.no_grad():
        full = model(x)[0]
        with model.use_modalities(("rgb",)):
            rgb_only = model(x)[0]
            other = x.clone()
            other[:, 3:] = torch.rand_like(other[:, 3:])
            assert torch.equal(model(other)[0], rgb_only), "with IR absent its input must not matter"
            fused = model.fused_features(x)
        with model.use_modalities(("ir",)):
            ir_only = model(x)[0]
    assert full.shape == rgb_only.shape == ir_only.shape == (2, 4 + 5, 84)  # 8x8 + 4x4 + 2x2 anchors at 64 px
    assert not torch.equal(full, rgb_only) and not torch.equal(full, ir_only) and not torch.equal(rgb_only, ir_only)
    assert model.present == (True, True), "use_modalities restores the full set"
    with torch.no_grad():  # "features": the fused P3 / P4 / P5 are the RGB backbone's alone (IR's zeroed)
        expected, h = [], x[:, :3]
        for layer in model.rgb_backbone:
            h = layer(h)
            if layer.i in FUSION_LAYERS:
                expected.append(h)
    assert all(torch.equal(a, b) for a, b in zip(fused, expected, strict=True))
    black = TwoStreamDetectionModel(ch=6, nc=5, verbose=False, absent="input").eval()
    black.load_state_dict(model.state_dict())
    blank = x.clone()
    blank[:, 3:] = 0
    with torch.no_grad(), black.use_modalities(("rgb",)):
        assert torch.allclose(black(x)[0], model(blank)[0], atol=1e-5), "'input' feeds the absent stream a black image"
    with pytest.raises(ValueError, match="non-empty subset"):
        with model.use_modalities(()):
            pass
    with pytest.raises(ValueError, match="6-channel"):
        TwoStreamDetectionModel(ch=3, nc=5, verbose=False)


def test_pickles_and_fuses_like_an_ultralytics_checkpoint(model, tmp_path):
    from ultralytics.nn.tasks import load_checkpoint

    x = images(1, 64, seed=3)
    with torch.no_grad():
        before = model(x)[0]
    path = tmp_path / "best.pt"
    torch.save({"model": pickle.loads(pickle.dumps(model)), "train_args": {}}, path)
    loaded, _ = load_checkpoint(path)
    assert type(loaded) is TwoStreamDetectionModel
    loaded.eval().fuse(verbose=False)
    assert loaded.is_fused() and not hasattr(loaded.ir_backbone[0], "bn")
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], before, atol=1e-3, rtol=1e-3)


def _plugin(net, window):
    """The trainer's MWAM plug-in (``mwam_edit: optimizer_step``: deferred) on ``net``, with ``window`` as the K of
    the mini-batches it measured since the last optimiser step."""
    ctx = LoopContext(host=net)
    plugin = MWAMPlugin("grad", deferred=True)
    plugin.setup(ctx, {})
    plugin.window.extend(window)
    return plugin, ctx


def _step(net, plugin, ctx, clip):
    """One ultralytics optimiser step as the trainer takes it (fp32: the scaler is disabled, no EMA)."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return optimizer, lambda: optimizer_step_with_mwam(net, optimizer, scaler, None, plugin, ctx, clip)


def _gradients(net, scale=1e-3):
    torch.manual_seed(1)
    for p in net.parameters():
        p.grad = torch.randn_like(p) * scale
    return {name: p.grad.clone() for name, p in net.named_parameters()}


@pytest.mark.parametrize("clip", ["after_scaling", "before_scaling"])
def test_mwam_scales_exactly_the_backbone_gradients_in_ultralytics_step(clip):
    net = TwoStreamDetectionModel(ch=6, nc=5, verbose=False)
    window = [torch.tensor([0.5, 2.0]), torch.tensor([0.7, 1.0])]  # two accumulated mini-batches
    plugin, ctx = _plugin(net, window)
    optimizer, step = _step(net, plugin, ctx, clip)
    grads = _gradients(net, scale=1e-4)  # a small norm: the clip (10) does not act
    seen = {}
    optimizer.step = lambda: seen.update({n: p.grad.clone() for n, p in net.named_parameters()})
    applied = step()
    factors = {"rgb_backbone": 0.6, "ir_backbone": 1.5, "model": 1.0}  # the window's mean K, 1 for the head
    for name, g in grads.items():
        assert torch.allclose(seen[name], g * factors[name.split(".")[0]], rtol=1e-6), name
    assert plugin.window == [] and torch.allclose(applied, torch.tensor([0.6, 1.5])) and applied is plugin.applied
    assert all(p.grad is None or not p.grad.any() for p in net.parameters()), "zero_grad after the step"
    _gradients(net, scale=1e-4)
    assert step() is None, "no mini-batch measured since: nothing applied in this step"


@pytest.mark.parametrize("clip", ["after_scaling", "before_scaling"])
def test_the_step_through_the_plugin_is_k_times_the_plain_gradients_from_a_real_backward(clip):
    """Two measured mini-batches accumulated (ultralytics' accumulate 2) as the trainer takes them -- the plug-in's
    ``before_forward`` on the halves, ultralytics' loss, backward, the step: what the optimiser sees is the plain
    accumulated gradients times the mean K on each backbone's parameters and unchanged on the head (both up to the
    global clip's common factor, read from the head); the plug-in logs the K applied."""
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    def accumulated(with_plugin):
        torch.manual_seed(0)
        net = TwoStreamDetectionModel(ch=6, nc=5, verbose=False)
        net.args = get_cfg(DEFAULT_CFG)
        net.train()
        plugin, ctx = _plugin(net, [])
        optimizer, step = _step(net, plugin if with_plugin else None, ctx, clip)
        for seed in (0, 1):
            x = images(2, 64, seed=seed)
            plugin.before_forward(ctx, {"rgb": x[:, :3], "ir": x[:, 3:]})
            batch = {"img": x, "batch_idx": torch.tensor([0.0, 1.0]), "cls": torch.tensor([[1.0], [2.0]]),
                     "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.3, 0.6, 0.1, 0.1]])}  # fmt: skip
            net(batch)[0].sum().backward()
        seen = {}
        optimizer.step = lambda: seen.update(
            {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        )
        step()
        return seen, plugin

    plain, _ = accumulated(False)
    edited, plugin = accumulated(True)
    k = plugin.applied
    assert k.shape == (2,) and not torch.allclose(k, torch.ones(2)) and plugin.window == []
    head = [n for n in plain if n.startswith("model.") and plain[n].norm() > 0]
    common = float(edited[head[0]].norm() / plain[head[0]].norm())  # the clip's factor relative to the plain step
    if clip == "before_scaling":
        assert common == pytest.approx(1.0, rel=1e-5)  # both clip the same plain gradients
    assert set(edited) == set(plain) and {n.split(".")[0] for n in plain} == {"rgb_backbone", "ir_backbone", "model"}
    for name, g in plain.items():
        factor = {"rgb_backbone": float(k[0]), "ir_backbone": float(k[1])}.get(name.split(".")[0], 1.0)
        assert torch.allclose(edited[name], g * factor * common, rtol=1e-4, atol=1e-9), name
    values = {}
    plugin.on_log(LoopContext(host=None), values)
    assert values["mwam/K_applied/rgb"] == pytest.approx(float(k[0])) and "mwam/K/ir" in values


def test_the_clip_order_decides_whether_mwam_is_clipped():
    results = {}
    for clip in ("after_scaling", "before_scaling"):
        net = TwoStreamDetectionModel(ch=6, nc=5, verbose=False)
        plugin, ctx = _plugin(net, [torch.tensor([0.25, 4.0])])
        optimizer, step = _step(net, plugin, ctx, clip)
        _gradients(net, scale=1.0)  # a large norm: the clip acts
        norms = {}

        def record(net=net, norms=norms):
            norms["total"] = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters()]))

        optimizer.step = record
        step()
        results[clip] = float(norms["total"])
    assert results["after_scaling"] == pytest.approx(MAX_GRAD_NORM, rel=1e-4)  # the clip has the last word
    assert results["before_scaling"] > MAX_GRAD_NORM  # K applied after the clip: the bound no longer holds


def test_mwam_without_hooks_needs_an_explicit_call():
    net = TwoStreamDetectionModel(ch=6, nc=5, verbose=False)
    hooked = MWAM(branches=net.branches(), intervention="grad")
    with pytest.raises(ValueError, match="gradient_hooks=False"):
        hooked.scale_gradients()
    hooked.remove_hooks()
    plain = MWAM(branches=net.branches(), intervention="grad", gradient_hooks=False)
    x = images(2, 64)
    plain.step({"rgb": x[:, :3], "ir": x[:, 3:]})
    net.train()
    loss = sum(o.float().square().mean() for o in net(x)["feats"]) if isinstance(net(x), dict) else None
    assert loss is not None
    loss.backward()
    before = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    plain.scale_gradients()
    k = plain.grad_scale
    for name, p in net.named_parameters():
        if name in before:
            factor = k[0] if name.startswith("rgb_backbone") else k[1] if name.startswith("ir_backbone") else 1.0
            assert torch.allclose(p.grad, before[name] * factor), name
    with pytest.raises(ValueError, match="shape"):
        plain.scale_gradients(torch.ones(3))


def _config(**changes):
    values = {
        "data": {"dataset": "dronevehicle", "root": "/nowhere", "options": {"imgsz": 160}},
        "host": {"name": "two_stream_yolov8n"},
        "method": {"name": "ultralytics", "options": {"close_mosaic": 0, "extra": {"mixup": 0.1}}},
        "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.937, "weight_decay": 5e-4},
        "train": {"epochs": 3, "batch_size": 4, "amp": "fp16", "deterministic": True},
        "seed": 7,
    }
    for section, value in changes.items():
        values[section] = {**values.get(section, {}), **value} if isinstance(value, dict) else value
    return RunConfig.from_dict(values)


def test_run_configuration_becomes_ultralytics_arguments(tmp_path):
    arguments = train_arguments(_config(), Runtime(device="cuda:1", workers=3), tmp_path / "data.yaml", tmp_path)
    expected = {"epochs": 3, "batch": 4, "imgsz": 160, "optimizer": "SGD", "lr0": 0.01, "momentum": 0.937,
                "weight_decay": 5e-4, "amp": True, "deterministic": True, "seed": 7, "workers": 3, "device": "1",
                "close_mosaic": 0, "mixup": 0.1, "warmup_epochs": 3.0, "lrf": 0.01, "nbs": 64,
                "project": str(tmp_path), "name": "ultralytics", "model": "yolov8n.yaml"}  # fmt: skip
    assert {k: arguments[k] for k in expected} == expected
    from reproduce.methods.ultralytics import ultralytics_arguments

    assert set(arguments) - {"verbose", "exist_ok"} <= ultralytics_arguments()
    relative = train_arguments(_config(), Runtime(), tmp_path / "data.yaml", Path("results/runs/key"))
    assert relative["project"] == str(Path.cwd() / "results/runs/key")  # not ultralytics' runs/detect/<project>
    val = validation_arguments(_config(), Runtime(), tmp_path / "data.yaml", "test")
    assert val["split"] == "test" and val["rect"] is True and "device" not in val
    assert ultralytics_device("cpu") == "cpu" and ultralytics_device("cuda") == "0"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedule": {"name": "poly"}}, "own learning-rate schedule"),
        ({"method": {"name": "standard", "options": {}}}, "method.name: ultralytics"),
        ({"mwam": {"intervention": "loss"}}, "per-modality heads"),
        ({"optim": {"nesterov": False}}, "always Nesterov"),
        ({"data": {"options": {"imgsz": 160, "crop": 3}}}, "data.options"),
    ],
)
def test_what_the_ultralytics_runner_cannot_honour_is_an_error(changes, message):
    with pytest.raises(ConfigError, match=message):
        check_config(_config(**changes))


def test_sde_is_honoured_by_the_ultralytics_runner():
    check_config(_config(sde={"enabled": True}, mwam={"intervention": "grad"}))


def test_recipe_options_are_checked_against_ultralytics():
    from reproduce.methods.ultralytics import UltralyticsOptions

    with pytest.raises(ValueError, match="run configuration owns"):
        UltralyticsOptions(extra={"lr0": 0.1})
    with pytest.raises(ValueError, match="not arguments"):
        UltralyticsOptions(extra={"mosaik": 1.0})
    with pytest.raises(ValueError, match="mwam_edit"):
        UltralyticsOptions(mwam_edit="sometimes")
    with pytest.raises(ConfigError):
        ultralytics_device("cuda:0,1")


def test_ultralytics_is_kept_offline():
    from ultralytics.utils import ONLINE, USER_CONFIG_DIR

    assert os.environ["YOLO_OFFLINE"] == "1" and os.environ["YOLO_AUTOINSTALL"] == "0"
    assert ONLINE is False
    assert (USER_CONFIG_DIR / "Arial.ttf").is_file() and (USER_CONFIG_DIR / "Arial.Unicode.ttf").is_file()
    from ultralytics.utils.checks import check_font

    assert check_font("Arial.ttf") == USER_CONFIG_DIR / "Arial.ttf"


@pytest.mark.parametrize("cos_lr", [False, True])
def test_the_dry_run_schedule_is_ultralytics_own(cos_lr):
    from ultralytics.utils.torch_utils import one_cycle

    from reproduce.methods.ultralytics import UltralyticsOptions

    epochs, lrf = 200, 0.01
    lf = one_cycle(1, lrf, epochs) if cos_lr else (lambda x: max(1 - x / epochs, 0) * (1.0 - lrf) + lrf)
    expected = [0.01 * lf(e) for e in range(epochs)]  # BaseTrainer._setup_scheduler's LambdaLR
    assert UltralyticsOptions(cos_lr=cos_lr).lr_per_epoch(0.01, epochs) == pytest.approx(expected, rel=1e-12)


@pytest.mark.gpu
def test_the_ultralytics_step_with_mwam_runs_under_cuda_amp():
    from reproduce.benchmarks.yolo_step import bench_step

    report = bench_step(torch.device("cuda"), size=64, batch=2, iters=1, warmup=1)
    assert report["precision"] == "fp16 autocast" and report["train_step_mwam_ms"]["median_ms"] > 0


def test_table12_dry_run_shows_ultralytics_schedule(tmp_path):
    from reproduce.experiments import describe_plan, plan_table
    from reproduce.paths import results_root_set_to
    from reproduce.runs.registry import Registry

    with results_root_set_to(tmp_path):
        descriptions = describe_plan(plan_table(12, "paper", require_data=False), Registry())
    lrs = descriptions[0]["lr_per_epoch"]
    assert len(lrs) == 200 and lrs[0] == pytest.approx(0.01) and lrs[100] == pytest.approx(0.01 * (0.5 * 0.99 + 0.01))


def test_embeddings_of_fusion_and_head_layers(model):
    x = images()
    with torch.no_grad():
        p5 = model(x, embed=[9])
        mixed = model(x, embed=[4, 15])
        fused = model.fused_features(x)
    assert len(p5) == 2 and torch.allclose(p5[0], fused[-1][0].mean(dim=(1, 2)), atol=1e-6)  # the fused SPPF output
    assert mixed[0].shape == (64 + 64,) and torch.allclose(mixed[1][:64], fused[0][1].mean(dim=(1, 2)), atol=1e-6)
