"""Inputs that gave misleading weights (issue #25): videos, modalities of unequal size, normalised blank frames,
reduced-precision tensors, and a model cast to bfloat16 around MWAM."""

import warnings

import pytest
import torch
from torch import nn

from mwam import MWAM, MWAMConfig, frm, relative_frm, weight_fn
from mwam import frequency as frequency_module
from tests.toy_host import ToyHost, toy_batch

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def user_warnings(record):
    return [w for w in record if issubclass(w.category, UserWarning)]


# the one-time size warning, expected where an image meets a whole clip (tested on its own below)
unequal_sizes = pytest.mark.filterwarnings("ignore:MWAM. the modalities differ:UserWarning")


def noise(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ defaults unchanged


# Pinned from the code before issue #25 (CPU, one thread): two steps of a default MWAM on toy_batch(seed=0, 1).
PINNED_K = [("0x1.7c191fe4a9e1ap+0", "0x1.0037684c43e28p-1"), ("0x1.7c2e954ecb672p+0", "0x1.0036331803d53p-1")]
PINNED_BANK = [("0x1.98490760e2000p+9", "0x1.2db2afa3c51e0p+18"), ("0x1.523b9c1e1f000p+9", "0x1.de79c0c00a810p+18")]
PINNED_FRM = [("0x1.98490760e2000p+9", "0x1.2db2afa3c51e0p+18"), ("0x1.0c2e30db5c000p+9", "0x1.47a068ee27f20p+19")]


def pinned(values):
    return torch.tensor([float.fromhex(v) for v in values], dtype=torch.float64)


def test_defaults_give_bit_identical_k_bank_and_frm():
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    bank = torch.zeros(2, dtype=torch.float64)
    for seed in range(2):
        x = toy_batch(seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # equal sizes, float32: no new warning either
            mwam.step(x)
        # Eq. 4 per sample, summed (all samples usable: rescale factor exactly 1), Eq. 2, Eq. 6, Eq. 5
        measured = torch.stack([frm(x[m], reduction="none").sum() * (4.0 / torch.tensor(4.0).double()) for m in x])
        bank = measured if seed == 0 else 0.5 * bank + 0.5 * measured
        ones = torch.ones(2, dtype=torch.bool)
        expected_k = weight_fn(relative_frm(measured, ones, bank, ones, "batch", 1e-6))
        torch.testing.assert_close(mwam.last_frm, measured, rtol=0, atol=0)
        torch.testing.assert_close(mwam.bank.value, bank, rtol=0, atol=0)
        torch.testing.assert_close(mwam.weight, expected_k, rtol=0, atol=0)
        # and against the old code's numbers (a different CPU may round the float32 DCT differently)
        torch.testing.assert_close(mwam.weight, pinned(PINNED_K[seed]), rtol=1e-9, atol=0)
        torch.testing.assert_close(mwam.bank.value, pinned(PINNED_BANK[seed]), rtol=1e-6, atol=0)
        torch.testing.assert_close(mwam.last_frm, pinned(PINNED_FRM[seed]), rtol=1e-6, atol=0)


def test_undeclared_5d_input_is_still_a_volume():
    x = {"a": noise(2, 2, 16, 16, 16, seed=1), "b": noise(2, 2, 16, 16, 16, seed=2).cumsum(-1)}
    mwam = MWAM(modalities=("a", "b"), intervention="none")
    mwam.step(x)
    torch.testing.assert_close(mwam.last_frm, torch.stack([frm(x["a"]), frm(x["b"])]), rtol=1e-12, atol=0)


def test_new_options_have_backward_compatible_defaults_and_state():
    cfg = MWAMConfig()
    assert (cfg.layouts, cfg.frame_reduction, cfg.frm_normalisation) == ({}, "sum", "none")
    assert hash(cfg) == hash(MWAMConfig()) and hash(MWAMConfig(layouts={"v": "video"})) is not None
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    mwam.step(toy_batch())
    state = mwam.state_dict()
    assert set(state) == {
        "grad_scale",
        "weight",
        "last_frm",
        "last_relative",
        "last_present",
        "steps",
        "bank.value",
        "bank.initialized",
        "_extra_state",
    }
    # a checkpoint written before these options existed (its saved config lacks them) still loads
    old = dict(state)
    old["_extra_state"] = {
        "modalities": ["rgb", "depth"],
        "config": {
            k: v for k, v in cfg.to_dict().items() if k not in ("layouts", "frame_reduction", "frm_normalisation")
        },
    }
    restored = MWAM(modalities=("rgb", "depth"), intervention="none", frm_normalisation="per_element")
    restored.load_state_dict(old)
    torch.testing.assert_close(restored.bank.value, mwam.bank.value, rtol=0, atol=0)
    host = ToyHost()
    assert MWAM.for_host(host, layouts={"rgb": "image"}).config.layouts == {"rgb": "image"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layouts": ["video"]}, "layouts must be a mapping"),
        ({"layouts": {"rgb": "movie"}}, "layouts\\['rgb'\\] must be one of"),
        ({"layouts": {"": "video"}}, "non-empty strings"),
        ({"layouts": {"thermal": "video"}}, "not among"),
        ({"frame_reduction": "max"}, "frame_reduction must be one of"),
        ({"frm_normalisation": "per_pixel"}, "frm_normalisation must be one of"),
    ],
)
def test_new_options_are_validated(options, message):
    with pytest.raises(ValueError, match=message):
        MWAM(modalities=("rgb", "depth"), intervention="none", **options)


# ------------------------------------------------------------------ 1. videos


@unequal_sizes
def test_short_video_declared_as_video_is_measured_per_frame():
    """T = 4 < p = 8: as a volume no cube fits (FRM 0); as a video each frame is an image."""
    audio = noise(2, 3, 64, 64, seed=1)  # as many Eq. 4 terms per sample as the clip: 3 x 8 x 8 x 4
    frames = noise(2, 3, 4, 32, 32, seed=2)  # (B, C, T, H, W)
    video = MWAM(modalities=("audio", "visual"), intervention="none", layouts={"visual": "video"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        k = video.step({"audio": audio, "visual": frames})
    per_frame = torch.stack([frm(frames[:, :, t], reduction="none") for t in range(4)], dim=1)  # frames as images
    expected = per_frame.sum(dim=1).sum()
    assert video.last_frm[1] > 0
    torch.testing.assert_close(video.last_frm[1], expected, rtol=1e-12, atol=0)
    # white noise in both: T near 1 for both, neither modality pushed to the extreme weights
    f = torch.stack([frm(audio), expected])
    torch.testing.assert_close(k.double(), weight_fn(f / (f.mean() + 1e-6)), rtol=1e-6, atol=1e-7)
    assert torch.all((k > 0.6) & (k < 1.4))

    mean = MWAM(
        modalities=("audio", "visual"), intervention="none", layouts={"visual": "video"}, frame_reduction="mean"
    )
    mean.step({"audio": audio, "visual": frames})
    torch.testing.assert_close(mean.last_frm[1], per_frame.mean(dim=1).sum(), rtol=1e-12, atol=0)


@unequal_sizes
def test_identical_frames_as_image_and_as_video():
    image = noise(3, 3, 16, 24, seed=3)
    clip = image.unsqueeze(2).expand(3, 3, 5, 16, 24)  # the same frame five times
    mwam = MWAM(modalities=("image", "clip"), intervention="none", layouts={"clip": "video"})
    mwam.step({"image": image, "clip": clip})
    torch.testing.assert_close(mwam.last_frm[1], 5 * mwam.last_frm[0], rtol=1e-12, atol=0)


@unequal_sizes
def test_undeclared_short_video_warns_with_the_right_fix(monkeypatch):
    monkeypatch.setattr(frequency_module, "_warned_small", set())
    mwam = MWAM(modalities=("audio", "visual"), intervention="none")
    with pytest.warns(UserWarning, match="layouts=\\{modality: 'video'\\}") as record:
        mwam.step({"audio": noise(2, 1, 32, 32), "visual": noise(2, 3, 4, 32, 32)})
    assert any("transpose(1, 2).flatten(0, 1)" in str(w.message) for w in record)
    assert mwam.last_frm[1] == 0  # unchanged behaviour: read as a volume


def test_declared_layout_must_match_the_tensor():
    mwam = MWAM(modalities=("audio", "visual"), intervention="none", layouts={"visual": "video", "audio": "image"})
    with pytest.raises(ValueError, match="declares 'video' \\(B, C, T, H, W\\)"):
        mwam.step({"audio": noise(2, 1, 16, 16), "visual": noise(2, 3, 16, 16)})
    with pytest.raises(ValueError, match="declares 'image'"):
        mwam.step({"audio": noise(2, 1, 2, 16, 16), "visual": noise(2, 3, 2, 16, 16)})


@unequal_sizes
def test_black_frames_inside_a_video_are_left_out():
    frames = noise(2, 3, 4, 16, 16, seed=4)
    blanked = frames.clone()
    blanked[:, :, 1] = ((0 - IMAGENET_MEAN) / IMAGENET_STD).view(1, 3, 1, 1)  # a black frame, normalised
    mwam = MWAM(modalities=("a", "v"), intervention="none", layouts={"v": "video"})
    mwam.step({"a": noise(2, 1, 16, 16), "v": blanked})
    kept = torch.stack([frm(frames[:, :, t], reduction="none") for t in (0, 2, 3)], dim=1).sum(dim=1).sum()
    torch.testing.assert_close(mwam.last_frm[1], kept * 4 / 3, rtol=1e-12, atol=0)
    assert mwam.last_present.tolist() == [True, True]


# ------------------------------------------------------------------ 2. unequal sizes


def test_per_element_normalisation_makes_sizes_comparable():
    x = noise(4, 1, 32, 32, seed=5)
    inputs = {"small": x, "large": x.repeat(1, 3, 1, 1)}  # the same noise, 3x the elements
    normalised = MWAM(modalities=("small", "large"), intervention="none", frm_normalisation="per_element")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no size warning when normalising
        k = normalised.step(inputs)
    torch.testing.assert_close(k[0], k[1], rtol=1e-6, atol=1e-6)
    terms = 1 * (32 // 8) ** 2 * 2**2
    torch.testing.assert_close(normalised.last_frm[0], frm(x) / terms, rtol=1e-12, atol=0)

    summed = MWAM(modalities=("small", "large"), intervention="none")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(4):
            k = summed.step(inputs)
    sizes = user_warnings(record)
    assert len(sizes) == 1 and "frm_normalisation='per_element'" in str(sizes[0].message)
    assert sizes[0].filename == __file__, "the warning points at the caller of step"
    assert k[0] > k[1] + 0.5, "Eq. 4 summed: the larger modality looks dominant"


# ------------------------------------------------------------------ 3. normalised blanks


def test_imagenet_normalised_black_frame_is_absent():
    torch.manual_seed(0)
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    first = {"rgb": noise(4, 3, 16, 16, seed=6), "depth": noise(4, 3, 16, 16, seed=7).cumsum(-1) / 16}
    mwam.step(first)
    bank = mwam.bank.value.clone()
    black = (torch.zeros(4, 3, 16, 16) - IMAGENET_MEAN) / IMAGENET_STD  # constant per channel, non-zero
    second = {"rgb": black, "depth": noise(4, 3, 16, 16, seed=8).cumsum(-1) / 16}
    k = mwam.step(second)
    assert mwam.last_present.tolist() == [False, True]
    assert mwam.record().present.tolist() == [False, True]
    assert k[0].item() == 1.0 and mwam.bank.value[0] == bank[0], "absent: absent_weight, bank kept"
    # the blank would otherwise read as |DC| / sigma: an enormous FRM, far above the depth's
    assert frm(black) > 1e3 * frm(second["depth"])
    # only the depth is measured; the rgb bank stands in for it in Eq. 6
    f = torch.stack([bank[0], frm(second["depth"])])
    torch.testing.assert_close(k[1].double(), weight_fn(f / (f.mean() + 1e-6))[1], rtol=1e-6, atol=1e-7)


def test_partly_black_batch_and_present_decides():
    x = {"rgb": noise(4, 3, 16, 16, seed=9), "depth": noise(4, 3, 16, 16, seed=10)}
    x["rgb"][1] = ((0 - IMAGENET_MEAN) / IMAGENET_STD)[0]
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    mwam.step(x)
    usable = frm(x["rgb"], reduction="none")[[0, 2, 3]].sum()
    torch.testing.assert_close(mwam.last_frm[0], usable * 4 / 3, rtol=1e-12, atol=0)
    # present= given: it decides, even for the blank sample
    told = MWAM(modalities=("rgb", "depth"), intervention="none")
    told.step(x, present=torch.ones(4, 2, dtype=torch.bool))
    torch.testing.assert_close(told.last_frm[0], frm(x["rgb"], reduction="none").sum(), rtol=1e-12, atol=0)


# ------------------------------------------------------------------ 4. reduced precision


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_inputs_warn_once(dtype):
    x = toy_batch()
    mwam = MWAM(modalities=("rgb", "depth"), intervention="none")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            mwam.step({m: v.to(dtype) for m, v in x.items()})
    found = user_warnings(record)
    assert len(found) == 1 and "before any cast" in str(found[0].message)
    # the FRM is computed from the tensor given
    torch.testing.assert_close(mwam.last_frm[0], frm(x["rgb"].to(dtype), reduction="none").sum(), rtol=0, atol=0)


# ------------------------------------------------------------------ 5. statistics keep their precision


class Parent(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 2)
        self.mwam = MWAM(modalities=("rgb", "depth"), intervention="none")


def test_statistics_stay_float64_when_the_model_is_cast():
    parent = Parent()
    parent.mwam.step(toy_batch())
    before = {n: b.clone() for n, b in parent.mwam.named_buffers()}
    parent.to(torch.bfloat16)
    assert parent.net.weight.dtype == torch.bfloat16
    for name, buffer in parent.mwam.named_buffers():
        assert buffer.dtype == before[name].dtype, name
        assert torch.equal(buffer, before[name]), f"{name} must not be rounded through bfloat16"
    assert parent.mwam.bank.value.dtype == torch.float64 and parent.mwam.weight.dtype == torch.float64
    parent.half()
    parent.bfloat16()
    assert parent.mwam.last_frm.dtype == torch.float64 and parent.mwam.grad_scale.dtype == torch.float32
    # device moves still apply (meta stands in for an accelerator on this CPU-only machine)
    parent.to(device="meta", dtype=torch.bfloat16)
    assert parent.net.weight.device.type == "meta" and parent.net.weight.dtype == torch.bfloat16
    for name, buffer in parent.mwam.named_buffers():
        assert buffer.device.type == "meta" and buffer.dtype == before[name].dtype, name
    # stepping after the cast keeps float64 statistics
    fresh = Parent().to(torch.bfloat16)
    k = fresh.mwam.step(toy_batch())
    assert k.dtype == torch.float32 and fresh.mwam.bank.value.dtype == torch.float64
    torch.testing.assert_close(fresh.mwam.bank.value, before["bank.value"], rtol=0, atol=0)
