"""ESANet / ESANet-MD and MMANet-seg's student (NYUv2 hosts): the authors' parameter counts and layout, outputs in
training and evaluation, the modality factors before every fusion, the three-subset dropout, ImageNet loading,
the auxiliary decoder."""

import collections
import contextlib
from collections.abc import Iterator

import pytest
import torch

from mwam_harness import models
from mwam_harness.models.esanet import (
    BILINEAR_KERNEL,
    SUBSETS,
    ESANetConfig,
    ESANetHost,
    MMANetSegStudent,
    ResNetEncoder,
    load_imagenet_resnet50,
)

K = 40
H, W = 64, 96  # ESANetHost.example_inputs: 2 x 3 pixels at 1/32


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def images(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    return ESANetHost.example_inputs(batch, torch.Generator().manual_seed(seed))


def mask(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


@pytest.fixture(scope="module")
def md() -> ESANetHost:
    torch.manual_seed(0)
    return models.build("esanet_md").eval()


@pytest.fixture(scope="module")
def full() -> ESANetHost:
    torch.manual_seed(1)
    return models.build("esanet").eval()


@pytest.fixture(scope="module")
def student() -> MMANetSegStudent:
    torch.manual_seed(2)
    return models.build("mmanet_seg").eval()


@contextlib.contextmanager
def no_dropout(host: ESANetHost) -> Iterator[ESANetHost]:
    """Within the block, ``host`` applies exactly the caller's mask in training too; eval mode afterwards."""
    saved, host.config.modality_dropout = host.config.modality_dropout, False
    try:
        yield host
    finally:
        host.config.modality_dropout = saved
        host.eval()


def test_parameter_counts_are_the_authors(md, full, student):
    # counted by building the authors' ESANet / ESANet_KD_Auxi (MMANet-CVPR2023 segmentation/src/models/model.py)
    # with train_missing_amp.py's options: resnet50 encoders, 40 classes
    assert count(md) == count(full) == models.model_info("esanet_md").parameters == 71_733_544
    assert models.model_info("esanet").parameters == 71_733_544
    assert count(student) == models.model_info("mmanet_seg").parameters == 88_068_840
    assert count(md.encoder_rgb) == 23_508_032  # torchvision's ResNet-50 without fc (25,557,032 - 2,049,000)
    assert count(md.encoder_depth) == 23_501_760  # conv1 with one input channel: 2 x 64 x 7 x 7 fewer
    assert [count(getattr(md, f"se_layer{i}")) for i in range(5)] == [1_160, 16_928, 66_624, 264_320, 1_052_928]
    assert [count(getattr(md, f"skip_layer{i}")) for i in range(1, 4)] == [33_024, 131_584, 525_312]
    assert count(md.context_module) == 6_296_576
    assert count(md.decoder) == count(student.auxi_decoder) == 16_335_296
    parts = [md.encoder_rgb, md.encoder_depth, md.context_module, md.decoder]
    parts += [getattr(md, f"se_layer{i}") for i in range(5)] + [getattr(md, f"skip_layer{i}") for i in range(1, 4)]
    assert sum(count(p) for p in parts) == count(md)
    # host-facts: 71.73 M at 40 classes, 23.5 M per encoder, PPM 6.30 M; ESANet's decoder 16.34 M
    assert round(count(md) / 1e6, 2) == 71.73 and round(count(md.context_module) / 1e6, 2) == 6.30
    assert round(count(md.encoder_rgb) / 1e6, 1) == round(count(md.encoder_depth) / 1e6, 1) == 23.5
    assert round(count(md.decoder) / 1e6, 2) == 16.34
    # the class-dependent layers: 2,072 parameters per class
    heads = [getattr(md.decoder, f"decoder_module_{i}").side_output for i in (1, 2, 3)]
    per_class = [*heads, md.decoder.conv_out, md.decoder.upsample1, md.decoder.upsample2]
    assert sum(count(m) for m in per_class) == 2_072 * K
    # the side outputs serve training only: an evaluation pass uses 71,697,584 (Table 6's convention, 71.70 M)
    assert sum(count(m) for m in heads) == 35_960
    from reproduce.benchmarks.model_cost import inference_parameters

    assert inference_parameters(md, images(1)) == 71_733_544 - 35_960 == 71_697_584
    assert inference_parameters(student, images(1)) == 71_697_584


def test_layout_and_state_dict_keys_are_the_authors(md, student):
    keys = list(md.state_dict())
    assert len(keys) == 910 and len(student.state_dict()) == 1108  # the authors' ESANet / ESANet_KD_Auxi
    assert keys[0] == "encoder_rgb.conv1.weight" and keys[-1] == "decoder.upsample2.conv.bias"
    assert {
        "encoder_rgb.layer1.0.downsample.0.weight",
        "encoder_depth.layer4.2.bn3.num_batches_tracked",
        "se_layer0.se_rgb.fc.0.weight",
        "se_layer4.se_depth.fc.2.bias",
        "skip_layer1.0.conv.weight",
        "skip_layer3.0.bn.running_var",
        "context_module.features.0.1.conv.weight",
        "context_module.features.1.1.bn.running_mean",
        "context_module.final_conv.conv.weight",
        "decoder.decoder_module_1.conv3x3.conv.weight",
        "decoder.decoder_module_1.decoder_blocks.2.conv1x3_2.bias",
        "decoder.decoder_module_3.upsample.conv.weight",
        "decoder.decoder_module_2.side_output.weight",
        "decoder.conv_out.bias",
        "decoder.upsample1.conv.weight",
    } <= set(keys)
    assert set(student.state_dict()) - set(keys) == {
        k.replace("decoder.", "auxi_decoder.", 1) for k in keys if k.startswith("decoder.")
    }
    from torchvision.models import resnet50

    reference = {k: v.shape for k, v in resnet50().state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in md.encoder_rgb.state_dict().items()} == reference
    assert md.encoder_depth.conv1.weight.shape == (64, 1, 7, 7)
    assert [md.context_module.features[i][0].output_size for i in range(2)] == [1, 5]  # ESANet's 'ppm' bins
    assert md.context_module.final_conv.conv.in_channels == 2048 + 2 * 1024
    assert [getattr(md.decoder, f"decoder_module_{i}").conv3x3.conv.out_channels for i in (1, 2, 3)] == [512, 256, 128]
    assert [len(getattr(md.decoder, f"decoder_module_{i}").decoder_blocks) for i in (1, 2, 3)] == [3, 3, 3]
    up = md.decoder.upsample1.conv  # learned-3x3-zeropad: depthwise, the bilinear kernel, zero bias
    assert up.groups == up.in_channels == K and up.padding == (1, 1)
    torch.testing.assert_close(up.weight, torch.tensor(BILINEAR_KERNEL).expand(K, 1, 3, 3))
    assert not up.bias.any()
    block = md.decoder.decoder_module_2.decoder_blocks[0]
    assert block.conv3x1_1.kernel_size == (3, 1) and block.conv1x3_1.kernel_size == (1, 3) and block.bn1.eps == 1e-3
    assert md.se_layer3.se_rgb.fc[0].out_channels == 1024 // 16


def test_evaluation_with_every_mask_returns_full_resolution_logits_only(md):
    inputs = images(2)
    for present in (mask([[1, 0]] * 2), mask([[0, 1]] * 2), mask([[1, 1]] * 2), mask([[1, 0], [0, 1]])):
        with torch.no_grad():
            out = md(inputs, present)
        assert out.logits.shape == (2, K, H, W) and torch.isfinite(out.logits).all()
        assert torch.equal(out.present, present), "evaluation applies exactly the given mask"
        assert out.aux is None and "side" not in out.extras and "auxiliary" not in out.extras
        shapes = [tuple(f.shape) for f in out.extras["encoder"]]
        assert shapes == [(2, 512, H // 32, W // 32), (2, 512, H // 16, W // 16), (2, 256, H // 8, W // 8)]
        shapes = [tuple(f.shape) for f in out.extras["decoder"]]
        assert shapes == [(2, 128, H // 4, W // 4), (2, 256, H // 8, W // 8), (2, 512, H // 16, W // 16)]


def test_training_returns_the_side_outputs_in_esanet_order(full):
    present = mask([[1, 1], [0, 1]])
    with no_dropout(full):
        full.train()
        out = full(images(2, seed=1), present)
    assert out.logits.shape == (2, K, H, W) and torch.equal(out.present, present)
    assert [tuple(s.shape) for s in out.extras["side"]] == [(2, K, H // s, W // s) for s in (8, 16, 32)]
    loss = out.logits.square().mean() + sum(s.square().mean() for s in out.extras["side"])
    loss.backward()
    for name, p in full.named_parameters():
        assert p.grad is not None, name
    full.zero_grad(set_to_none=True)


def test_modality_factors_zero_the_absent_stream_before_every_fusion(md):
    inputs, present = images(2, seed=2), mask([[1, 0], [0, 1]])  # depth absent for sample 0, RGB for sample 1
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_pre_hook(lambda _, args, n=name: seen.__setitem__(n, args[0]))
        for name, module in md.named_modules()
        if name.endswith((".se_rgb", ".se_depth")) or name in ("encoder_depth.layer1", "encoder_rgb.layer1")
    ]
    try:
        with torch.no_grad():
            md(inputs, present)
    finally:
        for hook in hooks:
            hook.remove()
    for i in range(5):
        rgb, depth = seen[f"se_layer{i}.se_rgb"], seen[f"se_layer{i}.se_depth"]
        assert not depth[0].any() and depth[1].abs().sum() > 0, i
        assert not rgb[1].any() and rgb[0].abs().sum() > 0, i
    # the inputs and the depth stream are untouched: the factors apply to the fusion's inputs only
    assert seen["encoder_depth.layer1"][0].abs().sum() > 0
    # the fused map replaces the RGB stream: RGB-absent sample 1 still runs encoder_rgb on (depth-only) features
    assert seen["encoder_rgb.layer1"][1].abs().sum() > 0


def test_absent_inputs_do_not_reach_the_logits(md):
    inputs, present = images(2, seed=3), mask([[1, 0], [0, 1]])
    changed = {"rgb": inputs["rgb"].clone(), "depth": inputs["depth"].clone()}
    changed["depth"][0] = torch.randn(1, H, W)  # sample 0's absent depth
    changed["rgb"][1] = 3 * changed["rgb"][1] + 1  # sample 1's absent RGB
    with torch.no_grad():
        a, b = md(inputs, present).logits, md(changed, present).logits
    assert torch.equal(a, b), "absent streams are zero at every fusion (RGB: its stem; depth: all five stages)"
    with torch.no_grad():
        c = md(changed, mask([[1, 1], [1, 1]])).logits
    assert not torch.allclose(a[0], c[0]) and not torch.allclose(a[1], c[1]), "present inputs are used"

    # training mode: BatchNorm's batch statistics mix the samples, so test a modality absent for the whole batch
    with no_dropout(md):
        md.train()
        for absent, kept in (("depth", [[1, 0]] * 2), ("rgb", [[0, 1]] * 2)):
            other = dict(inputs, **{absent: torch.randn(inputs[absent].shape)})
            with torch.no_grad():
                assert torch.equal(md(inputs, mask(kept)).logits, md(other, mask(kept)).logits), absent


def test_training_dropout_draws_the_three_subsets_uniformly_in_the_authors_order(md, full):
    assert SUBSETS == ((True, False), (False, True), (True, True))  # MMANet's modality_combination
    draws = 3000
    all_present = torch.ones(draws, 2, dtype=torch.bool)
    drawn = md.training_dropout(all_present, torch.Generator().manual_seed(0))
    counts = collections.Counter(tuple(row) for row in drawn.tolist())
    assert set(counts) == set(SUBSETS) and all(abs(c - draws / 3) <= 0.1 * draws / 3 for c in counts.values())
    index = torch.randint(0, 3, (draws,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn, torch.tensor(SUBSETS)[index])
    assert torch.equal(drawn, md.training_dropout(all_present, torch.Generator().manual_seed(0))), "seeded"
    assert torch.equal(full.training_dropout(all_present), all_present), "esanet: p = [1, 1]"

    md.train()
    try:
        torch.manual_seed(4)
        with torch.no_grad():
            applied = md(images(4, seed=4), None).present
    finally:
        md.eval()
    assert all(tuple(row) in SUBSETS for row in applied.tolist())


def test_pretrained_loads_imagenet_resnet50_into_both_encoders(tmp_path):
    from torchvision.models import resnet18, resnet50

    torch.manual_seed(5)
    state = resnet50().state_dict()  # torchvision's format, fc included (dropped on loading)
    path = tmp_path / "resnet50.pth"
    torch.save(state, path)
    host = models.build("esanet", pretrained=str(path))
    for key, value in host.encoder_rgb.state_dict().items():
        assert torch.equal(value, state[key]), key
    depth = host.encoder_depth.state_dict()
    torch.testing.assert_close(depth["conv1.weight"], state["conv1.weight"].sum(dim=1, keepdim=True))
    assert all(torch.equal(depth[k], state[k]) for k in depth if k != "conv1.weight")

    from safetensors.torch import save_file

    small = {"conv1.weight": state["conv1.weight"], "bn1.bias": state["bn1.bias"], "fc.bias": state["fc.bias"]}
    save_file(small, str(tmp_path / "small.safetensors"))
    loaded = load_imagenet_resnet50(tmp_path / "small.safetensors")
    assert set(loaded) == {"conv1.weight", "bn1.bias"} and torch.equal(loaded["conv1.weight"], state["conv1.weight"])
    torch.save({"state_dict": small}, tmp_path / "wrapped.pth")
    assert set(load_imagenet_resnet50(tmp_path / "wrapped.pth")) == set(loaded)

    # wrong files: the errors come before the 72 M-parameter model is built, except for a ResNet of another depth
    with pytest.raises(FileNotFoundError, match="no file"):
        models.build("esanet", pretrained=str(tmp_path / "missing.pth"))
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        models.build("esanet", pretrained=str(tmp_path / "text.pth"))
    torch.save({"weights": [1, 2]}, tmp_path / "list.pth")
    with pytest.raises(ValueError, match="no state dict of tensors"):
        models.build("esanet", pretrained=str(tmp_path / "list.pth"))
    torch.save(resnet18().state_dict(), tmp_path / "resnet18.pth")
    encoder = ResNetEncoder(3)
    from mwam_harness.models.esanet import _load_encoder

    with pytest.raises(ValueError, match=r"not a torchvision / timm ResNet-50 state dict: missing .*layer1\.0\.conv3"):
        _load_encoder(encoder, load_imagenet_resnet50(tmp_path / "resnet18.pth"), "resnet18.pth")
    torch.save({"conv1.weight": torch.zeros(64, 1, 7, 7)}, tmp_path / "gray.pth")
    with pytest.raises(ValueError, match=r"not an ImageNet ResNet-50 \(conv1.weight \(64, 1, 7, 7\)"):
        models.build("esanet", pretrained=str(tmp_path / "gray.pth"))


def test_he_init_follows_esanet_build_model(full):
    """ESANet's --he_init (off in MMANet's scripts): Kaiming on convs except those with num_classes outputs, the SE
    excitations (before a sigmoid) and depthwise ones; checked here on which tensors change."""
    before = {k: v.clone() for k, v in full.state_dict().items()}
    full.apply_he_init()
    after = full.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "skip_layer2.0.conv.weight" in changed and "se_layer1.se_depth.fc.0.weight" in changed
    assert "encoder_rgb.layer2.1.conv2.weight" in changed  # not pretrained: the encoders too
    for kept in (
        "se_layer1.se_depth.fc.2.weight",
        "decoder.conv_out.weight",
        "decoder.decoder_module_1.side_output.weight",
        "decoder.upsample2.conv.weight",
        "decoder.decoder_module_3.upsample.conv.weight",
        "encoder_depth.conv1.weight",  # groups == in_channels == 1
    ):
        assert kept not in changed, kept
    assert not any(k.endswith("running_mean") or k.endswith("running_var") for k in changed)


def test_mmanet_seg_auxiliary_decoder_in_training_only(student):
    inputs = images(2, seed=6)
    with no_dropout(student):
        student.train()
        out = student(inputs, mask([[0, 1], [1, 1]]))
        aux = out.extras["auxiliary"]
        assert aux.shape == (2, K, H, W) and not torch.allclose(aux, out.logits)
        assert [tuple(s.shape) for s in out.extras["auxiliary_side"]] == [(2, K, H // s, W // s) for s in (8, 16, 32)]
        assert len(out.extras["side"]) == 3 and len(out.extras["encoder"]) == 3
        auxi = list(student.auxi_decoder.parameters())
        grads = torch.autograd.grad(out.logits.square().mean(), auxi, retain_graph=True, allow_unused=True)
        assert all(g is None for g in grads), "the auxiliary decoder does not feed the prediction"
        (aux.square().mean() + sum(s.square().mean() for s in out.extras["auxiliary_side"])).backward()
        assert all(p.grad is not None for p in student.auxi_decoder.parameters())
        assert all(p.grad is not None for p in student.encoder_depth.parameters())
        student.zero_grad(set_to_none=True)

        student.config.auxiliary_gate = True  # the authors' gate: auxiliary = main output without a depth-only sample
        try:
            with torch.no_grad():
                gated = student(inputs, mask([[1, 0], [1, 1]]))
                assert gated.extras["auxiliary"] is gated.logits
                assert gated.extras["auxiliary_side"] is gated.extras["side"]
                ungated = student(inputs, mask([[0, 1], [1, 1]]))
                assert not torch.allclose(ungated.extras["auxiliary"], ungated.logits), "a depth-only sample: runs"
        finally:
            student.config.auxiliary_gate = False
    with torch.no_grad():
        evaluated = student(inputs, mask([[0, 1], [1, 1]]))
    assert "auxiliary" not in evaluated.extras and "side" not in evaluated.extras


def test_branches_are_the_encoders_and_feature_branches_their_last_stage(student):
    branches = student.branches()
    assert tuple(branches) == ("rgb", "depth")
    assert branches["rgb"] is student.encoder_rgb and branches["depth"] is student.encoder_depth
    ids = [{id(p) for p in b.parameters()} for b in branches.values()]
    assert not ids[0] & ids[1]
    se = {id(p) for i in range(5) for p in getattr(student, f"se_layer{i}").parameters()}
    assert not se & (ids[0] | ids[1]), "the SE fusions are shared, not branch parameters"
    features = student.feature_branches()
    assert features["rgb"] is student.encoder_rgb.layer4 and features["depth"] is student.encoder_depth.layer4
    outputs = {}
    hooks = [
        m.register_forward_hook(lambda *a, n=n: outputs.setdefault(n, []).append(a[2])) for n, m in features.items()
    ]
    try:
        with torch.no_grad():
            student(images(2), None)
    finally:
        for hook in hooks:
            hook.remove()
    assert {n: [tuple(o.shape) for o in v] for n, v in outputs.items()} == {
        "rgb": [(2, 2048, H // 32, W // 32)],
        "depth": [(2, 2048, H // 32, W // 32)],
    }


def test_rejects_bad_inputs_and_options(md):
    with pytest.raises(ValueError, match="multiples of 32"):
        md({"rgb": torch.randn(1, 3, 64, 80), "depth": torch.randn(1, 1, 64, 80)})
    with pytest.raises(ValueError, match="must be"):
        md({"rgb": torch.randn(1, 3, 64, 64), "depth": torch.randn(1, 3, 64, 64)})
    with pytest.raises(ValueError, match="differ"):
        md({"rgb": torch.randn(1, 3, 64, 64), "depth": torch.randn(1, 1, 64, 96)})
    md.train()
    try:
        with pytest.raises(ValueError, match="batch of at least 2"):
            md({"rgb": torch.randn(1, 3, 64, 64), "depth": torch.randn(1, 1, 64, 64)})
    finally:
        md.eval()
    with pytest.raises(ValueError, match="unknown options"):
        ESANetHost(backbone="resnet34")
    with pytest.raises(ValueError, match="encoder must be one of"):
        ESANetHost(encoder="resnet101")
    with pytest.raises(ValueError, match="resnet50 encoders only"):
        ESANetConfig(encoder="resnet18", pretrained="resnet50.pth")
    with pytest.raises(ValueError, match="fixes modality_dropout"):
        models.build("esanet", modality_dropout=True)
    with pytest.raises(ValueError, match="always trains with modality dropout"):
        models.build("mmanet_seg", modality_dropout=False)
    with pytest.raises(ValueError):
        ESANetConfig(channels_decoder=(512, 256))


def test_resnet18_encoders_of_the_smoke_preset_are_esanets_smaller_model():
    """``encoder: resnet18`` (ESANet's ``--encoder resnet18``, BasicBlock): encoder outputs 64 ... 512 channels, the
    fusions, skips and context module sized to them; with the smoke preset's decoder a third of the weights."""
    from mwam_harness.datasets import nyuv2

    options = nyuv2.PRESETS["smoke"].hosts["esanet_md"]
    host = models.build("esanet_md", **options).eval()
    assert sum(p.numel() for p in host.parameters()) == 23_918_208  # counted by building it
    assert host.se_layer4.se_rgb.fc[0].in_channels == 512 and host.context_module.final_conv[0].in_channels == 1024
    out = host({"rgb": torch.randn(2, 3, 64, 96), "depth": torch.randn(2, 1, 64, 96)}, None)
    assert out.logits.shape == (2, 40, 64, 96)
    assert [d.shape[1] for d in out.extras["decoder"]] == [32, 64, 128]
    teacher = nyuv2.PRESETS["smoke"].methods["mmanet_seg"]["teacher_host_options"]
    assert teacher == options  # the MMANet-seg teacher's features match its student's
