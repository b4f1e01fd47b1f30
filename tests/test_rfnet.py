"""RFNet host (Ding et al., ICCV 2021): the authors' parameter counts and layout, outputs in training and evaluation,
feature-level masking, the 15-subset modality dropout, gradients."""

import pytest
import torch

from mwam_harness import models
from mwam_harness.models.rfnet import SUBSETS, RFNetConfig, RFNetHost

MODALITIES = ("flair", "t1ce", "t1", "t2")
SIZE = 16  # RFNetHost.example_inputs: the smallest volume the host takes


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def volumes(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    return RFNetHost.example_inputs(batch, torch.Generator().manual_seed(seed))


def mask(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


@pytest.fixture(scope="module")
def host() -> RFNetHost:
    torch.manual_seed(0)
    return models.build("rfnet", modality_dropout=False)


@pytest.fixture(scope="module")
def trained_output(host: RFNetHost):
    """One training-mode forward pass (batch 1, with its autograd graph) that several tests read."""
    host.train()
    host.zero_grad(set_to_none=True)
    out = host(volumes(1, seed=3), mask([[1, 0, 1, 1]]))
    host.eval()
    return out


def test_parameter_counts_match_the_authors_model():
    # measured by building the authors' models.Model(num_cls=4) (dyh127/RFNet): 8,984,960 in all
    net = models.build("rfnet")
    assert count(net) == models.model_info("rfnet").parameters == 8_984_960
    for encoder in net.branches().values():
        assert count(encoder) == 1_466_496
    assert count(net.decoder_fuse) == 2_532_588
    assert count(net.decoder_sep) == 586_388
    assert count(net) == sum(count(e) for e in net.branches().values()) + count(net.decoder_fuse) + count(
        net.decoder_sep
    )
    # host-facts: 8.98 M; 1.466 M per encoder; decoder_fuse 2.53 M; decoder_sep 0.586 M
    assert (round(count(net) / 1e6, 2), round(count(net.decoder_fuse) / 1e6, 2)) == (8.98, 2.53)
    assert (round(count(net.flair_encoder) / 1e6, 3), round(count(net.decoder_sep) / 1e6, 3)) == (1.466, 0.586)


def test_layout_and_state_dict_keys_are_the_authors():
    net = models.build("rfnet")
    keys = net.state_dict().keys()
    assert len(keys) == 288  # the authors' Model: convolutions only (InstanceNorm without affine or statistics)
    assert {
        "flair_encoder.e1_c1.conv.weight",
        "t2_encoder.e4_c3.conv.bias",
        "decoder_fuse.prm_generator4.embedding_layer.0.conv.weight",
        "decoder_fuse.prm_generator1.prm_layer.1.weight",
        "decoder_fuse.RFM4.modal_fusion.3.weight_layer.2.weight",
        "decoder_fuse.RFM1.region_fusion.fusion_layer.2.conv.weight",
        "decoder_fuse.RFM2.short_cut.1.conv.weight",
        "decoder_fuse.seg_layer.weight",
        "decoder_sep.d3_c1.conv.weight",
        "decoder_sep.seg_layer.bias",
    } <= keys
    enc = net.t1ce_encoder
    assert enc.e1_c1.conv.in_channels == 1 and enc.e1_c1.conv.stride == (1, 1, 1)
    widths = [getattr(enc, f"e{level}_c1").conv.out_channels for level in range(1, 5)]
    assert widths == [16, 32, 64, 128]
    assert [getattr(enc, f"e{level}_c1").conv.stride[0] for level in range(1, 5)] == [1, 2, 2, 2]
    assert enc.e2_c2.conv.padding_mode == "reflect" and enc.e2_c2.conv.kernel_size == (3, 3, 3)
    assert isinstance(enc.e2_c2.norm, torch.nn.InstanceNorm3d) and enc.e2_c2.activation.negative_slope == 0.2
    rfm = net.decoder_fuse.RFM3  # level 3: C = 64
    assert rfm.modal_fusion[0].weight_layer[0].in_channels == 4 * 64 + 1
    assert rfm.region_fusion.fusion_layer[0].conv.in_channels == 4 * 64
    assert rfm.short_cut[-1].conv.out_channels == rfm.region_fusion.fusion_layer[-1].conv.out_channels == 32
    assert net.decoder_fuse.prm_generator3.prm_layer[0].conv.in_channels == 2 * 64
    assert net.decoder_fuse.prm_generator4.prm_layer[0].conv.in_channels == 128
    assert net.fused_loss_start_epoch == 20


def test_subsets_are_the_authors_mask_array():
    assert len(SUBSETS) == len(set(SUBSETS)) == 15 and (False,) * 4 not in SUBSETS
    assert SUBSETS[:4] == tuple(tuple(i == j for j in range(4)) for i in range(4))  # flair, t1ce, t1, t2 alone
    assert SUBSETS[-1] == (True,) * 4 and [sum(s) for s in SUBSETS] == [1] * 4 + [2] * 6 + [3] * 4 + [4]


def test_evaluation_outputs_only_the_fused_logits(host: RFNetHost):
    host.eval()
    present = mask([[1, 0, 0, 1], [1, 1, 1, 1]])
    with torch.no_grad():
        out = host(volumes(2), present)
    assert out.logits.shape == (2, 4, SIZE, SIZE, SIZE) and torch.isfinite(out.logits).all()
    assert out.aux is None and out.extras is None and torch.equal(out.present, present)


def test_training_outputs_sep_logits_and_four_full_resolution_prms(trained_output):
    out = trained_output
    shape = (1, 4, SIZE, SIZE, SIZE)
    assert out.logits.shape == shape and torch.equal(out.present, mask([[1, 0, 1, 1]]))
    assert tuple(out.aux) == MODALITIES and all(a.shape == shape for a in out.aux.values())
    prms = out.extras["prm"]
    assert len(prms) == 4 and all(p.shape == shape for p in prms)
    for p in prms:  # probabilities; trilinear upsampling of a softmax keeps the sum over classes at 1
        assert p.min() >= 0 and p.max() <= 1
        torch.testing.assert_close(p.sum(dim=1), torch.ones(shape[:1] + shape[2:]))


def test_absent_inputs_do_not_reach_the_fused_logits_but_reach_the_sep_decoders(host: RFNetHost):
    present = mask([[1, 0, 1, 0], [1, 1, 1, 1]])  # t1ce and t2 absent for sample 0 only
    inputs = volumes(2, seed=1)
    changed = dict(inputs, t1ce=inputs["t1ce"] * 3 + 1, t2=torch.randn(inputs["t2"].shape))
    host.eval()
    with torch.no_grad():
        a, b = host(inputs, present), host(changed, present)
    assert torch.equal(a.logits[0], b.logits[0]), "features of absent modalities are zeroed"
    assert not torch.allclose(a.logits[1], b.logits[1]), "present modalities are used"

    host.train()  # modality_dropout=False: the effective mask is `present`
    try:
        with torch.no_grad():
            a, b = host(inputs, present), host(changed, present)
    finally:
        host.eval()
    assert torch.equal(a.logits[0], b.logits[0])
    for m in ("t1ce", "t2"):  # the sep decoder sees every modality's unmasked features, inputs are not zeroed
        assert not torch.allclose(a.aux[m][0], b.aux[m][0]), m
    for m in ("flair", "t1"):
        assert torch.equal(a.aux[m], b.aux[m]), m


def test_encode_fuse_equals_forward_and_masks_features(host: RFNetHost):
    host.eval()
    inputs, present = volumes(1, seed=2), mask([[0, 1, 1, 0]])
    with torch.no_grad():
        features = host.encode(inputs)
        assert all(len(features[m]) == 4 for m in MODALITIES)
        assert [f.shape[1:] for f in features["t1"]] == [
            (16, SIZE, SIZE, SIZE),
            (32, SIZE // 2, SIZE // 2, SIZE // 2),
            (64, SIZE // 4, SIZE // 4, SIZE // 4),
            (128, SIZE // 8, SIZE // 8, SIZE // 8),
        ]
        whole = host(inputs, present).logits
        assert torch.equal(host.fuse(features, present).logits, whole)
        garbage = dict(features, flair=tuple(torch.randn_like(f) for f in features["flair"]))
        assert torch.equal(host.fuse(garbage, present).logits, whole)


def test_backward_reaches_every_encoder_and_prms_are_detached_in_the_fusion(host: RFNetHost, trained_output):
    out = trained_output
    generators = [
        p for name, p in host.decoder_fuse.named_parameters() if name.startswith("prm_generator") and p.requires_grad
    ]
    fused_only = torch.autograd.grad(out.logits.square().mean(), generators, retain_graph=True, allow_unused=True)
    assert all(g is None for g in fused_only), "the RFMs use the PRMs detached, as the authors"

    loss = out.logits.square().mean() + sum(a.square().mean() for a in out.aux.values())
    loss = loss + sum(p.square().mean() for p in out.extras["prm"])
    loss.backward()
    for modality, encoder in host.branches().items():
        grads = [p.grad for p in encoder.parameters()]
        assert all(g is not None for g in grads), modality
        assert any(g.abs().sum() > 0 for g in grads), modality
    assert all(p.grad is not None for p in host.decoder_sep.parameters())
    assert all(p.grad is not None for p in generators)


def test_rejects_bad_inputs_and_options():
    net = RFNetHost(basic_dims=4).eval()
    with pytest.raises(ValueError, match="multiples of 8"):
        net({m: torch.randn(1, 1, 20, 16, 16) for m in MODALITIES})
    with pytest.raises(ValueError, match="must be"):
        net({m: torch.randn(1, 2, 16, 16, 16) for m in MODALITIES})
    with pytest.raises(ValueError, match="unknown options"):
        RFNetHost(num_cls=4)
    with pytest.raises(ValueError):
        RFNetConfig(basic_dims=6 + 1)
