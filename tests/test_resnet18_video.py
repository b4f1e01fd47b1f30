"""The UCF-101 video host ``resnet18_concat_video`` (Table 11): clips (B, C, T, H, W) with the frames folded into the
batch, the time-mean of the spatially pooled features equal to BalanceBenchmark's 3-D average pooling, the pinned
parameter count, zeroed features for missing modalities, per-modality logits, MWAM reading both inputs as ``video``
through the host's ``input_layouts()`` (the plug-in), the FRM normalisation check behind the preset's choice
(docs/balancing.md, "UCF-101 video host") and the step benchmark at a tiny size."""

import json
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from mwam import MWAM
from mwam_harness import models
from reproduce.methods.mwam.plugin import MWAMPlugin
from scripts.bench_video import main as bench_main

NAME = "resnet18_concat_video"
MODALITIES = ("video", "flow")


@pytest.fixture(scope="module")
def host():
    torch.manual_seed(0)
    return models.build(NAME).eval()


def clips(batch=2, frames=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(batch, 3, frames, size, size, generator=g),
            "flow": torch.randn(batch, 2, frames, size, size, generator=g)}  # fmt: skip


def masks(batch):
    rows = [[True, True], [True, False], [False, True]]
    uniform = [torch.tensor([row] * batch) for row in rows]
    mixed = torch.tensor([rows[i % 3] for i in range(batch)])
    return [*uniform, mixed]


def test_defaults_shapes_and_layouts(host):
    assert host.modalities == MODALITIES and host.channels == {"video": 3, "flow": 2}
    assert host.head.out_features == 101 and host.input_layouts() == {"video": "video", "flow": "video"}
    x = clips(batch=2, frames=3)
    with torch.no_grad():
        out = host(x)
    assert out.logits.shape == (2, 101)
    assert {m: tuple(f.shape) for m, f in out.features.items()} == {"video": (2, 512), "flow": (2, 512)}
    assert {m: tuple(v.shape) for m, v in host.example_inputs(2).items()} == {
        "video": (2, 3, 2, 32, 32), "flow": (2, 2, 2, 32, 32)}  # fmt: skip
    with pytest.raises(ValueError, match="channels before time"):  # (B, T, C, H, W) by mistake
        host({"video": clips(frames=4)["video"].transpose(1, 2), "flow": x["flow"]})
    with pytest.raises(ValueError, match="channels before time"):  # a 4-D image
        host({"video": x["video"][:, :, 0], "flow": x["flow"]})
    other = models.build(NAME, modalities=("rgb", "flow"), channels={"rgb": 3, "flow": 2}, num_classes=5)
    assert other.input_layouts() == {"rgb": "video", "flow": "video"} and other.head.out_features == 5
    with pytest.raises(ValueError, match="resnet18_concat_video needs distinct modalities"):
        models.build(NAME, modalities=("video", "video"))


def test_time_mean_of_spatial_pools_is_the_3d_average_pool(host):
    """BalanceBenchmark: frames folded into the batch, the (B, 512, T, h, w) map average-pooled over T x h x w."""
    x = clips(batch=2, frames=3, size=64)
    for m in MODALITIES:
        encoder = host.encoders[m]
        batch, channels, frames = x[m].shape[:3]
        with torch.no_grad():
            ours = encoder(x[m])
            folded = x[m].permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, 64, 64)
            maps = encoder.trunk.forward_features(folded)  # (B*T, 512, 2, 2)
            volume = maps.view(batch, frames, *maps.shape[1:]).permute(0, 2, 1, 3, 4)  # (B, 512, T, h, w)
            theirs = F.adaptive_avg_pool3d(volume, 1).flatten(1)
        assert volume.shape == (2, 512, 3, 2, 2) and ours.shape == (2, 512)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
        one = x[m][:1]  # frames of one clip do not mix with another clip's
        with torch.no_grad():
            torch.testing.assert_close(encoder(one), ours[:1], rtol=1e-5, atol=1e-6)


def test_parameter_count_is_pinned_and_the_flow_encoder_is_smaller(host):
    info = models.model_info(NAME)
    counts = {m: sum(p.numel() for p in branch.parameters()) for m, branch in host.branches().items()}
    assert counts == {"video": 11_176_512, "flow": 11_176_512 - 64 * 7 * 7}
    assert sum(p.numel() for p in host.head.parameters()) == 1024 * 101 + 101
    assert sum(p.numel() for p in host.parameters()) == info.parameters == 22_453_413 and info.reference


def test_missing_modalities_are_zeroed_features_and_slices_sum_to_the_logits(host):
    x = clips(batch=3, seed=1)
    with torch.no_grad():
        features = host.encode(x)
        for mask in masks(3):
            out = host(x, mask)
            zeroed = torch.cat([features[m] * mask[:, i, None] for i, m in enumerate(MODALITIES)], dim=1)
            torch.testing.assert_close(out.logits, host.head(zeroed), rtol=1e-5, atol=1e-5)
            assert torch.equal(out.present, mask)
            for i, m in enumerate(MODALITIES):
                assert torch.equal(out.features[m][~mask[:, i]], torch.zeros_like(out.features[m][~mask[:, i]]))
            total = out.modality_logits["video"] + out.modality_logits["flow"]
            torch.testing.assert_close(total, out.logits, rtol=1e-5, atol=1e-5)


def test_sum_fusion_reuses_resnet18_concat():
    torch.manual_seed(0)
    host = models.build(NAME, fusion="sum").eval()
    assert sum(p.numel() for p in host.parameters()) == 22_453_413 + 101
    x = clips(batch=2, seed=2)
    with torch.no_grad():
        out = host(x)
        for m in MODALITIES:
            torch.testing.assert_close(out.modality_logits[m], host.heads[m](host.encoders[m](x[m])))
    torch.testing.assert_close(out.modality_logits["video"] + out.modality_logits["flow"], out.logits)


def _plugin(host, intervention="grad", options=None):
    plugin = MWAMPlugin(intervention, options)
    plugin.setup(SimpleNamespace(host=host, device=torch.device("cpu")), {})
    return plugin


def test_the_mwam_plugin_reads_the_host_layouts_and_a_run_may_override_them(host):
    assert _plugin(host, "none").mwam.config.layouts == {"video": "video", "flow": "video"}
    override = _plugin(host, "none", {"layouts": {"flow": "volume"}}).mwam.config.layouts
    assert override == {"video": "video", "flow": "volume"}
    plain = models.build("resnet18_concat")  # an image host declares nothing: MWAM reads inputs by rank, as before
    assert plain.input_layouts() == {} and _plugin(plain, "none").mwam.config.layouts == {}


def test_mwam_on_video_runs_a_step_and_scales_each_branch_gradient_by_its_k():
    torch.manual_seed(0)
    host = models.build(NAME, num_classes=4).train()
    x, labels = clips(batch=2, frames=2, size=32, seed=3), torch.tensor([0, 3])

    def gradients():
        host.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        F.cross_entropy(host(x).logits, labels).backward()
        return {name: p.grad.clone() for name, p in host.named_parameters()}

    before = {k: v.clone() for k, v in host.state_dict().items()}
    plain = gradients()
    host.load_state_dict(before)  # BatchNorm's running statistics as before
    plugin = _plugin(host)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clip read as a volume would warn (T < patch: no 8 x 8 x 8 cube fits)
        warnings.filterwarnings("ignore", message="MWAM: the modalities differ in size")
        plugin.before_forward(None, x)
    mwam = plugin.mwam
    k = dict(zip(MODALITIES, mwam.grad_scale.tolist(), strict=True))
    assert all(torch.isfinite(mwam.grad_scale)) and (mwam.last_frm > 0).all() and k["video"] != k["flow"]
    scaled = gradients()
    for name, grad in plain.items():
        factor = k[name.split(".")[1]] if name.startswith("encoders.") else 1.0
        torch.testing.assert_close(scaled[name], grad * factor, rtol=1e-4, atol=1e-7, msg=name)
    mwam.remove_hooks()


def test_frm_normalisation_check_three_channels_against_two():
    """The same content in both modalities (every channel the same random-spectrum frames): summed (``none``, the
    paper's), the 3-channel video's FRM is exactly 1.5 x the 2-channel flow's and K differs; ``per_element``
    compares the mean Eq. 4 term and both get the same K (docs/balancing.md, "UCF-101 video host")."""
    g = torch.Generator().manual_seed(4)
    frames = F.avg_pool2d(torch.randn(4 * 3, 1, 64, 64, generator=g), 3, 1, 1) + 0.3 * torch.randn(
        4 * 3, 1, 64, 64, generator=g
    )
    content = frames.view(4, 3, 1, 64, 64).transpose(1, 2)  # (B, 1, T, H, W)
    x = {m: content.expand(-1, c, -1, -1, -1).contiguous() for m, c in (("video", 3), ("flow", 2))}
    results = {}
    for normalisation in ("none", "per_element"):
        mwam = MWAM(MODALITIES, intervention="none", layouts=dict.fromkeys(MODALITIES, "video"),
                    frm_normalisation=normalisation)  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            k = mwam.step(x)
        sizes = [w for w in caught if "differ in size" in str(w.message)]
        assert bool(sizes) == (normalisation == "none")  # MWAM says so itself under the sum
        results[normalisation] = (float(mwam.last_frm[0] / mwam.last_frm[1]), k.tolist())
    ratio, (k_video, k_flow) = results["none"]
    assert ratio == pytest.approx(1.5, rel=1e-9)
    assert k_video == pytest.approx(0.5474, abs=1e-4) and k_flow == pytest.approx(0.8543, abs=1e-4)  # T 1.2 / 0.8
    ratio, (k_video, k_flow) = results["per_element"]
    assert ratio == pytest.approx(1.0, rel=1e-9) and k_video == pytest.approx(k_flow, rel=1e-6)
    assert k_video == pytest.approx(0.6419, abs=1e-4)  # T = 1 for both


def test_step_benchmark_at_a_tiny_size(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--device", "cpu", "--batch", "2", "--frames", "2", "--size", "32", "--rounds", "1", "--warmup", "0"]
    assert bench_main([*argv, "--threads", "1", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report == json.loads(out.read_text()) and report["benchmark"] == "video_step"
    assert report["host"] == NAME and report["parameters"] == 22_453_413 and "cuda" not in report
    cpu = report["cpu"]
    assert (cpu["batch"], cpu["frames"], cpu["size"], cpu["threads"]) == (2, 2, 32, 1)
    assert cpu["clip_shapes"] == {"video": [3, 2, 32, 32], "flow": [2, 2, 32, 32]}
    assert cpu["mwam_layouts"] == {"video": "video", "flow": "video"} and cpu["precision"] == "fp32"
    assert cpu["measurement"].startswith("interleaved, 1 round (order rotated each round), warm-up 0 discarded")
    for key in ("train_step_ms", "train_step_mwam_ms", "mwam_step_ms"):
        assert cpu[key]["n"] == 1 and cpu[key]["median_ms"] > 0, key
    assert 0 < cpu["mwam_share_of_step"] < 1 and cpu["mwam_over_plain_paired"]["median"] > 0
    assert cpu["clips_per_s"] > 0 and cpu["frames_per_s"] == pytest.approx(2 * cpu["clips_per_s"])
    assert all(0 < k < 2 for k in cpu["first_k"].values())


def test_mwam_for_host_takes_the_hosts_layouts_unless_given():
    host = models.build("resnet18_concat_video", num_classes=5)
    assert MWAM.for_host(host).config.layouts == {"video": "video", "flow": "video"}
    given = MWAM.for_host(host, layouts={"video": "volume"}).config.layouts
    assert given == {"video": "volume", "flow": "video"}  # per modality, as the MWAM plug-in merges them
