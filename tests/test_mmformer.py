"""mmFormer host (Zhang et al., MICCAI 2022): the authors' parameter counts and layout, outputs in training and
evaluation, the deep supervision's order and resolution, feature-level masking, the 15-subset modality dropout,
gradients, input checks. The tests run at patch_size 2 (32^3 volumes); only the parameter count builds the P = 5 and
P = 8 models (without running them)."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from mwam_harness import models
from mwam_harness.models.mmformer import MMFormerConfig, MMFormerHost, PreNormConv3d

MODALITIES = ("flair", "t1ce", "t1", "t2")
P = 2
SIZE = 16 * P  # 32^3 volumes: level 5 is 2^3 voxels, the smallest the host takes


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def volumes(host: MMFormerHost, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    return host.example_inputs(batch, torch.Generator().manual_seed(seed))


def mask(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


@pytest.fixture(scope="module")
def host() -> MMFormerHost:
    torch.manual_seed(0)
    net = models.build("mmformer", patch_size=P, modality_dropout=False)
    with torch.no_grad():  # the authors initialise the position embeddings to 0; give them values to carry
        for m in MODALITIES:
            getattr(net, f"{m}_pos").normal_(0.0, 0.02)
    return net


@pytest.fixture(scope="module")
def trained_output(host: MMFormerHost):
    """One training-mode forward pass (batch 1, with its autograd graph) that several tests read."""
    host.train()
    host.zero_grad(set_to_none=True)
    out = host(volumes(host, 1, seed=3), mask([[1, 0, 1, 1]]))
    host.eval()
    return out


def test_parameter_counts_match_the_authors_model():
    # measured by building the authors' mmformer.Model(num_cls=4) (YaoZhang93/mmFormer) with patch_size 5 and 8
    assert models.model_info("mmformer").parameters == 35_861_840
    for patch_size, total, pos in ((5, 35_861_840, 125 * 512), (8, 36_654_416, 512 * 512)):
        net = models.build("mmformer", patch_size=patch_size)
        assert count(net) == total, patch_size
        for m in MODALITIES:
            assert count(getattr(net, f"{m}_encoder")) == 1_473_216
            assert count(getattr(net, f"{m}_encode_conv")) == 66_048
            assert count(getattr(net, f"{m}_decode_conv")) == 65_664
            assert getattr(net, f"{m}_pos").numel() == pos
            assert count(getattr(net, f"{m}_transformer")) == 5_250_048
        assert count(net.multimodal_transformer) == 5_250_048
        assert count(net.multimodal_decode_conv) == 1_049_088
        assert count(net.decoder_fuse) == 1_293_444
        assert count(net.decoder_sep) == 593_356
        per_modality = 1_473_216 + 66_048 + 65_664 + pos + 5_250_048
        assert total == 4 * per_modality + 5_250_048 + 1_049_088 + 1_293_444 + 593_356
        # the branches MWAM rescales: everything per modality except the unused decode conv
        assert all(count(b) == per_modality - 65_664 for b in net.branches().values())
    # host-facts: 36.65 M at P = 8, 35.86 M at P = 5; 1.473 M per encoder, 5.25 M per transformer
    assert round(36_654_416 / 1e6, 2) == 36.65 and round(35_861_840 / 1e6, 2) == 35.86
    assert round(1_473_216 / 1e6, 3) == 1.473 and round(5_250_048 / 1e6, 2) == 5.25


def test_layout_and_state_dict_keys_are_the_authors(host: MMFormerHost):
    keys = host.state_dict().keys()
    assert len(keys) == 287  # the authors' Model (InstanceNorm without affine parameters or statistics)
    assert {
        "flair_pos",
        "flair_encoder.e1_c1.weight",
        "t2_encoder.e5_c3.conv.bias",
        "t1ce_encode_conv.weight",
        "t1_decode_conv.bias",
        "flair_transformer.cross_attention_list.0.fn.norm.weight",
        "t2_transformer.cross_attention_list.0.fn.fn.qkv.weight",
        "t1_transformer.cross_attention_list.0.fn.fn.proj.bias",
        "flair_transformer.cross_ffn_list.0.fn.fn.net.0.weight",
        "multimodal_transformer.cross_ffn_list.0.fn.fn.net.3.bias",
        "multimodal_decode_conv.weight",
        "decoder_fuse.RFM5.fusion_layer.0.conv.weight",
        "decoder_fuse.RFM1.fusion_layer.2.conv.bias",
        "decoder_fuse.seg_d4.weight",
        "decoder_fuse.seg_d1.bias",
        "decoder_fuse.seg_layer.weight",
        "decoder_fuse.d4_c1.conv.weight",
        "decoder_sep.d4_c1.conv.weight",
        "decoder_sep.seg_layer.bias",
    } <= keys
    assert "flair_transformer.cross_attention_list.0.fn.fn.qkv.bias" not in keys
    enc = host.t1ce_encoder
    assert type(enc.e1_c1) is torch.nn.Conv3d and enc.e1_c1.padding_mode == "reflect"  # plain conv, no norm
    widths = [getattr(enc, f"e{level}_c1").conv.out_channels for level in range(2, 6)]
    assert [enc.e1_c1.out_channels, *widths] == [8, 16, 32, 64, 128]
    assert [getattr(enc, f"e{level}_c1").conv.stride[0] for level in range(2, 6)] == [2, 2, 2, 2]
    assert enc.e3_c2.conv.padding_mode == "reflect" and enc.e3_c2.activation.negative_slope == 0.2
    assert host.decoder_sep.d2_c1.conv.padding_mode == "reflect"
    assert host.decoder_fuse.d2_c1.conv.padding_mode == "reflect"
    rfm = host.decoder_fuse.RFM3  # fusion_prenorm at level 3: 1x1 4C -> C, 3x3 (zero padding), 1x1
    assert [layer.conv.in_channels for layer in rfm.fusion_layer] == [4 * 32, 32, 32]
    assert [layer.conv.kernel_size[0] for layer in rfm.fusion_layer] == [1, 3, 1]
    assert rfm.fusion_layer[1].conv.padding_mode == "zeros"
    assert host.decoder_fuse.RFM5.fusion_layer[0].conv.in_channels == 512  # the decoded inter-modal feature
    assert host.flair_encode_conv.in_channels == 128 and host.flair_encode_conv.out_channels == 512
    assert (host.multimodal_decode_conv.in_channels, host.multimodal_decode_conv.out_channels) == (2048, 512)
    assert host.t1_pos.shape == (1, P**3, 512)
    block = host.flair_transformer
    assert len(block.cross_attention_list) == len(block.cross_ffn_list) == 1  # depth 1
    attention = block.cross_attention_list[0].fn
    assert attention.fn.heads == 8 and attention.fn.qkv.bias is None and attention.dropout.p == 0.1
    assert attention.fn.attn_drop.p == attention.fn.proj_drop.p == 0.1
    mlp = block.cross_ffn_list[0].fn.fn.net
    assert mlp[0].out_features == 4096 and isinstance(mlp[1], torch.nn.GELU) and mlp[2].p == mlp[4].p == 0.1
    assert host.fused_loss_start_epoch == 0
    fresh = MMFormerHost(patch_size=P, basic_dims=4)
    assert all(torch.equal(getattr(fresh, f"{m}_pos"), torch.zeros(1, P**3, 512)) for m in MODALITIES)


def test_pre_norm_convolutions_normalise_activate_then_convolve():
    torch.manual_seed(0)
    layer = PreNormConv3d(3, 5)
    x = torch.randn(2, 3, 6, 6, 6)
    expected = layer.conv(F.leaky_relu(F.instance_norm(x), 0.2))
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)


def test_evaluation_outputs_only_the_fused_logits(host: MMFormerHost):
    host.eval()
    present = mask([[1, 0, 0, 1], [1, 1, 1, 1]])
    with torch.no_grad():
        out = host(volumes(host, 2), present)
    assert out.logits.shape == (2, 4, SIZE, SIZE, SIZE) and torch.isfinite(out.logits).all()
    assert out.aux is None and out.extras is None and torch.equal(out.present, present)


def test_training_outputs_sep_logits_and_four_full_resolution_deep_supervision_maps(host, trained_output):
    out = trained_output
    shape = (1, 4, SIZE, SIZE, SIZE)
    assert out.logits.shape == shape and torch.equal(out.present, mask([[1, 0, 1, 1]]))
    assert tuple(out.aux) == MODALITIES and all(a.shape == shape for a in out.aux.values())
    deep = out.extras["prm"]
    assert len(deep) == 4 and all(p.shape == shape for p in deep)
    for p in deep:  # probabilities; trilinear upsampling of a softmax keeps the sum over classes at 1
        assert p.min() >= 0 and p.max() <= 1
        torch.testing.assert_close(p.sum(dim=1), torch.ones(shape[:1] + shape[2:]))


def test_deep_supervision_is_the_authors_order_and_upsampling(host: MMFormerHost):
    """extras["prm"][i] = up_{2^(i+1)}(softmax(seg_d{i+1})), seg_d{i+1} reading the decoder at level i + 2."""
    heads = {}
    handles = [
        getattr(host.decoder_fuse, f"seg_d{i}").register_forward_hook(
            lambda module, args, output, i=i: heads.__setitem__(i, output)
        )
        for i in range(1, 5)
    ]
    host.train()
    try:
        with torch.no_grad():
            out = host(volumes(host, 1, seed=4), mask([[1, 1, 0, 1]]))
    finally:
        host.eval()
        for handle in handles:
            handle.remove()
    for i, p in enumerate(out.extras["prm"]):
        head = heads[i + 1]
        assert head.shape[2:] == (SIZE // 2 ** (i + 1),) * 3
        factor = 2 ** (i + 1)
        expected = F.interpolate(torch.softmax(head, dim=1), scale_factor=factor, mode="trilinear", align_corners=True)
        assert torch.equal(p, expected), i


def test_absent_inputs_do_not_reach_the_fused_logits_but_reach_the_sep_decoders(host: MMFormerHost):
    present = mask([[1, 0, 1, 0], [1, 1, 1, 1]])  # t1ce and t2 absent for sample 0 only
    inputs = volumes(host, 2, seed=1)
    changed = dict(inputs, t1ce=inputs["t1ce"] * 3 + 1, t2=torch.randn(inputs["t2"].shape))
    host.eval()
    with torch.no_grad():
        a, b = host(inputs, present), host(changed, present)
    assert torch.equal(a.logits[0], b.logits[0]), "features and tokens of absent modalities are zeroed"
    assert not torch.allclose(a.logits[1], b.logits[1]), "present modalities are used"

    host.train()  # modality_dropout=False: the effective mask is `present`; the same seed for the dropout
    try:
        with torch.no_grad():
            torch.manual_seed(11)
            a = host(inputs, present)
            torch.manual_seed(11)
            b = host(changed, present)
    finally:
        host.eval()
    assert torch.equal(a.logits[0], b.logits[0])
    for m in ("t1ce", "t2"):  # the sep decoder sees every modality's unmasked features, inputs are not zeroed
        assert not torch.allclose(a.aux[m][0], b.aux[m][0]), m
    for m in ("flair", "t1"):
        assert torch.equal(a.aux[m], b.aux[m]), m


def test_encode_fuse_equals_forward_and_masks_features_and_tokens(host: MMFormerHost):
    host.eval()
    inputs, present = volumes(host, 1, seed=2), mask([[0, 1, 1, 0]])
    with torch.no_grad():
        features = host.encode(inputs)
        assert all(len(features[m]) == 6 for m in MODALITIES)
        assert [tuple(f.shape[1:]) for f in features["t1"]] == [
            (8, SIZE, SIZE, SIZE),
            (16, SIZE // 2, SIZE // 2, SIZE // 2),
            (32, SIZE // 4, SIZE // 4, SIZE // 4),
            (64, SIZE // 8, SIZE // 8, SIZE // 8),
            (128, P, P, P),
            (P**3, 512),  # the intra-modal transformer's output tokens
        ]
        whole = host(inputs, present).logits
        assert torch.equal(host.fuse(features, present).logits, whole)
        garbage = dict(features, flair=tuple(torch.randn_like(f) for f in features["flair"]))
        assert torch.equal(host.fuse(garbage, present).logits, whole)
        tokens_only = dict(features, t2=(*features["t2"][:5], torch.randn_like(features["t2"][5])))
        assert torch.equal(host.fuse(tokens_only, present).logits, whole), "absent tokens are zeroed"
        present_tokens = dict(features, t1=(*features["t1"][:5], torch.randn_like(features["t1"][5])))
        assert not torch.allclose(host.fuse(present_tokens, present).logits, whole)


def test_inter_modal_tokens_are_regrouped_as_the_authors_view(host: MMFormerHost):
    """The authors' .view(B, P, P, P, 2048) of the (B, 4 P^3, 512) sequence: voxel v holds tokens 4v .. 4v + 3."""
    seen = {}
    handles = [
        host.multimodal_transformer.register_forward_hook(lambda m, a, out: seen.__setitem__("tokens", out)),
        host.multimodal_decode_conv.register_forward_pre_hook(lambda m, a: seen.__setitem__("grid", a[0])),
    ]
    host.eval()
    try:
        with torch.no_grad():
            host(volumes(host, 1, seed=5), mask([[1, 1, 1, 1]]))
    finally:
        for handle in handles:
            handle.remove()
    tokens, grid = seen["tokens"], seen["grid"]
    assert tokens.shape == (1, 4 * P**3, 512) and grid.shape == (1, 2048, P, P, P)
    for v, (i, j, k) in enumerate([(0, 0, 0), (0, 0, 1), (1, 1, 1)]):
        index = (i * P + j) * P + k
        assert torch.equal(grid[0, :, i, j, k], tokens[0, 4 * index : 4 * index + 4].reshape(-1)), v


def test_backward_reaches_every_branch_and_the_sep_decoder(host: MMFormerHost, trained_output):
    out = trained_output  # mask [1, 0, 1, 1]: t1ce absent
    loss = out.logits.square().mean() + sum(a.square().mean() for a in out.aux.values())
    loss = loss + sum(p.square().mean() for p in out.extras["prm"])
    loss.backward()
    branches = host.branches()
    assert tuple(branches) == MODALITIES
    for modality, branch in branches.items():
        assert tuple(branch) == ("encoder", "encode_conv", "pos", "transformer")
        assert branch["pos"].weight is getattr(host, f"{modality}_pos")
        for part, module in branch.items():
            grads = [p.grad for p in module.parameters()]
            assert grads and all(g is not None for g in grads), (modality, part)
            # an absent modality's intra-modal tokens are zeroed: its encode conv and transformer get a zero
            # gradient from that sample; its encoder still learns through decoder_sep, and its position
            # embedding through the inter-modal transformer (added to the zeroed tokens)
            reached = any(g.abs().sum() > 0 for g in grads)
            assert reached == (modality != "t1ce" or part in ("encoder", "pos")), (modality, part)
    assert all(p.grad is not None for p in host.decoder_sep.parameters())
    assert all(p.grad is not None for p in host.multimodal_transformer.parameters())
    assert all(getattr(host, f"{m}_decode_conv").weight.grad is None for m in MODALITIES), "unused, as the authors"


def test_backward_with_every_modality_present_reaches_every_transformer():
    torch.manual_seed(0)
    net = MMFormerHost(patch_size=2, basic_dims=2, modality_dropout=False).train()
    out = net(volumes(net, 1, seed=7))
    out.logits.square().mean().backward()  # the fused output alone
    for modality, branch in net.branches().items():
        for part, module in branch.items():
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), (modality, part)


def test_rejects_bad_inputs_and_options(host: MMFormerHost):
    host.eval()
    with pytest.raises(ValueError, match=r"16 \* patch_size"):
        host({m: torch.randn(1, 1, 48, 48, 48) for m in MODALITIES})
    with pytest.raises(ValueError, match=r"16 \* patch_size"):
        host({m: torch.randn(1, 1, SIZE, SIZE, 16) for m in MODALITIES})
    with pytest.raises(ValueError, match="must be"):
        host({m: torch.randn(1, 2, SIZE, SIZE, SIZE) for m in MODALITIES})
    with pytest.raises(ValueError, match="unknown options"):
        MMFormerHost(num_cls=4)
    with pytest.raises(ValueError):
        MMFormerConfig(patch_size=1)


def test_example_inputs_follow_the_patch_size():
    assert MMFormerHost.example_inputs(1)["t2"].shape == (1, 1, 80, 80, 80)  # the class: the default P = 5
    net = MMFormerHost(patch_size=3, basic_dims=1)
    inputs = net.example_inputs(2, torch.Generator().manual_seed(0))
    assert tuple(inputs) == MODALITIES and all(x.shape == (2, 1, 48, 48, 48) for x in inputs.values())
    assert torch.equal(inputs["flair"], net.example_inputs(2, torch.Generator().manual_seed(0))["flair"])
    assert models.model_info("mmformer").test_options == {"patch_size": 2, "basic_dims": 4}


def test_flop_counting_under_inference_mode():
    """The benchmark counts FLOPs of an eval forward under inference_mode (reproduce/benchmarks/brats_step.py)."""
    net = MMFormerHost(patch_size=2, basic_dims=1).eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        out = net(volumes(net, 1))
    assert out.logits.shape == (1, 4, SIZE, SIZE, SIZE) and counter.get_total_flops() > 0


def test_sde_enhances_each_encoders_deepest_level_which_the_transformer_and_sep_decoder_read(host: MMFormerHost):
    from mwam_harness.models import HostOutput
    from reproduce.methods.sde.enhancer import BranchEnhancer

    inputs = volumes(host, 2)
    torch.manual_seed(0)
    host.train()
    plain = host(inputs, None)
    enhancer = BranchEnhancer(host.feature_branches(), {})
    enhancer.begin_step(0.5)
    torch.manual_seed(0)  # the same dropout draws: only SDE's change differs
    enhanced = host(inputs, None)
    assert set(enhancer.embeddings) == set(host.modalities)
    deepest = host.flair_encoder(inputs["flair"])[-1]
    assert enhancer.embeddings["flair"].shape == deepest.shape[:2]  # (B, 8 * basic_dims)
    assert not torch.allclose(enhanced.logits, plain.logits) and not torch.allclose(enhanced.aux["t2"], plain.aux["t2"])
    loss, _ = enhancer.loss(HostOutput(enhanced.logits, present=torch.ones(2, 4, dtype=torch.bool)))
    loss.backward()
    assert host.t1_encoder.e1_c1.weight.grad is not None
    enhancer.remove()
    host.zero_grad(set_to_none=True)
    host.eval()
