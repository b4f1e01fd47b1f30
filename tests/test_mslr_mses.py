"""MSLR and MSES (reproduce/methods/mslr, reproduce/methods/mses): the ratio and its memory, the smoothing, patience,
freeze, restore and finish on hand-fed validation sequences against transcriptions of the AGM repository's loop,
the parameters each modality owns, toy runs (training, exact resume -- MSES also of a run that finishes early --,
MWAM), and clear errors."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mwam_harness import models
from mwam_harness.models import HostOutput
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.methods import LoopContext, StepData
from reproduce.methods import modality_signals as signals
from reproduce.methods.mses import MSESOptions, MSESPlugin
from reproduce.methods.mses.options import scaled_patience
from reproduce.methods.mses.plugin import smoothed_loss
from reproduce.methods.mslr import MSLROptions, MSLRPlugin
from reproduce.methods.mslr.plugin import modality_parameters, mslr_ratio
from reproduce.runs.config import ConfigError
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config, weights


# ---------------------------------------------------------------- transcriptions of the AGM repository
def agm_mslr(accuracies_a, accuracies_v):
    """lihong2303/AGM_ICCV2023 run/CREMAD_main.py l.627-630 and l.671-684: the ratios after each epoch."""
    audio_lr_ratio, visual_lr_ratio = 1.0, 1.0
    audio_lr_memory, visual_lr_memory = [], []
    out = []
    for accuracy_a, accuracy_v in zip(accuracies_a, accuracies_v, strict=True):
        if len(audio_lr_memory) < 5:
            audio_lr_memory.append(accuracy_a)
            visual_lr_memory.append(accuracy_v)
        else:
            audio_lr_ratio = accuracy_a / np.mean(audio_lr_memory)
            visual_lr_ratio = accuracy_v / np.mean(visual_lr_memory)
            audio_lr_memory = audio_lr_memory[1:]
            visual_lr_memory = visual_lr_memory[1:]
            audio_lr_memory.append(accuracy_a)
            visual_lr_memory.append(accuracy_v)
        out.append((audio_lr_ratio, visual_lr_ratio))
    return out


def agm_mses(losses_a, losses_v, patience=80):
    """CREMAD_main.py l.631-634 and l.685-745 (epochs 1-based), the checkpoints replaced by what they record:
    ``(modality, epoch it stopped, its argmin epoch)`` per stop and ``("exit", epoch)``."""
    audio_lr_ratio, visual_lr_ratio = 1.0, 1.0
    min_test_audio_loss, min_test_visual_loss = 1000, 1000
    audio_argmax_loss_epoch, visual_argmax_loss_epoch = 0.0, 0.0
    events = []
    for epoch in range(1, len(losses_a) + 1):
        validate_audio_batch_loss, validate_visual_batch_loss = losses_a[epoch - 1], losses_v[epoch - 1]
        if epoch == 1:
            min_test_audio_loss = validate_audio_batch_loss
            min_test_visual_loss = validate_visual_batch_loss
            audio_argmax_loss_epoch = 1.0
            visual_argmax_loss_epoch = 1.0
            audio_batch_loss = validate_audio_batch_loss
            visual_batch_loss = validate_visual_batch_loss
        else:
            audio_batch_loss = 0.6 * bre_audio_batch_loss + 0.4 * validate_audio_batch_loss  # noqa: F821
            visual_batch_loss = 0.6 * bre_visual_batch_loss + 0.4 * validate_visual_batch_loss  # noqa: F821
        bre_audio_batch_loss = validate_audio_batch_loss  # noqa: F841
        bre_visual_batch_loss = validate_visual_batch_loss  # noqa: F841
        if min_test_audio_loss > audio_batch_loss:
            min_test_audio_loss = audio_batch_loss
            audio_argmax_loss_epoch = epoch
        if min_test_visual_loss > visual_batch_loss:
            min_test_visual_loss = visual_batch_loss
            visual_argmax_loss_epoch = epoch
        if (epoch - audio_argmax_loss_epoch > patience) and (audio_lr_ratio != 0.0):
            audio_lr_ratio = 0.0
            events.append(("audio", epoch, audio_argmax_loss_epoch))
        if (epoch - visual_argmax_loss_epoch > patience) and (visual_lr_ratio != 0.0):
            visual_lr_ratio = 0.0
            events.append(("visual", epoch, visual_argmax_loss_epoch))
        if (audio_lr_ratio == 0.0) and (visual_lr_ratio == 0.0):
            events.append(("exit", epoch))
            break
    return events


# ---------------------------------------------------------------- a tiny sum-fusion host (own heads) and task
class TinySumHost(nn.Module):
    """Two linear branches, a head of its own per modality (``heads``, as resnet18_concat ``fusion="sum"``), the
    logits their sum plus a shared bias that belongs to no modality."""

    modalities = ("audio", "visual")

    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.ModuleDict({"audio": nn.Linear(3, 4), "visual": nn.Linear(2, 4)})
        self.heads = nn.ModuleDict({m: nn.Linear(4, 3) for m in self.modalities})
        self.shared = nn.Parameter(torch.zeros(3))

    def branches(self):
        return dict(self.branch.items())

    def forward(self, inputs, present=None):
        logits = {m: self.heads[m](torch.relu(self.branch[m](inputs[m]))) for m in self.modalities}
        return HostOutput(logits["audio"] + logits["visual"] + self.shared, modality_logits=logits)


class TinyTask:
    def __init__(self, modalities=("audio", "visual")) -> None:
        self.modalities = modalities

    def modality_logits(self, output):
        return dict(output.modality_logits or output.aux or {})


def tiny_step(host, optimizer, plugin, ctx, seed):
    g = torch.Generator().manual_seed(seed)
    inputs = {"audio": torch.randn(4, 3, generator=g), "visual": torch.randn(4, 2, generator=g)}
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(host(inputs).logits, torch.tensor([0, 1, 2, 0])).backward()
    plugin.before_optimizer_step(ctx)
    optimizer.step()


def feed(monkeypatch, table, key):
    """unimodal_validation returns ``table[m][ctx.epoch]`` as each modality's ``key`` (the other value fixed)."""

    def fake(ctx, split="val", who="plug-in"):
        other = "loss" if key == "acc" else "acc"
        return {m: {key: float(values[ctx.epoch]), other: 1.0} for m, values in table.items()}

    monkeypatch.setattr(signals, "unimodal_validation", fake)


def state_of(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------- MSLR
def test_mslr_ratio_and_memory_follow_the_agm_loop(monkeypatch):
    acc_a = [10, 20, 30, 40, 50, 60, 70, 20, 80, 0, 55]
    acc_v = [50, 50, 40, 60, 50, 45, 90, 10, 30, 30, 60]
    feed(monkeypatch, {"audio": acc_a, "visual": acc_v}, "acc")
    host = TinySumHost()
    ctx = LoopContext(host=host, task=TinyTask())
    plugin = MSLRPlugin(MSLROptions(base={"audio": 0.9, "visual": 1.1}))
    plugin.setup(ctx, {})
    expected = agm_mslr(acc_a, acc_v)
    for epoch in range(len(acc_a)):
        ctx.epoch = epoch
        entry = {}
        plugin.on_epoch_end(ctx, epoch, entry)
        assert plugin.ratio["audio"] == pytest.approx(expected[epoch][0]), epoch
        assert plugin.ratio["visual"] == pytest.approx(expected[epoch][1]), epoch
        assert entry["mslr"]["coefficient"]["audio"] == pytest.approx(0.9 * expected[epoch][0])
        assert len(plugin.memory["audio"]) == min(epoch + 1, 5)
    # by hand: after epoch 5 (memory 10..50, mean 30) the ratio is 60 / 30; it replaces, it does not accumulate
    assert expected[5][0] == 2.0 and expected[6][0] == pytest.approx(70 / 40)
    assert mslr_ratio(5.0, [0.0, 0.0]) == 1.0, "undefined ratio: no modulation"


def test_mslr_scales_each_modalitys_branch_and_own_head_within_its_window():
    host = TinySumHost()
    ctx = LoopContext(host=host, task=TinyTask())
    plugin = MSLRPlugin(MSLROptions(base={"audio": 0.5}, start_epoch=1, end_epoch=2))
    plugin.setup(ctx, {})
    plugin.ratio = {"audio": 2.0, "visual": 3.0}
    for epoch, active in ((0, False), (1, True), (2, True), (3, False)):
        ctx.epoch = epoch
        for p in host.parameters():
            p.grad = torch.ones_like(p)
        plugin.before_optimizer_step(ctx)
        factor = {"audio": 1.0, "visual": 3.0} if active else {"audio": 1.0, "visual": 1.0}
        for m in ("audio", "visual"):
            for p in [*host.branch[m].parameters(), *host.heads[m].parameters()]:
                assert torch.equal(p.grad, torch.full_like(p, factor[m])), (epoch, m)
        assert torch.equal(host.shared.grad, torch.ones(3)), "a shared parameter belongs to no modality"


def test_each_modality_owns_its_branch_and_a_head_of_its_own_only():
    sum_host = models.build("resnet18_concat", fusion="sum")
    owned = {id(p) for p in modality_parameters(sum_host, "rgb")}
    assert {id(p) for p in sum_host.heads["rgb"].parameters()} <= owned
    assert {id(p) for p in sum_host.encoders["rgb"].parameters()} <= owned
    assert not owned & {id(p) for p in sum_host.encoders["depth"].parameters()}
    concat_host = models.build("resnet18_concat")
    owned = {id(p) for p in modality_parameters(concat_host, "depth")}
    assert owned == {id(p) for p in concat_host.encoders["depth"].parameters()}, "the concat head is shared"


def test_options_and_clear_errors(toy, root, tmp_path):
    for cls, bad, message in [
        (MSLROptions, {"base": {"rgb": -1}}, "finite number >= 0"),
        (MSLROptions, {"base": [0.9]}, "must map modalities"),
        (MSLROptions, {"memory": 0}, "memory must be"),
        (MSLROptions, {"start_epoch": 3, "end_epoch": 2}, "end_epoch must be"),
        (MSESOptions, {"patience": -1}, "patience must be"),
        (MSESOptions, {"patience_fraction": 0}, "patience_fraction must be > 0"),
        (MSESOptions, {"smoothing": 1.5}, "smoothing must be"),
        (MSESOptions, {"restore": "head"}, "restore must be one of"),
        (MSESOptions, {"freeze": "half"}, "freeze must be one of"),
        (MSESOptions, {"split": ""}, "split must name"),
    ]:
        with pytest.raises(ValueError, match=message):
            cls(**bad)
    with pytest.raises(ConfigError, match="restore must be one of"):
        toy_config(root, plugins=[{"name": "mses", "options": {"restore": "x"}}])
    for plugin in (MSLRPlugin(), MSESPlugin()):
        with pytest.raises(ValueError, match="at least two modalities"):
            plugin.setup(LoopContext(host=TinySumHost(), task=TinyTask(("audio",))), {})
        ctx = LoopContext(host=TinySumHost(), task=TinyTask())
        plugin.setup(ctx, {})
        bare = HostOutput(torch.zeros(2, 3))
        with pytest.raises(ValueError, match=f"{plugin.name} scores each modality by its own prediction"):
            plugin.loss(ctx, StepData({}, bare, {}, None), torch.tensor(0.0), {})
    with pytest.raises(ValueError, match=r"base names \['audio'\]"):
        MSLRPlugin(MSLROptions(base={"audio": 0.9})).setup(LoopContext(host=None, task=TinyTask(("rgb", "ir"))), {})
    config = toy_config(root, plugins=["mses"], host={"options": {"aux_heads": False}}, mwam={"intervention": "off"})
    with pytest.raises(ValueError, match="mses scores each modality"):
        Trainer(config, Registry(tmp_path), RUNTIME).run()


# ---------------------------------------------------------------- MSES on hand-fed sequences
LOSS_A = [1.0, 0.8, 0.9, 0.95, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7]
LOSS_V = [1.0, 0.9, 0.8, 0.7, 0.75, 0.72, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1]


def test_the_smoothing_uses_the_previous_raw_loss():
    assert smoothed_loss(None, 0.7) == 0.7
    assert smoothed_loss(1.0, 0.5) == pytest.approx(0.6 * 1.0 + 0.4 * 0.5)
    assert smoothed_loss(1.0, 0.5, 0.0) == 0.5
    assert scaled_patience(1500, 80 / 1500) == 80 and scaled_patience(100, 80 / 1500) == 5
    assert scaled_patience(5, 80 / 1500) == 1, "at least one epoch"


def _mses_run(monkeypatch, options, momentum=0.0, last_epoch=None, adam=False):
    """Epochs (to ``last_epoch``) of one training step each on TinySumHost, then MSES's end of epoch on LOSS_A /
    LOSS_V; returns the plug-in, host, optimiser, context, the host and optimiser states after each epoch's
    training, and the entries."""
    feed(monkeypatch, {"audio": LOSS_A, "visual": LOSS_V}, "loss")
    torch.manual_seed(0)
    host = TinySumHost()
    if adam:
        optimizer = torch.optim.Adam(host.parameters(), lr=0.1)
    else:
        optimizer = torch.optim.SGD(host.parameters(), lr=0.1, momentum=momentum)
    ctx = LoopContext(host=host, task=TinyTask(), optimizer=optimizer, epochs=len(LOSS_A))
    plugin = MSESPlugin(options)
    plugin.setup(ctx, {})
    trained, entries = [], []
    for epoch in range(len(LOSS_A) if last_epoch is None else last_epoch + 1):
        ctx.epoch = epoch
        optimizer.param_groups[0]["lr"] = 0.1 / (epoch + 1)  # a schedule the restore must not rewind
        tiny_step(host, optimizer, plugin, ctx, seed=epoch)
        trained.append((state_of(host), {id(p): {k: v.clone() for k, v in s.items()} for p, s in
                                         optimizer.state.items()}))  # fmt: skip
        entry = {}
        plugin.on_epoch_end(ctx, epoch, entry)
        entries.append(entry["mses"])
        if ctx.finished:
            break
    return plugin, host, optimizer, ctx, trained, entries


def test_mses_stops_each_modality_as_the_agm_loop_and_finishes_training(monkeypatch):
    patience = 2
    plugin, _, _, ctx, _, entries = _mses_run(monkeypatch, MSESOptions(patience=patience))
    events = agm_mses(LOSS_A, LOSS_V, patience)
    stops = {m: (epoch - 1, best - 1) for m, epoch, best in (e for e in events if e[0] != "exit")}  # 0-based
    assert set(stops) == {"audio", "visual"} and events[-1][0] == "exit"
    for m, (epoch, best) in stops.items():
        assert plugin.stopped[m] == epoch and plugin.best_epoch[m] == best, m
    assert len(entries) == events[-1][1], "the run ends after the epoch the last modality stopped"
    assert ctx.finished.startswith("mses: every modality stopped: audio at epoch")
    # smoothed losses as in the repository: 0.6 x the previous raw loss + 0.4 x this one
    assert entries[1]["smoothed"]["audio"] == pytest.approx(0.6 * 1.0 + 0.4 * 0.8)
    assert entries[3]["smoothed"]["visual"] == pytest.approx(0.6 * 0.8 + 0.4 * 0.7)
    assert entries[0]["best_epoch"] == {"audio": 0, "visual": 0}, "the first epoch is the first minimum"


@pytest.mark.parametrize("freeze", ["zero", "skip"])
def test_mses_restores_the_branch_and_its_own_head_and_freezes_them(monkeypatch, freeze):
    patience = 2
    plugin, host, optimizer, ctx, trained, _ = _mses_run(monkeypatch, MSESOptions(patience=patience, freeze=freeze),
                                                         momentum=0.9)  # fmt: skip
    best_a, stop_a = plugin.best_epoch["audio"], plugin.stopped["audio"]
    assert stop_a < plugin.stopped["visual"]
    # replay to the audio stop: after it, audio's branch and head are its best epoch's, visual's this epoch's
    options = MSESOptions(patience=patience, freeze=freeze)
    plugin, host, optimizer, ctx, trained, _ = _mses_run(monkeypatch, options, momentum=0.9, last_epoch=stop_a)
    best_state, now = trained[best_a][0], trained[stop_a][0]
    for name, value in host.state_dict().items():
        owner = "audio" if name.startswith(("branch.audio", "heads.audio")) else "other"
        expected = best_state[name] if owner == "audio" else now[name]
        assert torch.equal(value, expected), name
    restored_momentum = trained[best_a][1]
    for p in modality_parameters(host, "audio"):
        assert torch.equal(optimizer.state[p]["momentum_buffer"], restored_momentum[id(p)]["momentum_buffer"])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / (stop_a + 1)), "the schedule is not rewound"
    # frozen from then on: its gradients are zero (or dropped), the other modality's are not
    ctx.epoch = stop_a + 1
    before = {n: v.clone() for n, v in host.named_parameters()}
    tiny_step(host, optimizer, plugin, ctx, seed=99)
    for p in modality_parameters(host, "audio"):
        assert (p.grad is None) if freeze == "skip" else torch.equal(p.grad, torch.zeros_like(p))
    assert any(p.grad.abs().sum() > 0 for p in modality_parameters(host, "visual"))
    if freeze == "skip":
        for name, p in host.named_parameters():
            if name.startswith(("branch.audio", "heads.audio")):
                assert torch.equal(p, before[name]), "the optimiser skips a dropped gradient"


def test_mses_restore_model_reloads_the_whole_host_and_optimiser_keeping_the_learning_rate(monkeypatch):
    plugin, *_ = _mses_run(monkeypatch, MSESOptions(patience=2, restore="model"), momentum=0.9)
    best_a, stop_a = plugin.best_epoch["audio"], plugin.stopped["audio"]
    options = MSESOptions(patience=2, restore="model")
    plugin, host, optimizer, _, trained, _ = _mses_run(monkeypatch, options, momentum=0.9, last_epoch=stop_a)
    for name, value in host.state_dict().items():
        assert torch.equal(value, trained[best_a][0][name]), name
    for p, state in optimizer.state.items():
        assert torch.equal(state["momentum_buffer"], trained[best_a][1][id(p)]["momentum_buffer"])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / (stop_a + 1))


@pytest.mark.parametrize("restore", ["branch", "model"])
def test_mses_restores_adams_state_with_its_step_count(monkeypatch, restore):
    plugin, *_ = _mses_run(monkeypatch, MSESOptions(patience=2, restore=restore), adam=True)
    best_a, stop_a = plugin.best_epoch["audio"], plugin.stopped["audio"]
    options = MSESOptions(patience=2, restore=restore)
    plugin, host, optimizer, _, trained, _ = _mses_run(monkeypatch, options, last_epoch=stop_a, adam=True)
    for p in modality_parameters(host, "audio"):
        state, expected = optimizer.state[p], trained[best_a][1][id(p)]
        assert set(state) == set(expected) and all(torch.equal(state[k], expected[k]) for k in state)
        assert state["step"].device.type == "cpu" and float(state["step"]) == best_a + 1
    for p in modality_parameters(host, "visual"):
        expected_epoch = best_a if restore == "model" else stop_a
        assert float(optimizer.state[p]["step"]) == expected_epoch + 1


# ---------------------------------------------------------------- toy runs
def _stop_at(step_number):
    def stop(trainer, step):
        if step == step_number:
            trainer.request_stop()

    return stop


def _resumes_exactly(config, tmp_path, step_number):
    whole = Trainer(config, Registry(tmp_path / "whole"), RUNTIME)
    result_whole = whole.run()
    registry = Registry(tmp_path / "cut")
    with pytest.raises(TrainingInterruptedError):
        Trainer(config, registry, RUNTIME, callbacks=[_stop_at(step_number)]).run()
    resumed = Trainer(config, registry, RUNTIME)
    result = resumed.run(resume=True)
    assert result["history"] == result_whole["history"] and result["subsets"] == result_whole["subsets"]
    assert result["finished_early"] == result_whole["finished_early"]
    assert torch.equal(weights(resumed.host), weights(whole.host))
    return result_whole


def test_mslr_trains_a_toy_run_with_mwam_and_resumes_exactly(toy, root, tmp_path):
    plugin = {"name": "mslr", "options": {"memory": 1, "base": {"rgb": 0.9, "depth": 1.1}}}
    config = toy_config(root, plugins=[plugin], mwam={"intervention": "grad"}, train={"epochs": 4})
    result = _resumes_exactly(config, tmp_path, 10)  # mid-epoch 2, after two ratio updates
    ratios = [e["mslr"]["ratio"] for e in result["history"]]
    assert ratios[0] == {"rgb": 1.0, "depth": 1.0, "ir": 1.0} and ratios[1] != ratios[0], ratios
    assert all(math.isfinite(e["loss"]) for e in result["history"])
    assert [p["name"] for p in result["plugins"]] == ["standard", "mslr", "mwam", "logger"]


def _branch_gradients(trainer, batch):
    """One step's gradients as the optimiser sees them (tests/test_plugins.py)."""
    ctx = trainer.step_context()
    inputs = trainer.task.inputs(batch, trainer.device)
    trainer.before_forward(inputs, ctx)
    output = trainer.model(inputs, None)
    loss, _ = trainer.compute_loss(inputs, output, batch, ctx)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.backward(loss)
    trainer.before_optimizer_step(ctx)
    return {name: p.grad.clone() for name, p in trainer.host.named_parameters() if p.grad is not None}


def test_mslrs_coefficients_and_mwams_k_multiply(toy, root, tmp_path):
    plugin = {"name": "mslr", "options": {"base": {"rgb": 0.5, "ir": 2.0}}}
    both = Trainer(toy_config(root, mwam={"intervention": "grad"}, plugins=[plugin]), Registry(tmp_path / "a"), RUNTIME)
    plain = Trainer(toy_config(root, mwam={"intervention": "none"}), Registry(tmp_path / "b"), RUNTIME)
    for trainer in (both, plain):
        trainer.setup()
    both.plugins["mslr"].ratio["depth"] = 3.0
    batch = next(iter(both.train_loader))
    torch.manual_seed(5)
    edited = _branch_gradients(both, batch)
    torch.manual_seed(5)
    reference = _branch_gradients(plain, batch)
    k = dict(zip(("rgb", "depth", "ir"), both.plugins["mwam"].mwam.grad_scale.tolist(), strict=True))
    coefficient = {"rgb": 0.5, "depth": 3.0, "ir": 2.0}
    for name, grad in edited.items():
        modality = name.split(".")[1] if name.startswith("branch.") else None
        factor = k[modality] * coefficient[modality] if modality else 1.0
        torch.testing.assert_close(grad, reference[name] * factor, rtol=1e-5, atol=1e-7, msg=name)


def test_mses_trains_a_toy_run_on_the_real_validation(toy, root, tmp_path):
    config = toy_config(root, plugins=["mses"], mwam={"intervention": "off"})
    result = Trainer(config, Registry(tmp_path), RUNTIME).run()
    entries = [e["mses"] for e in result["history"]]
    assert len(entries) == 3 and all(math.isfinite(v) for e in entries for v in e["loss"].values())
    assert next(p for p in result["plugins"] if p["name"] == "mses")["patience"] == 1, "3 epochs x 80/1500 -> 1"


# the fed losses: ir stops at epoch 2, rgb at 4, depth at 5 (patience 1) of 8 epochs: the run finishes early
FED = {
    "rgb": [1.0, 0.9, 0.95, 1.0, 1.1, 1.2, 1.3, 1.4],
    "depth": [1.0, 0.9, 0.8, 0.85, 0.9, 1.0, 1.1, 1.2],
    "ir": [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7],
}


@pytest.mark.parametrize("restore", ["branch", "model"])
def test_mses_finishes_a_toy_run_early_with_mwam_and_resumes_exactly(toy, root, tmp_path, monkeypatch, restore):
    feed(monkeypatch, FED, "loss")
    plugin = {"name": "mses", "options": {"patience": 1, "restore": restore}}
    config = toy_config(root, plugins=[plugin], mwam={"intervention": "grad"}, train={"epochs": 8})
    result = _resumes_exactly(config, tmp_path, 14)  # mid-epoch 3: ir stopped, rgb's and depth's best states kept
    assert result["finished_early"]["epoch"] == 5 and "every modality stopped" in result["finished_early"]["reason"]
    assert result["history"][-1]["mses"]["stopped"] == {"rgb": 4, "depth": 5, "ir": 2}
    assert len(result["history"]) == 6
