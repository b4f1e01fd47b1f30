"""SF / SF-MD host: architecture facts, feature-level masking, on-device modality dropout, Host contract."""

import copy

import pytest
import torch

from mwam_harness import models
from mwam_harness.models.host import HostOutput
from mwam_harness.models.sf import SUBSETS, SFConfig, SFHost

MODALITIES = ("rgb", "depth", "ir")


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def batch(size: int = 4, hw: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(size, 3, hw, hw, generator=g) for m in MODALITIES}


def mask(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


@pytest.fixture(scope="module")
def host() -> SFHost:
    torch.manual_seed(0)
    return models.build("sf", aux_heads=True, features=True).eval()


def test_parameter_counts_match_the_authors():
    net = models.build("sf")
    assert round(count(net) / 1e6, 2) == 13.18
    for bone in net.branches().values():
        assert round(count(bone) / 1e6, 3) == 0.678
    assert round(count(net.shared_bone) / 1e6, 2) == 11.15
    assert count(net) == sum(count(b) for b in net.branches().values()) + count(net.shared_bone)
    extra = count(models.build("sf", aux_heads=True)) - count(net)
    assert extra == 3 * (128 * 2 + 2)  # a few hundred parameters


def test_architecture_facts():
    net = models.build("sf")
    conv1 = net.special_bone_rgb[0]
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((3, 3), (2, 2), (1, 1))
    assert net.shared_bone[0][0].conv1.in_channels == 384
    assert net.shared_bone[-1].in_features == 512 and net.shared_bone[-1].out_features == 2
    assert not any(isinstance(m, torch.nn.Dropout) for m in net.modules())
    # the authors' state-dict layout, so their SURF checkpoints load
    keys = net.state_dict().keys()
    assert {"special_bone_rgb.6.fc.0.weight", "shared_bone.0.0.conv1.weight", "shared_bone.4.weight"} <= keys


def test_registry_and_branches():
    md, full = models.build("sf_md"), models.build("sf", num_classes=3)
    assert isinstance(md, SFHost) and md.config.modality_dropout
    assert isinstance(full, SFHost) and not full.config.modality_dropout and full.config.num_classes == 3
    assert md.modalities == MODALITIES
    branches = md.branches()
    assert list(branches) == list(MODALITIES)
    for m, bone in branches.items():
        assert bone is getattr(md, f"special_bone_{m}")
        names = {n for n, p in md.named_parameters() if any(p is q for q in bone.parameters())}
        assert names == {n for n, _ in md.named_parameters() if n.startswith(f"special_bone_{m}.")}
    with pytest.raises(ValueError, match="fixes modality_dropout"):
        models.build("sf", modality_dropout=True)
    with pytest.raises(ValueError, match="unknown options"):
        models.build("sf_md", bogus=1)
    assert SFHost(SFConfig(num_classes=5), aux_heads=True).config == SFConfig(num_classes=5, aux_heads=True)


def test_output_shapes_at_the_real_size(host):
    x = batch(size=2, hw=112)
    with torch.no_grad():
        out = host(x)
    assert isinstance(out, HostOutput)
    assert out.logits.shape == (2, 2)
    assert set(out.aux) == set(MODALITIES) and all(a.shape == (2, 2) for a in out.aux.values())
    assert set(out.features) == set(MODALITIES) and all(f.shape == (2, 128) for f in out.features.values())
    assert out.present.dtype == torch.bool and out.present.all()


@pytest.mark.parametrize("kept", range(3))
def test_present_mask_zeroes_exactly_the_missing_branches(host, kept):
    present = torch.zeros(4, 3, dtype=torch.bool)
    present[:, kept] = True
    x = batch()
    with torch.no_grad():
        ref = host(x, present)
        for i, m in enumerate(MODALITIES):
            other = torch.randn(x[m].shape, generator=torch.Generator().manual_seed(100 + i))  # not batch()'s draw
            changed = dict(x, **{m: other})
            out = host(changed, present)
            if i == kept:
                assert not torch.allclose(out.logits, ref.logits)
            else:
                assert torch.equal(out.logits, ref.logits)
            # aux heads and features see the unmasked branch output: they follow their own input regardless
            assert not torch.allclose(out.aux[m], ref.aux[m])
            assert not torch.allclose(out.features[m], ref.features[m])
    assert torch.equal(ref.present, present)


def test_masking_is_per_sample(host):
    present = mask([[1, 1, 1], [1, 0, 0], [0, 1, 1], [0, 0, 1]])
    x = batch()
    changed = dict(x, depth=torch.randn_like(x["depth"]))
    with torch.no_grad():
        a, b = host(x, present).logits, host(changed, present).logits
    same = (a == b).all(dim=1)
    assert same.tolist() == [False, True, False, True]


def test_training_dropout_draws_non_empty_subsets_uniformly():
    net = models.build("sf_md")
    torch.manual_seed(1)
    drawn = net.draw_subsets(70_000, torch.device("cpu"))
    assert drawn.dtype == torch.bool and drawn.any(dim=1).all()
    codes = (drawn.long() * torch.tensor([4, 2, 1])).sum(dim=1)
    freq = torch.bincount(codes, minlength=8)[1:].double() / len(codes)
    assert (freq - 1 / 7).abs().max() < 0.01  # 7 subsets, each ~1/7 (std ~0.0013)
    assert {tuple(r) for r in drawn.tolist()} == set(SUBSETS)


def test_training_dropout_in_forward_respects_present_and_the_seed():
    net = models.build("sf_md").train()
    x = batch(size=256, hw=8)
    torch.manual_seed(0)
    full = net(x).present
    assert full.shape == (256, 3) and full.any(dim=1).all()
    assert len({tuple(r) for r in full.tolist()}) == 7
    present = torch.ones(256, 3, dtype=torch.bool)
    present[::2, 1] = False
    present[1::4, 0] = False
    torch.manual_seed(123)
    first = net(x, present).present
    assert not (first & ~present).any()  # never re-enables a missing modality
    assert not torch.equal(first, present)
    torch.manual_seed(123)
    assert torch.equal(net(x, present).present, first)
    net.eval()
    assert torch.equal(net(x, present).present, present)  # no dropout in eval mode


def test_no_dropout_without_modality_dropout():
    net = models.build("sf").train()
    present = mask([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]])
    assert torch.equal(net(batch(hw=8), present).present, present)
    assert net(batch(hw=8)).present.all()


def test_aux_heads_and_backward_reach_every_branch():
    torch.manual_seed(0)
    net = models.build("sf_md", aux_heads=True).train()
    out = net(batch(hw=32), torch.ones(4, 3, dtype=torch.bool))
    assert all(out.aux[m].shape == (4, 2) for m in MODALITIES) and out.features is None
    target = torch.tensor([0, 1, 0, 1])
    loss = torch.nn.functional.cross_entropy(out.logits, target)
    loss = loss + sum(torch.nn.functional.cross_entropy(a, target) for a in out.aux.values())
    loss.backward()
    for bone in net.branches().values():
        assert all(p.grad is not None for p in bone.parameters())
        assert bone[0].weight.grad.abs().sum() > 0
    assert models.build("sf").aux_heads is None and models.build("sf")(batch(hw=8)).aux is None


def test_full_modality_gradients_reach_all_branches_without_aux():
    torch.manual_seed(0)
    net = models.build("sf").train()
    net(batch(hw=32)).logits.sum().backward()
    for bone in net.branches().values():
        assert bone[0].weight.grad.abs().sum() > 0


def test_channels_last_matches(host):
    x = batch(hw=32)
    cl = copy.deepcopy(host).to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = host(x).logits
        out = cl({m: t.contiguous(memory_format=torch.channels_last) for m, t in x.items()}).logits
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_bad_inputs_are_value_errors(host):
    x = batch(hw=8)
    with pytest.raises(ValueError, match="missing"):
        host({"rgb": x["rgb"], "depth": x["depth"]})
    with pytest.raises(ValueError, match="present"):
        host(x, torch.ones(4, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="present"):
        host(x, torch.ones(4, 3))
    with pytest.raises(ValueError, match="present"):
        host(x, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="'ir'"):
        host(dict(x, ir=x["ir"][:2]))
    with pytest.raises(ValueError, match="'depth'"):
        host(dict(x, depth=x["depth"][:, 0]))


@pytest.mark.gpu
def test_dropout_draw_stays_on_the_device_without_host_sync():
    net = models.build("sf_md").cuda().train()
    x = {m: t.cuda() for m, t in batch(size=8, hw=32).items()}
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = net(x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.present.is_cuda and out.present.any(dim=1).all()
