"""CRMT-JT: the ``resnet18_crmt`` host (OWN whitening, per-class scales, unimodal logits, parameter count) and the
``crmt`` plug-in (step 1's margin regulariser, the Lipschitz estimate, step 2's certified-bound objective on the
scales alone, the switch between them, exact resume, composition with MWAM).

The ``official_*`` functions transcribe the authors' code (GeWu-Lab/Certifiable-Robust-Multi-modal-Training at
5c17d92) independently of ``reproduce/methods/crmt``; each cites its file and lines.
"""

import math

import pytest
import torch
from torch import nn

from mwam_harness import models
from mwam_harness.models.resnet18_crmt import ResNet18CRMT, own_whiten
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.methods.crmt import CRMTOptions, CRMTPlugin, maths
from reproduce.runs.config import ConfigError
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config, weights

PAIR = ("rgb", "depth")


# ---------------------------------------------------------------- the authors' formulas, transcribed
def official_own(weight, norm_groups):
    """``models/fusion_model.py`` l.32-43 (``OWNNorm.forward``): centre each group's rows over the inputs, then
    multiply by U diag(eig^-1/2) U^T from the SVD of the group's Gram matrix (the random buffer it fills first is
    overwritten)."""
    groups = weight.view(norm_groups, weight.shape[0] // norm_groups, -1)
    centred = groups - groups.mean(dim=-1, keepdim=True)
    gram = centred @ centred.transpose(1, 2)
    whitening = torch.empty_like(gram)
    for i in range(norm_groups):
        u, eig, _ = gram[i].svd()
        whitening[i] = u @ eig.rsqrt().diag() @ u.t()
    return (whitening @ centred).view_as(weight)


def official_margin_loss(outs, labels, rho):
    """``train.py`` l.69-74: sum over modalities of ``sum(exp(out), 1) * exp(-out[rows, labels]) - 1``, then
    ``mean(log(. + 1e-5)) * rho``."""
    rows = torch.arange(labels.shape[0])
    total = 0.0
    for out in outs:
        total = total + (torch.sum(torch.exp(out), dim=1) * torch.exp(-out[rows, labels]) - 1)
    return torch.mean(torch.log(total + 1e-5)) * rho


def official_step2_loss(outs, out, a, lip, bias, labels):
    """``train.py`` l.277-290 (two modalities): the label masked to -inf, the runner-up by max, then
    ``-mean((numer0 + numer1 + beta) / sqrt(denom0^2 + denom1^2))``."""
    batch = labels.shape[0]
    mask = torch.ones(out.shape, dtype=torch.bool)
    rows = torch.arange(batch)
    mask[rows, labels] = False
    masked_out = out.masked_fill(mask == False, float("-inf"))  # noqa: E712 (as written there)
    _, second = masked_out.max(dim=1)
    b = bias.detach()
    beta = b[labels] - b[second]
    denom, numer = [], []
    for m in range(2):
        denom.append(a[m][labels] * lip[m][labels] + a[m][second] * lip[m][second])
        numer.append(a[m][labels] * outs[m][rows, labels].detach() - a[m][second] * outs[m][rows, second].detach())
    return -torch.mean((numer[0] + numer[1] + beta) / torch.sqrt(denom[0] ** 2 + denom[1] ** 2))


def official_get_lip(model_forward, batches, num_class, zero_every_grad=False):
    """``train.py`` l.105-126 (``get_lip``), two modalities [first, second]: one ``backward`` of the summed class
    logit per class, then per modality the max per-sample gradient norm -- with ``audio.grad`` (the second input)
    the only gradient zeroed, right after the first modality's is read. ``zero_every_grad``: the corrected loop."""
    lip = torch.zeros(2, num_class)
    for first, second in batches:
        data = [first.clone(), second.clone()]
        batch_size = first.shape[0]
        for x in data:
            x.requires_grad = True
        out = model_forward(data[0], data[1])
        for t_cls in range(num_class):
            torch.sum(out[:, t_cls]).backward(retain_graph=True)
            for modality in range(2):
                grads = data[modality].grad.detach().clone()
                if zero_every_grad:
                    data[modality].grad.data.zero_()
                else:
                    data[1].grad.data.zero_()
                norm_grads = torch.norm(grads.view(batch_size, -1), dim=1)
                lip[modality, t_cls] = torch.maximum(torch.max(norm_grads), lip[modality, t_cls])
    return lip


# ---------------------------------------------------------------- the host
def tiny_host(classes=2, modalities=PAIR, **options):
    torch.manual_seed(0)
    return ResNet18CRMT(modalities=modalities, num_classes=classes, encoder="tiny", **options)


def test_own_whitening_gives_orthonormal_rows_and_matches_the_official_whitening():
    torch.manual_seed(0)
    weight = torch.randn(6, 16, dtype=torch.float64)
    for groups in (6, 3, 2, 1):  # 6: the official norm_groups = n_classes (one row a group)
        whitened = own_whiten(weight, groups)
        torch.testing.assert_close(whitened, official_own(weight, groups), rtol=1e-9, atol=1e-9)
        blocks = whitened.view(groups, 6 // groups, 16)
        gram = blocks @ blocks.transpose(1, 2)
        torch.testing.assert_close(gram, torch.eye(6 // groups, dtype=gram.dtype).expand_as(gram))
        torch.testing.assert_close(blocks.sum(-1), torch.zeros(groups, 6 // groups, dtype=gram.dtype))
    single = weight[:1].float()
    centred = single - single.mean()
    torch.testing.assert_close(own_whiten(single, 1), centred / centred.norm(), msg="one row: centred, unit norm")
    with pytest.raises(ValueError, match="dividing"):
        own_whiten(weight, 4)


def test_the_host_fuses_scaled_whitened_unimodal_logits_and_zeroes_an_absent_modality():
    host = tiny_host(classes=3, norm_groups=3).eval()
    with torch.no_grad():
        for a in host.scale_parameters().values():
            a.copy_(torch.tensor([0.1, 0.5, -0.3]))
    scales = host.scale_parameters()
    assert set(scales) == set(PAIR) and all(torch.equal(host.scales[m], scales[m]) for m in PAIR)
    inputs = host.example_inputs(4, torch.Generator().manual_seed(1))
    present = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=torch.bool)
    with torch.no_grad():
        out = host(inputs, present)
        features = host.encode(inputs)
    width = host.feature_dim
    expected = host.head.bias.clone()
    for i, m in enumerate(PAIR):
        block = official_own(host.head.weight[:, i * width : (i + 1) * width], 3)
        kept = features[m] * present[:, i, None]
        z = kept @ block.T
        torch.testing.assert_close(out.modality_logits[m], z, msg="unimodal = W~ phi, no bias, no scale")
        expected = expected + scales[m] * z
    torch.testing.assert_close(out.logits, expected)
    assert torch.equal(out.modality_logits["depth"][1], torch.zeros(3)) and out.aux is None
    rows = torch.cat(list(host.whitened_weights().values()))
    torch.testing.assert_close(rows.norm(dim=1), torch.ones(6))
    assert host.bias is host.head.bias
    assert [name for name, _ in host.branches().items()] == list(PAIR)


def test_host_options_are_checked_and_the_parameter_count_is_pinned():
    for bad in ({"encoder": "vit"}, {"init": "xavier"}, {"norm_groups": 3}, {"num_classes": 0}):
        with pytest.raises(ValueError):
            ResNet18CRMT(**bad)
    torch.manual_seed(0)
    default = models.build("resnet18_crmt")  # two 3-channel modalities, 2 classes (the module docstring's count)
    assert sum(p.numel() for p in default.parameters()) == 2 * 11_176_512 + 2_050 + 4 == 22_355_078
    assert models.model_info("resnet18_crmt").parameters is None
    bn = [m.weight for m in default.encoders["rgb"].modules() if isinstance(m, nn.BatchNorm2d)]
    assert not torch.equal(bn[0], torch.ones_like(bn[0])), "init crmt: BatchNorm weights N(1, 0.02) (official)"
    assert torch.equal(default.scales["rgb"], torch.full((2,), 0.1))


# ---------------------------------------------------------------- step 1's margin regulariser
def test_the_margin_regulariser_matches_the_official_formula_and_a_hand_computed_case():
    torch.manual_seed(0)
    outs = [torch.randn(8, 5), 2 * torch.randn(8, 5)]
    labels = torch.randint(0, 5, (8,))
    reference = official_margin_loss([o.double() for o in outs], labels, rho=2.0)
    torch.testing.assert_close(2.0 * maths.margin_regulariser(outs, labels).double(), reference, rtol=1e-5, atol=1e-6)
    # two modalities, two classes: z1 = (1, 0), z2 = (0, 2); label 0 then label 1
    z1, z2 = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, 2.0]])
    hand = (math.log(math.exp(-1) + math.exp(2) + 1e-5) + math.log(math.exp(1) + math.exp(-2) + 1e-5)) / 2
    assert maths.margin_regulariser([z1, z2], torch.tensor([0, 1])).item() == pytest.approx(hand, rel=1e-6)
    big = [torch.tensor([[100.0, 99.0]]), torch.tensor([[100.0, 98.0]])]  # the official form overflows (inf / inf)
    value = maths.margin_regulariser(big, torch.tensor([0]))
    assert value.item() == pytest.approx(math.log(math.exp(-1) + math.exp(-2) + 1e-5), rel=1e-6)


# ---------------------------------------------------------------- the certified bound and step 2's objective
def test_the_step2_objective_matches_the_official_loss_and_its_gradient():
    torch.manual_seed(1)
    outs = [torch.randn(6, 4), torch.randn(6, 4)]
    a = [torch.rand(4, requires_grad=True), torch.rand(4, requires_grad=True)]
    bias, lip, labels = torch.randn(4), torch.rand(2, 4) + 0.1, torch.randint(0, 4, (6,))
    out = a[0] * outs[0] + a[1] * outs[1] + bias
    reference = official_step2_loss(outs, out, a, lip, bias, labels)
    expected_grads = torch.autograd.grad(reference, a)
    ours = maths.scale_objective(outs, out, a, bias, lip, labels)
    torch.testing.assert_close(ours, reference)
    for got, expected in zip(torch.autograd.grad(ours, a), expected_grads, strict=True):
        torch.testing.assert_close(got, expected)


def test_the_certified_radius_by_hand_and_against_the_worst_perturbation_of_a_linear_model():
    # two classes: numer = (1*2 - 1*0) + (0.5*1 - 2*1) + 0.1 = 0.6; denom = sqrt((1+1)^2 + (0.5*2 + 2*1)^2) = sqrt(13)
    unimodal = [torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]])]
    scales = [torch.tensor([1.0, 1.0]), torch.tensor([0.5, 2.0])]
    bias, lip = torch.tensor([0.1, 0.0]), torch.tensor([[1.0, 1.0], [2.0, 1.0]])
    radius = maths.certified_radius(unimodal, scales, bias, lip, torch.tensor([0]))
    assert radius.item() == pytest.approx(0.6 / math.sqrt(13), rel=1e-6)
    # a linear model z^m = V_m x_m: tau^m_k = ||V_m[k]|| exactly; the worst perturbation of radius 0.999 r against
    # every class keeps the prediction, and the radius is at most the bound against the runner-up
    torch.manual_seed(2)
    v = [torch.randn(3, 5), torch.randn(3, 5)]
    a = [torch.rand(3) + 0.5, torch.rand(3) + 0.5]
    b, tau = torch.randn(3), torch.stack([vm.norm(dim=1) for vm in v])
    x = [torch.randn(16, 5), torch.randn(16, 5)]

    def fused(inputs):
        return sum(am * (xm @ vm.T) for am, xm, vm in zip(a, inputs, v, strict=True)) + b

    labels = fused(x).argmax(1)
    z = [xm @ vm.T for xm, vm in zip(x, v, strict=True)]
    radius = maths.certified_radius(z, a, b, tau, labels)
    assert (radius > 0).all()
    assert (radius <= maths.bound_against(z, a, b, tau, labels, maths.runner_up(fused(x), labels)) + 1e-6).all()
    for k in range(3):
        direction = [-(am[labels, None] * vm[labels] - am[k] * vm[k]) for am, vm in zip(a, v, strict=True)]
        norm = torch.sqrt(sum(d.square().sum(1) for d in direction)).clamp_min(1e-12)
        moved = [xm + 0.999 * radius[:, None] * d / norm[:, None] for xm, d in zip(x, direction, strict=True)]
        assert torch.equal(fused(moved).argmax(1), labels)


# ---------------------------------------------------------------- the Lipschitz estimate
def linear_host(classes=3):
    """The tiny host with linear encoders ``phi_m(x) = V_m flatten(x)``: every gradient is known in closed form."""
    host = tiny_host(classes=classes)
    for m in PAIR:
        host.encoders[m] = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, host.feature_dim, bias=False))
    with torch.no_grad():
        host.scales["rgb"].copy_(torch.tensor([0.1, 0.2, 0.3]))
        host.scales["depth"].copy_(torch.tensor([0.5, -0.4, 0.7]))
    return host


def test_the_lipschitz_estimate_of_a_linear_encoder_is_its_closed_form_and_the_official_bug_is_reproduced():
    host = linear_host()
    g = torch.Generator().manual_seed(3)
    batches = [{m: torch.randn(5, 3, 4, 4, generator=g) for m in PAIR} for _ in range(2)]
    with torch.no_grad():
        rows = {m: host.whitened_weights()[m] @ host.encoders[m][1].weight for m in PAIR}  # d z^m_k / d x_m
        a = host.scale_parameters()
    unimodal = torch.stack([rows[m].norm(dim=1) for m in PAIR])
    fused = torch.stack([(a[m][:, None] * rows[m]).norm(dim=1) for m in PAIR])
    host.train()
    torch.testing.assert_close(maths.lipschitz_constants(host, batches, 3, of="unimodal"), unimodal)
    torch.testing.assert_close(maths.lipschitz_constants(host, batches, 3, of="fused"), fused)
    assert host.training and all(p.grad is None for p in host.parameters()), "mode restored, no parameter grads"
    bug = maths.lipschitz_constants(host, batches, 3, rule="official_bug")
    cumulative = (a["rgb"][:, None] * rows["rgb"]).cumsum(0).norm(dim=1)
    torch.testing.assert_close(bug, torch.stack([cumulative, torch.zeros(3)]))

    def forward(first, second):
        return host({"rgb": first, "depth": second}).logits

    pairs = [(b["rgb"], b["depth"]) for b in batches]
    host.eval()
    torch.testing.assert_close(bug, official_get_lip(forward, pairs, 3))
    torch.testing.assert_close(fused, official_get_lip(forward, pairs, 3, zero_every_grad=True))


def test_the_lipschitz_estimate_of_a_convolutional_encoder_is_per_sample_in_eval_mode():
    host = tiny_host(classes=2)
    g = torch.Generator().manual_seed(4)
    batches = [{m: torch.randn(4, 3, 16, 16, generator=g) for m in PAIR} for _ in range(2)]
    ours = maths.lipschitz_constants(host, batches, 2, rule="fixed")
    host.eval()

    def forward(first, second):
        return host({"rgb": first, "depth": second}).logits

    pairs = [(b["rgb"], b["depth"]) for b in batches]
    torch.testing.assert_close(ours, official_get_lip(forward, pairs, 2, zero_every_grad=True))
    torch.testing.assert_close(maths.lipschitz_constants(host, batches, 2, rule="official_bug"),
                               official_get_lip(forward, pairs, 2))  # fmt: skip


# ---------------------------------------------------------------- the plug-in in runs
@pytest.fixture
def toy_root(toy, root):
    return root


def crmt_config(root, epochs=4, crmt=None, mwam="off", train=None, **sections):
    host = {"name": "resnet18_crmt", "options": {"modalities": list(PAIR), "encoder": "tiny"}}
    plugin = {"name": "crmt", "options": {"scale_epochs": 2, **(crmt or {})}}
    return toy_config(
        root,
        host=host,
        data={"modalities": list(PAIR)},
        plugins=[plugin],
        mwam={"intervention": mwam},
        train={"epochs": epochs, **(train or {})},
        **sections,
    )


def test_options_are_validated_and_a_host_without_scales_is_refused(tmp_path, toy_root):
    for bad in ({"rho": -1}, {"scale_epochs": -1}, {"scale_lr_factor": 0}, {"scale_momentum": 1.0},
                {"lipschitz": "buggy"}, {"lipschitz_of": "both"}, {"reset_scale_optimizer": "yes"}):  # fmt: skip
        with pytest.raises(ValueError):
            CRMTOptions(**bad)
        with pytest.raises(ConfigError):
            crmt_config(toy_root, crmt=bad)
    assert CRMTOptions().rho == 2.0 and CRMTOptions().lipschitz == "fixed"
    toy = toy_config(toy_root, plugins=[{"name": "crmt"}], mwam={"intervention": "off"})
    with pytest.raises(ValueError, match="needs the host resnet18_crmt"):
        Trainer(toy, Registry(tmp_path / "toy"), RUNTIME).setup()
    too_long = crmt_config(toy_root, crmt={"scale_epochs": 4})
    with pytest.raises(ValueError, match="no step-1 epoch"):
        Trainer(too_long, Registry(tmp_path / "long"), RUNTIME).setup()
    one = CRMTPlugin()
    with pytest.raises(ValueError, match="at least 2 modalities"):
        one.setup(_loop_context(tiny_host(modalities=("rgb",))), {})


def _loop_context(host):
    from reproduce.methods import LoopContext

    return LoopContext(host=host, epochs=4, optimizer=torch.optim.SGD(host.parameters(), lr=0.5))


def test_step2s_optimiser_is_rebuilt_every_epoch_as_the_official_loop_unless_told_not_to():
    """The official ``the_second_step`` builds its SGD per epoch (``train.py`` l.268): momentum restarts."""
    host = tiny_host()
    for reset in (True, False):
        plugin = CRMTPlugin(CRMTOptions(reset_scale_optimizer=reset))
        ctx = _loop_context(host)
        plugin.setup(ctx, {})
        assert (plugin.scale_epochs, plugin.switch_epoch) == (1, 3), "default: epochs // 4"
        ctx.epoch = 2
        first = plugin._scale_optimizer(ctx)
        assert plugin._scale_optimizer(ctx) is first
        assert (
            first.param_groups[0]["lr"] == pytest.approx(0.03 * 0.5) and first.param_groups[0]["weight_decay"] == 1e-2
        )
        ctx.epoch = 3
        assert (plugin._scale_optimizer(ctx) is not first) == reset


def test_step2_changes_only_the_scales_even_with_mwam_and_weight_decay(tmp_path, toy_root):
    config = crmt_config(toy_root, mwam="grad")
    trainer = Trainer(config, Registry(tmp_path), RUNTIME)
    trainer.setup()
    plugin = trainer.plugins["crmt"]
    plugin._switch(trainer.ctx)
    assert plugin.phase == 2 and plugin.lipschitz.shape == (2, 2) and (plugin.lipschitz > 0).all()
    trainer.host.train()
    before = {n: p.detach().clone() for n, p in trainer.host.named_parameters()}
    buffers = {n: b.clone() for n, b in trainer.host.named_buffers()}
    captured = {}
    for m, a in trainer.host.scale_parameters().items():
        a.register_hook(lambda grad, m=m: captured.__setitem__(m, grad.clone()))
    parts = trainer.train_step(next(iter(trainer.train_loader)))
    assert "crmt/bound" in parts and torch.isfinite(parts["crmt/bound"])
    lr, wd = 0.03 * config.optim.lr, 1e-2
    for name, p in trainer.host.named_parameters():
        if name.startswith("scales."):
            a0 = before[name]
            expected = a0 - lr * (captured[name.split(".")[1]] + wd * a0)  # SGD's first step (momentum buffer = d_p)
            torch.testing.assert_close(p.detach(), expected)
            assert not torch.equal(p, a0), name
        else:
            assert torch.equal(p, before[name]), f"{name} changed in step 2"
        assert p.grad is None
    moved = [
        n for n, b in trainer.host.named_buffers() if n.endswith("running_mean") and not torch.equal(b, buffers[n])
    ]
    assert moved, "BatchNorm runs in train mode in step 2 (official), its running statistics adapt"


def test_a_tiny_run_trains_switches_to_step2_and_finishes_with_finite_losses(tmp_path, toy_root):
    config = crmt_config(toy_root)
    trainer = Trainer(config, Registry(tmp_path), RUNTIME)
    result = trainer.run()
    history = result["history"]
    assert [e["crmt"]["step"] for e in history] == [1, 1, 2, 2]
    assert "lipschitz" in history[1]["crmt"] and set(history[1]["crmt"]["lipschitz"]) == set(PAIR)
    assert all(math.isfinite(e["loss"]) for e in history)
    scale_means = [e["crmt"]["scale_mean"]["rgb"] for e in history]
    assert scale_means[2] != scale_means[1] and scale_means[3] != scale_means[2], "step 2 moves the scales"
    entry = next(p for p in result["plugins"] if p["name"] == "crmt")
    assert entry["scale_epochs"] == 2 and entry["step1_epochs"] == 2 and entry["lipschitz"] == "fixed"
    assert entry["lipschitz_constants"] == history[1]["crmt"]["lipschitz"]
    values = {}
    trainer.plugins["crmt"].on_log(trainer.ctx, values)
    assert values["crmt/step"] == 2.0 and "crmt/bound" in values and "crmt/scale_mean/depth" in values


def test_it_composes_with_mwam_and_the_default_scale_epochs_is_a_quarter(tmp_path, toy_root):
    config = crmt_config(toy_root, crmt={"scale_epochs": None, "lipschitz": "official_bug"}, mwam="grad")
    result = Trainer(config, Registry(tmp_path), RUNTIME).run()
    assert [p["name"] for p in result["plugins"]] == ["standard", "crmt", "mwam", "logger"]
    assert [e["crmt"]["step"] for e in result["history"]] == [1, 1, 1, 2], "4 epochs // 4 = 1 step-2 epoch"
    assert result["history"][2]["crmt"]["lipschitz"]["depth"] == [0.0, 0.0], "the official bug: second modality 0"
    assert all(math.isfinite(e["loss"]) for e in result["history"])


def test_a_run_resumes_exactly_across_the_switch(tmp_path, toy_root):
    config = crmt_config(toy_root, epochs=4)
    whole = Trainer(config, Registry(tmp_path / "whole"), RUNTIME)
    result_whole = whole.run()
    for stop_at in (6, 11):  # mid-epoch 1 (step 1, the switch ahead) and mid-epoch 2 (step 2, its optimiser's state)

        def stop(trainer, step, stop_at=stop_at):
            if step == stop_at:
                trainer.request_stop()

        registry = Registry(tmp_path / f"cut{stop_at}")
        with pytest.raises(TrainingInterruptedError):
            Trainer(config, registry, RUNTIME, callbacks=[stop]).run()
        resumed = Trainer(config, registry, RUNTIME)
        result = resumed.run(resume=True)
        assert torch.equal(weights(resumed.host), weights(whole.host)), stop_at
        assert result["history"] == result_whole["history"] and result["subsets"] == result_whole["subsets"]
        assert torch.equal(resumed.plugins["crmt"].lipschitz, whole.plugins["crmt"].lipschitz)
