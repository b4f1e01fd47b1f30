import copy

import pytest
import torch
import torch.nn.functional as F

from mwam import MWAM, MWAMConfig, frm, weight_fn
from tests.toy_host import ToyHost, toy_batch


def loss_of(host, inputs, labels):
    fused, _ = host(inputs)
    return F.cross_entropy(fused, labels)


def grads(module):
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


def branch_of(name):
    return name.split(".")[1] if name.startswith("encoders.") else None


@pytest.fixture
def labels():
    return torch.tensor([0, 1, 0, 1])


def test_gradient_editing_scales_exactly_the_named_branches_by_k(labels):
    torch.manual_seed(0)
    host = ToyHost()
    plain = copy.deepcopy(host)
    mwam = MWAM.for_host(host)
    x = toy_batch()
    k = mwam.step(x)
    assert k[0] > 1.0 > k[1], "the smooth depth must get the smaller weight"
    loss_of(host, x, labels).backward()
    loss_of(plain, x, labels).backward()
    edited, reference = grads(host), grads(plain)
    assert edited.keys() == reference.keys()
    for name, g in edited.items():
        modality = branch_of(name)
        if modality is None:
            assert torch.equal(g, reference[name]), f"{name} is not a branch parameter and must not change"
        else:
            factor = k[host.modalities.index(modality)]
            torch.testing.assert_close(g, reference[name] * factor, rtol=1e-6, atol=0)


def test_weights_follow_paper_eq5_eq6(labels):
    mwam = MWAM(modalities=("rgb", "depth", "ir"), intervention="none")
    x = toy_batch(modalities=("rgb", "depth", "ir"))
    k = mwam.step(x)
    f = torch.stack([frm(x[m]) for m in ("rgb", "depth", "ir")])
    expected = weight_fn(f / (f.mean() + 1e-6))
    torch.testing.assert_close(k.double(), expected, rtol=1e-6, atol=1e-7)
    record = mwam.record()
    torch.testing.assert_close(record.frm, f)
    assert record.step == 1 and record.present.all()
    logged = record.log_dict()
    assert set(logged) == {
        f"mwam/{k}/{m}" for k in ("frm", "bank", "T", "K", "present") for m in ("rgb", "depth", "ir")
    }


def test_released_code_preset_matches_authors_weight_rule():
    mwam = MWAM(modalities=("rgb", "depth", "ir"), intervention="none", config=MWAMConfig.released_code())
    bank = None
    for seed in range(3):
        x = toy_batch(seed=seed, modalities=("rgb", "depth", "ir"))
        f = torch.stack([frm(x[m]) for m in ("rgb", "depth", "ir")])
        bank = 0.5 * f if bank is None else 0.5 * bank + 0.5 * f  # soft start, then Eq. 2
        expected = 1.5 - torch.sigmoid(10.0 * (f / (bank.mean() + 1e-6) - 1.0))
        torch.testing.assert_close(mwam.step(x).double(), expected, rtol=1e-6, atol=1e-7)


def test_gradient_accumulation_scales_each_micro_batch_by_its_own_k():
    torch.manual_seed(0)
    host = ToyHost()
    plain = copy.deepcopy(host)
    mwam = MWAM.for_host(host)
    labels = torch.tensor([0, 1, 0, 1])
    micro = [toy_batch(seed=1), toy_batch(seed=2)]
    micro[1]["depth"] = torch.randn(4, 3, 16, 16)  # the second micro-batch has different weights
    ks = []
    for x in micro:
        ks.append(mwam.step(x))
        loss_of(host, x, labels).backward()
    assert not torch.allclose(ks[0], ks[1])
    per_micro = []
    for x in micro:
        plain.zero_grad()
        loss_of(plain, x, labels).backward()
        per_micro.append(grads(plain))
    for name, g in grads(host).items():
        modality = branch_of(name)
        if modality is None:
            expected = per_micro[0][name] + per_micro[1][name]
        else:
            i = host.modalities.index(modality)
            expected = ks[0][i] * per_micro[0][name] + ks[1][i] * per_micro[1][name]
        torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-7)


def test_amp_grad_scaler_and_autocast(labels):
    torch.manual_seed(0)
    host = ToyHost()
    plain = copy.deepcopy(host)
    mwam = MWAM.for_host(host)
    x = toy_batch()
    results = []
    for model, use_mwam in ((host, True), (plain, False)):
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            k = mwam.step(x) if use_mwam else None  # FRM is computed in float32 inside autocast
            loss = loss_of(model, x, labels)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        results.append((grads(model), k))
    (edited, k), (reference, _) = results
    assert k.dtype == torch.float32
    torch.testing.assert_close(k, MWAM.for_host(ToyHost(), intervention="none").step(x))
    for name, g in edited.items():
        modality = branch_of(name)
        factor = 1.0 if modality is None else k[host.modalities.index(modality)]
        torch.testing.assert_close(g, reference[name] * factor, rtol=1e-5, atol=1e-8)


def test_loss_weighting_is_eq7(labels):
    host = ToyHost(aux_heads=True)
    mwam = MWAM.for_host(host, intervention="loss")
    x = toy_batch()
    k = mwam.step(x)
    fused, aux = host(x)
    fused_loss = F.cross_entropy(fused, labels)
    aux_losses = {m: F.cross_entropy(aux[m], labels) for m in host.modalities}
    total = mwam.weighted_loss(fused_loss, aux_losses)
    expected = fused_loss + sum(k[i] * aux_losses[m] for i, m in enumerate(host.modalities))
    torch.testing.assert_close(total, expected)
    total.backward()  # K carries no gradient, the heads do
    assert host.aux["rgb"].weight.grad is not None
    assert mwam.weight.grad is None and not mwam.weight.requires_grad
    with pytest.raises(ValueError, match="unknown modalities"):
        mwam.weighted_loss(fused_loss, {"thermal": fused_loss})


def test_loss_only_mode_leaves_gradients_alone(labels):
    host = ToyHost()
    plain = copy.deepcopy(host)
    mwam = MWAM.for_host(host, intervention="loss")
    x = toy_batch()
    mwam.step(x)
    loss_of(host, x, labels).backward()
    loss_of(plain, x, labels).backward()
    for name, g in grads(host).items():
        assert torch.equal(g, grads(plain)[name])


def test_hybrid_edits_gradients_and_weights_losses(labels):
    host = ToyHost(aux_heads=True)
    plain = copy.deepcopy(host)
    mwam = MWAM.for_host(host, intervention="hybrid")
    x = toy_batch()
    k = mwam.step(x)
    fused, aux = host(x)
    total = mwam.weighted_loss(F.cross_entropy(fused, labels), {m: F.cross_entropy(aux[m], labels) for m in aux})
    total.backward()
    pf, paux = plain(x)
    (
        F.cross_entropy(pf, labels)
        + sum(k[i] * F.cross_entropy(paux[m], labels) for i, m in enumerate(plain.modalities))
    ).backward()
    reference = grads(plain)
    for name, g in grads(host).items():
        modality = branch_of(name)
        factor = 1.0 if modality is None else k[host.modalities.index(modality)]
        torch.testing.assert_close(g, reference[name] * factor, rtol=1e-5, atol=1e-8)


def test_grad_mode_refuses_loss_weighting():
    mwam = MWAM.for_host(ToyHost())
    with pytest.raises(ValueError, match="loss-level intervention"):
        mwam.weighted_loss(torch.tensor(1.0), {"rgb": torch.tensor(1.0)})


@pytest.mark.parametrize("absent", ["zeros", "fill", "mask"])
def test_absent_modality_gets_defined_weight_and_keeps_its_bank(absent):
    mwam = MWAM(modalities=("rgb", "depth", "ir"), intervention="none", absent_weight=1.0)
    x = toy_batch(modalities=("rgb", "depth", "ir"))
    mwam.step(x)
    bank_before = mwam.bank.value.clone()
    y = toy_batch(seed=5, modalities=("rgb", "depth", "ir"))
    present = None
    if absent == "zeros":
        y["depth"] = torch.zeros_like(y["depth"])
    elif absent == "fill":
        y["depth"] = torch.full_like(y["depth"], -127.5 / 128)  # a zero image after (x - 127.5) / 128
    else:
        present = torch.ones(4, 3, dtype=torch.bool)
        present[:, 1] = False
    k = mwam.step(y, present=present)
    assert torch.isfinite(k).all() and k[1].item() == 1.0
    assert mwam.bank.value[1] == bank_before[1]
    assert mwam.record().present.tolist() == [True, False, True]
    # the absent modality's bank value stands in for it in the mean (Eq. 6, Fig. 2b)
    f = torch.stack([frm(y["rgb"]), mwam.bank.value[1], frm(y["ir"])])
    expected = weight_fn(f / (f.mean() + 1e-6))
    torch.testing.assert_close(k[[0, 2]].double(), expected[[0, 2]], rtol=1e-6, atol=1e-7)


def test_partly_missing_modality_is_rescaled_to_the_batch():
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    x = toy_batch()
    present = torch.tensor([[True, True], [True, False], [True, True], [True, False]])
    mwam.step(x, present=present)
    per_sample = frm(x["depth"], reduction="none")
    assert mwam.record().frm[1].item() == pytest.approx((per_sample[0] + per_sample[2]).item() * 2, rel=1e-12)
    assert mwam.record().frm[0].item() == pytest.approx(frm(x["rgb"]).item(), rel=1e-12)


def test_nan_input_never_reaches_the_weights():
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    mwam.step(toy_batch())
    x = toy_batch(seed=1)
    x["depth"][0, 0, 0, 0] = float("nan")
    k = mwam.step(x)
    assert torch.isfinite(k).all() and k[1].item() == 1.0


def test_batch_of_one_and_thin_images():
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    k = mwam.step({m: v[:1] for m, v in toy_batch().items()})
    assert torch.isfinite(k).all()
    with pytest.warns(UserWarning, match="smaller than one"):
        k = mwam.step({"rgb": torch.randn(2, 3, 1, 40), "depth": torch.randn(2, 3, 1, 40)})
    assert torch.isfinite(k).all()


def test_state_round_trip_continues_identically():
    first = MWAM(modalities=("rgb", "depth"), intervention="none", soft_start=True)
    for seed in range(3):
        first.step(toy_batch(seed=seed))
    second = MWAM(modalities=("rgb", "depth"), intervention="none", soft_start=True)
    second.load_state_dict(first.state_dict())
    assert second.record().step == 3
    for seed in range(3, 6):
        torch.testing.assert_close(first.step(toy_batch(seed=seed)), second.step(toy_batch(seed=seed)), rtol=0, atol=0)
    torch.testing.assert_close(first.bank.value, second.bank.value, rtol=0, atol=0)
    other = MWAM(modalities=("depth", "rgb"), intervention="none")
    with pytest.raises(ValueError, match="saved for modalities"):
        other.load_state_dict(first.state_dict())


def test_state_survives_torch_save(tmp_path):
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    mwam.step(toy_batch())
    torch.save(mwam.state_dict(), tmp_path / "mwam.pt")
    restored = MWAM(modalities=("rgb", "depth"), intervention="none")
    restored.load_state_dict(torch.load(tmp_path / "mwam.pt", weights_only=False))
    torch.testing.assert_close(restored.bank.value, mwam.bank.value)


def test_step_never_synchronises_with_the_host():
    """On the meta device any read of a tensor value (.item(), bool(), data-dependent shapes) raises."""
    mwam = MWAM(modalities=("rgb", "depth", "ir"), intervention="none")
    x = {m: torch.empty(4, 3, 32, 32, device="meta") for m in ("rgb", "depth", "ir")}
    k = mwam.step(x, present=torch.ones(4, 3, dtype=torch.bool, device="meta"))
    assert k.device.type == "meta" and k.shape == (3,)


def test_remove_hooks_stops_editing(labels):
    host = ToyHost()
    plain = copy.deepcopy(host)
    mwam = MWAM.for_host(host)
    mwam.step(toy_batch())
    mwam.remove_hooks()
    loss_of(host, toy_batch(), labels).backward()
    loss_of(plain, toy_batch(), labels).backward()
    for name, g in grads(host).items():
        assert torch.equal(g, grads(plain)[name])


def test_add_hooks_restores_editing_once(labels):
    host = ToyHost()
    hooked, plain = copy.deepcopy(host), copy.deepcopy(host)
    mwam, reference = MWAM.for_host(host), MWAM.for_host(hooked)
    for m in (mwam, reference):
        m.step(toy_batch())
    mwam.remove_hooks()
    mwam.add_hooks()
    mwam.add_hooks()  # already on: K is applied once, not twice
    loss_of(host, toy_batch(), labels).backward()
    loss_of(hooked, toy_batch(), labels).backward()
    loss_of(plain, toy_batch(), labels).backward()
    assert not torch.allclose(mwam.grad_scale, torch.ones(2))  # K != 1: the hooks change the gradients
    assert any(not torch.equal(g, grads(plain)[name]) for name, g in grads(host).items())
    assert len(mwam._hooks) == len(reference._hooks)
    for name, g in grads(host).items():
        assert torch.equal(g, grads(hooked)[name])
    with pytest.raises(ValueError, match="needs branches"):
        MWAM(modalities=("rgb", "depth"), intervention="none").add_hooks()


def test_parameter_lists_are_accepted_as_branches():
    host = ToyHost()
    mwam = MWAM(branches={"rgb": list(host.encoders["rgb"].parameters()), "depth": host.encoders["depth"][0].weight})
    assert mwam.modalities == ("rgb", "depth")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda h: MWAM(), "needs the modality names"),
        (lambda h: MWAM(modalities="rgb", intervention="none"), "single string"),
        (lambda h: MWAM(modalities=("rgb", "rgb"), intervention="none"), "distinct"),
        (lambda h: MWAM(modalities=("rgb", "depth")), "pass branches"),
        (lambda h: MWAM(modalities=("rgb", "ir"), branches=h.branches()), "exactly the modalities"),
        (lambda h: MWAM(branches={"rgb": h.encoders["rgb"], "depth": h.encoders["rgb"]}), "both branch"),
        (lambda h: MWAM(branches={"rgb": h.encoders["rgb"], "depth": torch.nn.ReLU()}), "no trainable"),
        (lambda h: MWAM(branches={"rgb": 3, "depth": h.encoders["depth"]}), "expected an nn.Module"),
        (lambda h: MWAM.for_host(h, intervention="gradient"), "intervention must be"),
        (lambda h: MWAM.for_host(h, alpha=0.5), "negative"),
        (lambda h: MWAM.for_host(h, soft_start=1), "True or False"),
    ],
)
def test_misuse_at_construction_is_a_clear_error(build, message):
    with pytest.raises(ValueError, match=message):
        build(ToyHost())


@pytest.mark.parametrize(
    ("inputs", "present", "message"),
    [
        ({"rgb": torch.randn(2, 3, 16, 16)}, None, "missing \\['depth'\\]"),
        ({"rgb": torch.randn(2, 3, 16, 16), "depth": torch.randn(3, 3, 16, 16)}, None, "same batch size"),
        ({"rgb": torch.randn(2, 3, 16, 16), "depth": torch.randint(0, 255, (2, 3, 16, 16))}, None, "floating-point"),
        ({"rgb": torch.randn(2, 16, 16), "depth": torch.randn(2, 3, 16, 16)}, None, "3 dimensions"),
        (
            {"rgb": torch.randn(2, 3, 16, 16), "depth": torch.randn(2, 3, 16, 16)},
            torch.ones(2, 3, dtype=torch.bool),
            "present must be",
        ),
        ({"rgb": torch.randn(2, 3, 16, 16), "depth": torch.randn(2, 3, 16, 16)}, torch.ones(2, 2), "present must be"),
        ([torch.randn(2, 3, 16, 16)], None, "mapping"),
    ],
)
def test_wrong_step_input_is_a_clear_error(inputs, present, message):
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    with pytest.raises(ValueError, match=message):
        mwam.step(inputs, present=present)
