"""The PC2f-MPF two-stream YOLOv8n (the fork's ``PC2f_MPF_yolov8n.yaml``): parameter count, the rebuilt blocks,
forward passes in both modes and for every subset of modalities, MWAM's branches, reloading."""

import io
import pickle

import pytest
import torch
from torch import nn

from mwam_harness import models
from mwam_harness.models.two_stream_yolov8_pc2f_mpf import PARAMETERS
from mwam_harness.models.yolo.pc2f_mpf import IR_PC2F_LAYERS, FasterBlock, PartialConv, PC2f, PC2fMPFDetectionModel
from mwam_harness.models.yolo.two_stream import FUSION_LAYERS, TwoStreamDetectionModel

HOST = "two_stream_yolov8n_pc2f_mpf"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return models.build(HOST).eval()


def images(batch=2, size=64, seed=0):
    return torch.rand(batch, 6, size, size, generator=torch.Generator().manual_seed(seed))


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_registration_and_parameter_count(model):
    info = models.model_info(HOST)
    assert info.runner == "ultralytics" and "PC2f_MPF_yolov8n.yaml" in info.reference
    assert isinstance(model, PC2fMPFDetectionModel) and isinstance(model, TwoStreamDetectionModel)
    assert count(model) == PARAMETERS == 3_841_967
    assert count(model.rgb_backbone) == 1_272_656, "the RGB stream is YOLOv8n's backbone"
    assert count(model.ir_backbone) == 830_144, "the IR stream has PC2f in place of its four C2f"
    assert count(model.model) == 1_739_167, "the YOLOv8n head for 5 classes, as the plain-add model's"
    per_layer = [count(model.ir_backbone[i]) for i in IR_PC2F_LAYERS]
    assert per_layer == [3_120, 15_872, 62_720, 190_720]
    for index in range(len(model.ir_backbone)):
        rgb, ir = model.rgb_backbone[index], model.ir_backbone[index]
        assert ir.i == rgb.i == index and ir.f == rgb.f == -1
        if index in IR_PC2F_LAYERS:
            assert type(ir) is PC2f and type(rgb).__name__ == "C2f" and len(ir.m) == len(rgb.m)
        else:
            assert type(ir) is type(rgb)
    assert model.stride.tolist() == [8.0, 16.0, 32.0] and model.yaml["channels"] == 6


def test_the_rebuilt_blocks_compute_what_the_fork_does():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 8, 8)
    pconv = PartialConv(32)
    assert pconv.partial_conv3.weight.shape == (8, 8, 3, 3) and pconv.partial_conv3.bias is None
    out = pconv(x)
    assert torch.equal(out[:, 8:], x[:, 8:]), "three quarters of the channels pass unchanged"
    assert torch.allclose(out[:, :8], nn.functional.conv2d(x[:, :8], pconv.partial_conv3.weight, padding=1))
    block = FasterBlock(32).eval()
    assert [n for n, _ in block.named_children()] == ["mlp", "spatial_mixing"]
    mixed = block.spatial_mixing(x)
    assert torch.allclose(block(x), block.mlp[0].act(block.mlp[0].bn(block.mlp[0].conv(mixed)))), "no residual"
    c2f = PC2f(16, 32, n=2).eval()
    assert c2f.c == 16 and c2f.cv1.conv.out_channels == 32 and c2f.cv2.conv.in_channels == 64
    h = torch.randn(1, 16, 8, 8)
    a, b = c2f.cv1(h).chunk(2, 1)
    b1 = c2f.m[0](b)
    expected = c2f.cv2(torch.cat([a, b, b1, c2f.m[1](b1)], 1))
    assert torch.allclose(c2f(h), expected) and torch.allclose(c2f.forward_split(h), expected)


def test_forward_in_train_and_eval_mode(model):
    x = images()
    model.train()
    try:
        out = model(x)
    finally:
        model.eval()
    feats = out["feats"] if isinstance(out, dict) else out
    assert [tuple(f.shape) for f in feats] == [(2, 64, 8, 8), (2, 128, 4, 4), (2, 256, 2, 2)]
    with torch.no_grad():
        predictions = model(x)
    assert predictions[0].shape == (2, 4 + 5, 84)  # 8x8 + 4x4 + 2x2 anchors at 64 px
    assert torch.isfinite(predictions[0]).all()


def test_every_subset_runs_and_the_absent_rules(model):
    x = images(seed=1)
    outputs = {}
    with torch.no_grad():
        for subset in (("rgb",), ("ir",), ("rgb", "ir")):
            with model.use_modalities(subset):
                outputs[subset] = model(x)[0]
        with model.use_modalities(("ir",)):
            other = x.clone()
            other[:, :3] = torch.rand_like(other[:, :3])
            assert torch.equal(model(other)[0], outputs[("ir",)]), "with RGB absent its input must not matter"
            fused = model.fused_features(x)
        expected, h = [], x[:, 3:]
        for layer in model.ir_backbone:
            h = layer(h)
            if layer.i in FUSION_LAYERS:
                expected.append(h)
    assert all(torch.equal(a, b) for a, b in zip(fused, expected, strict=True)), "IR alone: the PC2f stream's maps"
    shapes = {tuple(o.shape) for o in outputs.values()}
    assert shapes == {(2, 9, 84)} and all(torch.isfinite(o).all() for o in outputs.values())
    values = list(outputs.values())
    assert not any(torch.equal(values[i], values[j]) for i in range(3) for j in range(i + 1, 3))
    assert model.present == (True, True)
    black = models.build(HOST, absent="input").eval()
    black.load_state_dict(model.state_dict())
    blank = x.clone()
    blank[:, :3] = 0
    with torch.no_grad(), black.use_modalities(("ir",)):
        assert torch.allclose(black(x)[0], model(blank)[0], atol=1e-5), "'input' feeds the absent stream a black image"


def test_branches_cover_each_stream_specific_parameter_once(model):
    branches = model.branches()
    assert tuple(branches) == ("rgb", "ir")
    assert branches["rgb"] is model.rgb_backbone and branches["ir"] is model.ir_backbone
    ids = {name: {id(p) for p in module.parameters()} for name, module in branches.items()}
    assert not ids["rgb"] & ids["ir"]
    for stream, backbone in (("rgb", model.rgb_backbone), ("ir", model.ir_backbone)):
        for index in IR_PC2F_LAYERS:  # the stream-specific blocks (C2f / PC2f) and every other backbone layer
            block = {id(p) for p in backbone[index].parameters()}
            assert block and block <= ids[stream] and not block & ids[{"rgb": "ir", "ir": "rgb"}[stream]]
    by_prefix = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert by_prefix == {"model", "rgb_backbone", "ir_backbone"}
    head = {id(p) for p in model.model.parameters()}
    assert ids["rgb"] | ids["ir"] | head == {id(p) for p in model.parameters()} and not head & (ids["rgb"] | ids["ir"])
    features = model.feature_branches()
    assert features["ir"] is model.ir_backbone[-1] and features["rgb"] is model.rgb_backbone[-1]


def test_state_dict_and_checkpoint_round_trip(model, tmp_path):
    from ultralytics.nn.tasks import load_checkpoint

    x = images(1, seed=3)
    with torch.no_grad():
        before = model(x)[0]
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert any(".m.0.spatial_mixing.partial_conv3.weight" in key for key in state)
    torch.manual_seed(1)
    fresh = models.build(HOST).eval()
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh(x)[0], before)
    path = tmp_path / "best.pt"
    torch.save({"model": pickle.loads(pickle.dumps(model)), "train_args": {}}, path)
    loaded, _ = load_checkpoint(path)
    assert type(loaded) is PC2fMPFDetectionModel and type(loaded.ir_backbone[2]) is PC2f
    loaded.eval().fuse(verbose=False)
    assert loaded.is_fused() and not hasattr(loaded.ir_backbone[2].m[0].mlp[0], "bn")
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], before, atol=1e-3, rtol=1e-3)
