"""Training plug-ins: a run's ordered list, the sections that build them, composition (MWAM's K and a gradient
modulation multiply), a plug-in in a loop that is not the engine's (LoopContext), the TrainContext the engine hands
them, exact resume of every plug-in's state (also from a checkpoint written before the plug-ins), and the worked
example of docs/architecture.md (ResNet-18 concat host + modality_gradient_scale)."""

import pytest
import torch

from mwam_harness import models
from mwam_harness.catalog import PLUGINS
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.methods import LoopContext, Plugin, TrainContext, list_plugins, plugins_for
from reproduce.methods.legacy import legacy_checkpoint
from reproduce.methods.modality_gradient_scale import ModalityGradientScale
from reproduce.methods.mwam import MWAMPlugin
from reproduce.runs.config import ConfigError
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config, weights

SCALE = {"name": "modality_gradient_scale", "options": {"scales": {"rgb": 0.5, "ir": 0.0}}}


@pytest.fixture
def toy_root(toy, root):
    return root


def test_a_runs_plugins_are_the_method_the_listed_ones_then_the_builtins_in_order(toy_root):
    cfg = toy_config(toy_root, plugins=[SCALE], sde={"enabled": True})
    assert plugins_for(cfg, RUNTIME).names == ["standard", "modality_gradient_scale", "mwam", "sde", "logger"]
    assert plugins_for(toy_config(toy_root, mwam={"intervention": "off"}), RUNTIME).names == ["standard", "logger"]
    assert {"standard", "mmanet", "mmanet_seg", "gss", "ultralytics"} <= set(list_plugins("method"))
    assert {"mwam", "sde", "logger"} <= set(list_plugins("builtin")) and "modality_gradient_scale" in list_plugins()


def test_the_plugins_section_is_validated_and_keeps_old_keys(toy_root):
    plain = toy_config(toy_root)
    assert toy_config(toy_root, plugins=[]).key == plain.key, "an empty plugins list is the default: same key"
    scaled = toy_config(toy_root, plugins=[SCALE])
    assert scaled.key != plain.key and scaled.variant == "toy+modality_gradient_scale+mwam-hybrid"
    assert toy_config(toy_root, plugins=["modality_gradient_scale"]).plugins[0].options == {}
    for bad, message in [
        ([{"name": "ogm"}], "unknown plugin 'ogm'"),
        ([{"name": "mmanet"}], "is a method plug-in, set by method.name"),
        ([{"name": "mwam"}], "is a builtin plug-in, set by its own section"),
        ([SCALE, SCALE], "each plug-in at most once"),
        ([{"name": "modality_gradient_scale", "options": {"scales": {"rgb": -1}}}], "finite number >= 0"),
        ([{"name": "modality_gradient_scale", "options": {"bogus": 1}}], "unknown options"),
        ({"name": "modality_gradient_scale"}, "must be a list"),
    ]:
        with pytest.raises(ConfigError, match=message):
            toy_config(toy_root, plugins=bad)
    with pytest.raises(ConfigError, match="is a plugin plug-in, set by plugins"):
        toy_config(toy_root, method={"name": "modality_gradient_scale"})


def _branch_gradients(trainer, batch):
    """One step's gradients, as the optimiser would apply them (after the plug-ins' gradient edits)."""
    ctx = trainer.step_context()
    inputs = trainer.task.inputs(batch, trainer.device)
    trainer.before_forward(inputs, ctx)
    output = trainer.model(inputs, None)
    loss, _ = trainer.compute_loss(inputs, output, batch, ctx)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.backward(loss)
    trainer.before_optimizer_step(ctx)
    return {name: p.grad.clone() for name, p in trainer.host.named_parameters() if p.grad is not None}


def test_mwams_k_and_a_gradient_modulation_plugin_multiply(tmp_path, toy_root):
    """MWAM scales each branch by K during backward; the listed plug-in multiplies afterwards (before_optimizer_step):
    the gradients the optimiser sees are K_m x scale_m x the plain ones, the head's untouched."""
    both_config = toy_config(toy_root, mwam={"intervention": "grad"}, plugins=[SCALE])
    both = Trainer(both_config, Registry(tmp_path / "a"), RUNTIME)
    plain = Trainer(toy_config(toy_root, mwam={"intervention": "none"}), Registry(tmp_path / "b"), RUNTIME)
    for trainer in (both, plain):
        trainer.setup()
    batch = next(iter(both.train_loader))
    torch.manual_seed(5)  # the toy host's random modality draw: the same for both
    edited = _branch_gradients(both, batch)
    torch.manual_seed(5)
    reference = _branch_gradients(plain, batch)
    k = dict(zip(("rgb", "depth", "ir"), both.plugins["mwam"].mwam.grad_scale.tolist(), strict=True))
    assert len(set(k.values())) > 1, "K differs between the modalities"
    scales = {"rgb": 0.5, "depth": 1.0, "ir": 0.0}
    for name, grad in edited.items():
        modality = name.split(".")[1] if name.startswith("branch.") else None
        factor = k[modality] * scales[modality] if modality else 1.0
        torch.testing.assert_close(grad, reference[name] * factor, rtol=1e-5, atol=1e-7, msg=name)


def test_the_engine_hands_plugins_a_train_context_not_the_trainer(tmp_path, toy_root):
    seen = {}

    class Probe(Plugin):
        name, kind = "probe", "plugin"

        def setup(self, ctx, dependencies):
            seen["setup"] = ctx

        def before_forward(self, ctx, inputs):
            seen.setdefault("positions", []).append((ctx.epoch, ctx.step_in_epoch, ctx.global_step, ctx.progress))

        def on_epoch_end(self, ctx, epoch, entry):
            entry["probe"] = ctx.evaluate_subsets("val", subsets=[("rgb",)])

    PLUGINS.discover()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PLUGINS.entries, "probe", Probe)
        config = toy_config(toy_root, train={"epochs": 1}, plugins=["probe"])
        result = Trainer(config, Registry(tmp_path), RUNTIME).run()
    ctx = seen["setup"]
    assert isinstance(ctx, TrainContext) and not isinstance(ctx, Trainer) and not hasattr(ctx, "train_step")
    assert ctx.host.modalities == ("rgb", "depth", "ir") and ctx.task.num_classes == 2 and ctx.epochs == 1
    assert seen["positions"][:2] == [(0, 0, 0, 0.0), (0, 1, 1, 0.25)]
    assert list(result["history"][0]["probe"]) == ["rgb"] and "acc" in result["history"][0]["probe"]["rgb"]
    assert [p["name"] for p in result["plugins"]] == ["standard", "probe", "mwam", "logger"]
    assert result["method"] == {"method": "standard"}


def test_every_plugins_state_resumes_exactly_also_from_a_checkpoint_written_before_the_plugins(tmp_path, toy_root):
    cfg = toy_config(toy_root, sde={"enabled": True}, plugins=[SCALE])
    whole = Trainer(cfg, Registry(tmp_path / "a"), RUNTIME)
    result_whole = whole.run()

    def stop(trainer, step):
        if step == 6:  # mid-epoch 1
            trainer.request_stop()

    for layout in ("current", "legacy"):
        registry = Registry(tmp_path / layout)
        with pytest.raises(TrainingInterruptedError):
            Trainer(cfg, registry, RUNTIME, callbacks=[stop]).run()
        if layout == "legacy":  # rewrite the checkpoint as the trainer before the plug-ins wrote it
            path = registry.run_dir(cfg) / "last.pt"
            state = torch.load(path, weights_only=False)
            torch.save(_as_written_before_the_plugins(state), path)
        resumed = Trainer(cfg, registry, RUNTIME)
        result = resumed.run(resume=True)
        assert torch.equal(weights(resumed.host), weights(whole.host)), layout
        assert result["history"] == result_whole["history"] and result["subsets"] == result_whole["subsets"]


def _as_written_before_the_plugins(state):
    """The inverse of ``legacy_checkpoint``: MWAM and the method as top-level entries, SDE in the process states."""
    old = {k: v for k, v in state.items() if k != "plugins"}
    old["mwam"], old["method"] = state["plugins"]["mwam"], state["plugins"]["standard"]
    old["processes"] = []
    for process in state["processes"]:
        sde = process["plugins"]["sde"]
        entry = {k: v for k, v in process.items() if k != "plugins"}
        entry.update(sde=sde["sde"], epoch_sde=sde["epoch_terms"], epoch_energy=sde["epoch_energy"])
        old["processes"].append(entry)
    assert legacy_checkpoint(old, list(state["plugins"]), "standard")["plugins"].keys() == state["plugins"].keys()
    return old


# ---------------------------------------------------------------- the worked example (docs/architecture.md)
def test_resnet18_concat_host_slices_its_head_per_modality():
    torch.manual_seed(0)
    host = models.build("resnet18_concat", modalities=["rgb", "depth"], channels={"rgb": 3, "depth": 1}).eval()
    assert sum(p.numel() for p in host.encoders["rgb"].parameters()) == 11_176_512
    assert sum(p.numel() for p in host.encoders["depth"].parameters()) == 11_170_240
    inputs = host.example_inputs(4, torch.Generator().manual_seed(1))
    present = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=torch.bool)
    out = host(inputs, present)
    torch.testing.assert_close(out.modality_logits["rgb"] + out.modality_logits["depth"], out.logits)
    assert torch.equal(out.features["depth"][1], torch.zeros(512)), "an absent modality's features are zeroed"
    assert out.aux is None, "the slices are predictions, not loss terms"
    default = models.build("resnet18_concat")
    assert sum(p.numel() for p in default.parameters()) == 2 * 11_176_512 + 2_050
    assert models.model_info("resnet18_concat").parameters is None, "a host of one's own needs no authors' count"


def test_the_worked_example_in_a_loop_of_ones_own():
    """MWAM and the gradient-modulation plug-in in a plain PyTorch loop through a LoopContext: the branch gradients
    are K_m x scale_m x the plain ones."""
    torch.manual_seed(0)
    host = models.build("resnet18_concat", modalities=["rgb", "depth"])
    inputs = host.example_inputs(4, torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 0, 1])
    ctx = LoopContext(host=host)
    mwam, scale = MWAMPlugin("grad"), ModalityGradientScale(ModalityGradientScale.options_class({"depth": 0.5}))
    for plugin in (mwam, scale):
        plugin.setup(ctx, {})
    plain = _loop_gradients(host, inputs, target)  # K = 1 before MWAM's first step
    mwam.before_forward(ctx, inputs)
    _loop_gradients(host, inputs, target)  # MWAM's K applied during backward
    scale.before_optimizer_step(ctx)
    k = dict(zip(("rgb", "depth"), mwam.mwam.grad_scale.tolist(), strict=True))
    for name, p in host.named_parameters():
        modality = name.split(".")[1] if name.startswith("encoders.") else None
        factor = 1.0 if modality is None else k[modality] * (0.5 if modality == "depth" else 1.0)
        torch.testing.assert_close(p.grad, plain[name] * factor, rtol=1e-4, atol=1e-7, msg=name)


def _loop_gradients(host, inputs, target):
    host.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(host(inputs).logits, target).backward()
    return {n: p.grad.clone() for n, p in host.named_parameters()}


def test_every_plugin_imports_without_torch():
    """The catalog imports every plug-in package to validate a configuration: none of them may load torch."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; from mwam_harness.catalog import PLUGINS; names = PLUGINS.names(); "
        "print(len(names), 'torch' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    count, loaded = done.stdout.split()
    assert int(count) >= 9 and loaded == "False", done.stdout
