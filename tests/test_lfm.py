"""LFM (reproduce/methods/lfm): the loss against a hand-computed case and a transcription of the official code, the
fitted schedule's check values, the learnable step against an independent Hessian and a transcription, toy runs
(training, exact resume, MWAM), clear errors, and one forward / backward with the real resnet18_concat host."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mwam_harness import models
from mwam_harness.models import HostOutput
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.methods import LoopContext, StepData
from reproduce.methods.lfm import LFMOptions, LFMPlugin
from reproduce.methods.lfm.maths import alignment, first_parameter_hypergradient, lfm_loss, loss_terms
from reproduce.methods.lfm.plugin import first_samples
from reproduce.methods.lfm.schedule import fitted_lambdas, fitted_polynomial, learnable_rate
from reproduce.runs.config import ConfigError
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config, weights


# ---------------------------------------------------------------- transcriptions of the authors' code
def official_alignment(p, q):
    """njustkmg/NeurIPS24-LFM Crema_epoch.py l.38-45 (``Alignment``), as written."""
    p = F.softmax(p, dim=-1)
    q = F.softmax(q, dim=-1)
    m = 0.5 * p + 0.5 * q
    kl_p_m = F.kl_div(p.log(), m, reduction="batchmean")
    kl_q_m = F.kl_div(q.log(), m, reduction="batchmean")
    return 0.5 * (kl_p_m + kl_q_m)


def official_loss(o_a, o_v, y, cls_k):
    """Crema_epoch.py l.69-71 (``train_audio_video``)."""
    loss_alignment = official_alignment(o_a, o_v)
    loss_cls = nn.CrossEntropyLoss(reduction="none")(0.5 * o_v + 0.5 * o_a, y).mean()
    return 2 * (cls_k[0] * loss_cls + cls_k[1] * loss_alignment)


def official_fitted(epoch):
    """Crema_epoch.py l.47-53 (``getAlpha_Learnable_Fitted``), unclipped."""
    coef_alpha1 = [2.04623704e-01, 3.35472727e-03, 1.22989557e-04, -2.92947416e-06, 2.23835486e-08, -5.39717505e-11]
    coef_alpha2 = [7.95376296e-01, -3.35472727e-03, -1.22989557e-04, 2.92947416e-06, -2.23835486e-08, 5.39717505e-11]
    alpha1 = sum(c * (epoch**i) for i, c in enumerate(coef_alpha1))
    alpha2 = sum(c * (epoch**i) for i, c in enumerate(coef_alpha2))
    return [alpha1, alpha2]


def official_learnable(epoch, valbatch, model, alpha, lr_alpha=1e-4):
    """Crema_epoch_learnable.py l.55-97 (``getAlpha_Learnable``) with the tiny model below in place of AVClassifier
    (its ``o_a`` / ``o_v``) and without ``.cuda()``."""
    criterion = nn.CrossEntropyLoss(reduction="none")
    a, v, y = valbatch
    half_size = a.size(0) // 2
    a, v, y = a[:half_size], v[:half_size], y[:half_size]
    o_a, o_v = model.audio(a), model.visual(v)
    loss_alignment = official_alignment(o_a, o_v)
    loss_cls = criterion(0.5 * o_v + 0.5 * o_a, y).mean()
    L_total = alpha[0] * loss_cls + alpha[1] * loss_alignment
    theta_grads = torch.autograd.grad(L_total, model.parameters(), create_graph=True)
    cls_grads = torch.autograd.grad(loss_cls, model.parameters(), retain_graph=True, create_graph=True)
    hessian_vector_prod = torch.autograd.grad(
        outputs=theta_grads, inputs=model.parameters(), grad_outputs=cls_grads, retain_graph=True
    )
    with torch.no_grad():
        alpha_grad = hessian_vector_prod[0].mean().item()
        if epoch % 20 == 0 and epoch != 0:
            lr_alpha = lr_alpha / 2
        alpha[1] -= lr_alpha * alpha_grad
        alpha[1] = max(0.05, min(0.95, alpha[1]))
        alpha[0] = 1.0 - alpha[1]
    return alpha, lr_alpha


def balancebenchmark_alignment(logits):
    """GeWu-Lab/BalanceBenchmark balancemm/trainer/LFM_trainer.py (``manual_combinations`` and the loop of
    ``training_step``): the sum over pairs i < j, divided by their count."""
    combinations = [(i, j) for i in range(0, len(logits) - 1) for j in range(i + 1, len(logits))]
    loss_alignment = 0
    for i, j in combinations:
        loss_alignment += official_alignment(logits[i], logits[j])
    return loss_alignment / len(combinations)


# ---------------------------------------------------------------- a tiny two-modality host and task
class TinyHost(nn.Module):
    """Two small MLP "branches" (audio, visual), each ending in its own head; the fused logits their sum (the
    official model). The first parameter is a hidden layer's weight: a last linear layer's rows would sum the
    Hessian-vector product to zero (softmax is invariant to a shift of the logits), a trivial case."""

    modalities = ("audio", "visual")

    def __init__(self) -> None:
        super().__init__()
        self.audio = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4))
        self.visual = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 4))

    def branches(self):
        return {"audio": self.audio, "visual": self.visual}

    def forward(self, inputs, present=None):
        o_a, o_v = self.audio(inputs["audio"]), self.visual(inputs["visual"])
        return HostOutput(o_a + o_v, modality_logits={"audio": o_a, "visual": o_v})


class TinyTask:
    def __init__(self, modalities=("audio", "visual")) -> None:
        self.modalities = modalities

    def modality_logits(self, output):
        return dict(output.modality_logits or output.aux or {})

    def target(self, batch, device=None):
        return batch["label"] if device is None else batch["label"].to(device)

    def inputs(self, batch, device):
        return {m: batch[m].to(device) for m in self.modalities}


def tiny_batch(n=16, seed=3):
    g = torch.Generator().manual_seed(seed)
    return {"audio": torch.randn(n, 3, generator=g), "visual": torch.randn(n, 2, generator=g),
            "label": torch.randint(0, 4, (n,), generator=g)}  # fmt: skip


# ---------------------------------------------------------------- the loss
def test_the_loss_of_a_hand_computed_case():
    o_a = torch.tensor([[0.0, 0.0]])  # p = (1/2, 1/2)
    o_v = torch.tensor([[math.log(3.0), 0.0]])  # q = (3/4, 1/4)
    y = torch.tensor([0])
    ce, align = loss_terms([o_a, o_v], y)
    # m = (5/8, 3/8); the code's terms are KL(m || p) and KL(m || q) (F.kl_div's argument order)
    kl_m_p = 0.625 * math.log(0.625 / 0.5) + 0.375 * math.log(0.375 / 0.5)
    kl_m_q = 0.625 * math.log(0.625 / 0.75) + 0.375 * math.log(0.375 / 0.25)
    assert align.item() == pytest.approx(0.5 * (kl_m_p + kl_m_q), rel=1e-6)
    assert ce.item() == pytest.approx(math.log(1 + 3**-0.5), rel=1e-6), "CE of the mean logits (log 3 / 2, 0)"
    total = lfm_loss(ce, align, 0.3, 0.7)
    assert total.item() == pytest.approx(2 * (0.3 * ce.item() + 0.7 * align.item()), rel=1e-6)
    same = alignment([o_v, o_v.clone()])
    assert same.item() == pytest.approx(0.0, abs=1e-7), "identical predictions are aligned"


def test_the_loss_equals_the_official_formula():
    g = torch.Generator().manual_seed(0)
    o_a, o_v = torch.randn(6, 5, generator=g) * 3, torch.randn(6, 5, generator=g) * 3
    y = torch.randint(0, 5, (6,), generator=g)
    for cls_k in ([0.205, 0.795], [0.9, 0.1]):
        ce, align = loss_terms([o_a, o_v], y)
        torch.testing.assert_close(lfm_loss(ce, align, *cls_k), official_loss(o_a, o_v, y, cls_k))
    torch.testing.assert_close(alignment([o_a, o_v], "mean"), official_alignment(o_a, o_v))


def test_more_than_two_modalities_average_over_pairs_as_balancebenchmark():
    g = torch.Generator().manual_seed(1)
    logits = [torch.randn(5, 3, generator=g) for _ in range(3)]
    torch.testing.assert_close(alignment(logits, "pairwise"), balancebenchmark_alignment(logits))
    assert not torch.allclose(alignment(logits, "mean"), alignment(logits, "pairwise")), "the two forms differ"
    with pytest.raises(ValueError, match="at least two"):
        alignment(logits[:1])
    fused = torch.randn(5, 3, generator=g)
    ce, _ = loss_terms(logits, torch.tensor([0, 1, 2, 0, 1]), fused=fused)
    torch.testing.assert_close(ce, F.cross_entropy(fused, torch.tensor([0, 1, 2, 0, 1])))


# ---------------------------------------------------------------- the schedules
def test_the_fitted_schedule_gives_the_check_values_and_is_clipped():
    for epoch, expected in ((0, 0.205), (20, 0.301), (50, 0.437), (80, 0.500), (99, 0.537)):
        lambda_c, lambda_g = fitted_lambdas(epoch)
        assert lambda_c == pytest.approx(expected, abs=6e-4), epoch
        assert lambda_g == pytest.approx(1 - lambda_c)
    for epoch in range(0, 227):
        raw = official_fitted(epoch)
        assert fitted_polynomial(epoch) == pytest.approx(raw[0], abs=1e-12)
        assert raw[1] == pytest.approx(1 - raw[0], abs=1e-9), "coef_alpha2 is 1 - coef_alpha1"
        assert fitted_lambdas(epoch)[0] == pytest.approx(min(1.0, max(0.0, raw[0])), abs=1e-12)
    assert fitted_polynomial(183) > 1 and fitted_lambdas(183) == (1.0, 0.0), "clipped to [0, 1]"
    assert fitted_polynomial(250) < 0 and fitted_lambdas(250) == (0.0, 1.0)


def test_the_learnable_rate_halves_every_20_epochs_as_the_official_loop():
    lr = 1e-4
    for epoch in range(0, 90):
        if epoch % 20 == 0 and epoch != 0:
            lr = lr / 2
        assert learnable_rate(epoch, 1e-4, 20) == pytest.approx(lr, rel=1e-12), epoch


def test_the_hypergradient_is_the_first_blocks_mean_of_the_hessian_times_the_ce_gradient():
    """An independent computation: the full Hessian of the flattened parameters (torch.autograd.functional)."""
    torch.manual_seed(0)
    host, batch = TinyHost(), tiny_batch(8)
    names = [n for n, _ in host.named_parameters()]
    shapes = [p.shape for p in host.parameters()]
    sizes = [p.numel() for p in host.parameters()]

    def terms(theta):
        params, start = {}, 0
        for name, shape, size in zip(names, shapes, sizes, strict=True):
            params[name] = theta[start : start + size].view(shape)
            start += size
        output = torch.func.functional_call(host, params, ({m: batch[m] for m in ("audio", "visual")},))
        return loss_terms([output.modality_logits["audio"], output.modality_logits["visual"]], batch["label"])

    theta = torch.cat([p.detach().flatten() for p in host.parameters()])
    lambda_c, lambda_g = 0.3, 0.7
    hessian = torch.autograd.functional.hessian(lambda t: lambda_c * terms(t)[0] + lambda_g * terms(t)[1], theta)
    cls_gradient = torch.autograd.functional.jacobian(lambda t: terms(t)[0], theta)
    expected = (hessian @ cls_gradient)[: sizes[0]].mean()
    output = host({m: batch[m] for m in ("audio", "visual")})
    ce, align = loss_terms(list(output.modality_logits.values()), batch["label"])
    value = first_parameter_hypergradient(list(host.parameters()), ce, align, lambda_c, lambda_g)
    assert value == pytest.approx(expected.item(), rel=1e-4, abs=1e-9)
    assert abs(value) > 1e-6, "a non-trivial case"


@pytest.mark.parametrize("epoch", [0, 20, 41])
def test_the_learnable_step_follows_the_official_update(epoch):
    """The plug-in's update (held-out = the first 8 validation samples, eval mode) against the transcription of
    getAlpha_Learnable on a 16-sample batch (it uses half of it), from BalanceBenchmark's initial lambdas (from the
    official ones lambda_g = 0.95 would rise and be clipped: the hypergradient is negative here)."""
    torch.manual_seed(0)
    host, batch = TinyHost(), tiny_batch(16)
    lr_alpha = 50.0  # large enough that lambda_g visibly moves on this tiny model
    plugin = LFMPlugin(LFMOptions(schedule="learnable", init="balancebenchmark", lr_alpha=lr_alpha))
    val_batches = [{k: v[:5] for k, v in batch.items()}, {k: v[5:] for k, v in batch.items()}]  # 8 spans two
    ctx = LoopContext(host=host, task=TinyTask(), epoch=epoch, loaders={"val": val_batches})
    plugin.setup(ctx, {})
    assert (plugin.lambda_c, plugin.lambda_g) == (0.95, 0.05)
    lr_before = lr_alpha / 2 ** ((epoch - 1) // 20) if epoch else lr_alpha  # the official lr entering this epoch
    expected, _ = official_learnable(epoch, (batch["audio"], batch["visual"], batch["label"]), host, [0.95, 0.05],
                                     lr_before)  # fmt: skip
    plugin.before_forward(ctx, {})
    assert plugin.lambda_g == pytest.approx(expected[1], rel=1e-5, abs=1e-9)
    assert plugin.lambda_c == pytest.approx(expected[0], rel=1e-5, abs=1e-9)
    assert plugin.lambda_g > 0.05, "the step moved lambda_g"
    moved = (plugin.lambda_c, plugin.lambda_g)
    plugin.before_forward(ctx, {})
    assert (plugin.lambda_c, plugin.lambda_g) == moved, "once per epoch"
    assert host.training, "the host's mode is restored"


def test_the_learnable_step_ignores_gradient_hooks_on_the_parameters():
    """MWAM scales branch gradients through tensor hooks: they must not change the measurement."""
    values = []
    for hooked in (False, True):
        torch.manual_seed(0)
        host = TinyHost()
        if hooked:
            for p in host.audio.parameters():
                p.register_hook(lambda g: 3.0 * g)
        ctx = LoopContext(host=host, task=TinyTask(), loaders={"val": [tiny_batch(8)]})
        plugin = LFMPlugin(LFMOptions(schedule="learnable"))
        plugin.setup(ctx, {})
        plugin.before_forward(ctx, {})
        values.append(plugin.hypergradient)
    assert values[0] == values[1] != 0


def test_the_held_out_batch_is_the_first_samples_of_the_split():
    batch = tiny_batch(16)
    loader = [{k: v[:6] for k, v in batch.items()}, {k: v[6:] for k, v in batch.items()}]
    taken = first_samples(loader, 8)
    assert torch.equal(taken["audio"], batch["audio"][:8]) and torch.equal(taken["label"], batch["label"][:8])
    assert len(first_samples(loader, None)["label"]) == 1, "BalanceBenchmark: a quarter of the first batch (6 // 4)"


def test_options_are_validated_and_the_variant_fills_the_rest():
    official = LFMOptions().effective()
    assert official["schedule"] == "fitted" and official["init"] == "official" and official["cls_input"] == "mean"
    assert official["heldout_mode"] == "eval" and official["heldout_size"] == 8
    bb = LFMOptions(variant="balancebenchmark").effective()
    assert bb["schedule"] == "learnable" and bb["init"] == "balancebenchmark" and bb["cls_input"] == "fused"
    assert bb["heldout_mode"] == "train" and bb["heldout_size"] is None
    assert LFMOptions(variant="balancebenchmark", init="official").effective()["init"] == "official"
    plugin = LFMPlugin(LFMOptions(variant="balancebenchmark"))
    assert (plugin.lambda_c, plugin.lambda_g) == (0.95, 0.05)
    for bad, message in [
        ({"variant": "x"}, "variant must be one of"),
        ({"schedule": "cosine"}, "schedule must be one of"),
        ({"init": "zero"}, "init must be one of"),
        ({"cls_input": "sum"}, "cls_input must be one of"),
        ({"divergence": "js"}, "divergence must be one of"),
        ({"lr_alpha": -1.0}, "lr_alpha must be"),
        ({"lr_alpha": float("nan")}, "lr_alpha must be"),
        ({"halve_every": 0}, "halve_every must be"),
        ({"heldout_size": 0}, "heldout_size must be"),
        ({"heldout_mode": "test"}, "heldout_mode must be one of"),
        ({"heldout_split": ""}, "heldout_split must name"),
    ]:
        with pytest.raises(ValueError, match=message):
            LFMOptions(**bad)


def test_clear_errors_for_a_host_without_predictions_one_modality_and_mwams_loss(toy, root, tmp_path):
    host = TinyHost()
    plugin = LFMPlugin()
    with pytest.raises(ValueError, match="at least two modalities"):
        plugin.setup(LoopContext(host=host, task=TinyTask(("audio",))), {})
    ctx = LoopContext(host=host, task=TinyTask())
    plugin.setup(ctx, {})
    bare = HostOutput(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"lfm scores each modality by its own prediction"):
        plugin.loss(ctx, StepData({}, bare, {"label": torch.tensor([0, 1])}, None), torch.tensor(0.0), {})
    config = toy_config(root, plugins=[{"name": "lfm"}], mwam={"intervention": "hybrid"})
    with pytest.raises(ValueError, match="MWAM's 'hybrid' intervention"):
        Trainer(config, Registry(tmp_path / "r"), RUNTIME).run()
    with pytest.raises(ConfigError, match="schedule must be one of"):
        toy_config(root, plugins=[{"name": "lfm", "options": {"schedule": "x"}}])


# ---------------------------------------------------------------- toy runs
LEARNABLE = {"name": "lfm", "options": {"schedule": "learnable", "init": "balancebenchmark", "lr_alpha": 20.0}}


def test_a_toy_run_trains_with_the_fitted_schedule_and_records_the_lambdas(toy, root, tmp_path):
    config = toy_config(root, plugins=["lfm"], mwam={"intervention": "off"})
    trainer = Trainer(config, Registry(tmp_path), RUNTIME)
    result = trainer.run()
    history = result["history"]
    assert [e["lfm"]["lambda_c"] for e in history] == [fitted_lambdas(e)[0] for e in range(3)]
    assert all(math.isfinite(e["loss"]) for e in history)
    lfm = next(p for p in result["plugins"] if p["name"] == "lfm")
    assert lfm["schedule"] == "fitted" and lfm["variant"] == "official" and "lr_alpha" not in lfm


@pytest.mark.parametrize("variant", ["official", "balancebenchmark"])
def test_the_learnable_schedule_resumes_exactly(toy, root, tmp_path, variant):
    plugin = {"name": "lfm", "options": {**LEARNABLE["options"], "variant": variant}}
    config = toy_config(root, plugins=[plugin], mwam={"intervention": "off"}, train={"epochs": 3})
    whole = Trainer(config, Registry(tmp_path / "whole"), RUNTIME)
    result_whole = whole.run()
    signals = [e["lfm"]["hypergradient"] for e in result_whole["history"]]
    assert len(set(signals)) == 3 and 0 not in signals, f"one update per epoch, on that epoch's weights: {signals}"

    def stop(trainer, step):
        if step == 6:  # mid-epoch 1 (4 steps an epoch)
            trainer.request_stop()

    registry = Registry(tmp_path / "cut")
    with pytest.raises(TrainingInterruptedError):
        Trainer(config, registry, RUNTIME, callbacks=[stop]).run()
    resumed = Trainer(config, registry, RUNTIME)
    result = resumed.run(resume=True)
    assert result["history"] == result_whole["history"] and result["subsets"] == result_whole["subsets"]
    assert torch.equal(weights(resumed.host), weights(whole.host))


def test_lfm_composes_with_mwams_gradient_intervention(toy, root, tmp_path):
    config = toy_config(root, plugins=[LEARNABLE], mwam={"intervention": "grad"}, train={"epochs": 2})
    trainer = Trainer(config, Registry(tmp_path), RUNTIME)
    result = trainer.run()
    assert [p["name"] for p in result["plugins"]] == ["standard", "lfm", "mwam", "logger"]
    assert all(math.isfinite(e["loss"]) and "lfm" in e for e in result["history"])
    k = trainer.plugins["mwam"].mwam.grad_scale
    assert torch.isfinite(k).all() and len(set(k.tolist())) > 1, "MWAM measured and scaled the branches"


# ---------------------------------------------------------------- the real host
class SurfTask(TinyTask):
    def __init__(self) -> None:
        super().__init__(("rgb", "depth"))


@pytest.mark.parametrize("fusion", ["sum", "concat"])
def test_one_forward_backward_of_the_loss_with_resnet18_concat(fusion):
    torch.manual_seed(0)
    host = models.build("resnet18_concat", fusion=fusion)
    inputs = host.example_inputs(4, torch.Generator().manual_seed(1))  # 32 x 32
    batch = {**inputs, "label": torch.tensor([0, 1, 1, 0])}
    ctx = LoopContext(host=host, task=SurfTask())
    plugin = LFMPlugin()
    plugin.setup(ctx, {})
    output = host(inputs)
    loss, parts = plugin.loss(ctx, StepData(inputs, output, batch, None), output.logits.sum(), {})
    o = output.modality_logits
    torch.testing.assert_close(loss, official_loss(o["rgb"], o["depth"], batch["label"], fitted_lambdas(0)))
    assert {"loss/lfm", "loss/lfm_cls", "loss/lfm_align"} <= set(parts)
    loss.backward()
    heads = [host.heads["rgb"], host.heads["depth"]] if fusion == "sum" else [host.head]
    for module in [host.encoders["rgb"], host.encoders["depth"], *heads]:
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
        assert any(p.grad.abs().sum() > 0 for p in module.parameters())


def test_the_learnable_step_runs_on_resnet18_concat_in_eval_mode_without_touching_its_state():
    torch.manual_seed(0)
    host = models.build("resnet18_concat")
    inputs = host.example_inputs(4, torch.Generator().manual_seed(2))
    batch = {**inputs, "label": torch.tensor([0, 1, 1, 0])}
    ctx = LoopContext(host=host, task=SurfTask(), loaders={"val": [batch]})
    plugin = LFMPlugin(LFMOptions(schedule="learnable", heldout_size=4))
    plugin.setup(ctx, {})
    state = {k: v.clone() for k, v in host.state_dict().items()}
    plugin.before_forward(ctx, inputs)
    assert plugin.hypergradient is not None and math.isfinite(plugin.hypergradient) and plugin.hypergradient != 0
    assert all(torch.equal(v, state[k]) for k, v in host.state_dict().items()), "eval mode: no BatchNorm update"
    assert all(p.grad is None for p in host.parameters()), "autograd.grad leaves .grad alone"
    assert host.training
