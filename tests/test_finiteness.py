"""Property test: FRM and the weights stay finite over thousands of random, degenerate inputs."""

import math
import warnings

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwam import FRM_RULES, MWAM, frm

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
# the largest magnitude each dtype can hold whose 8x8 DCT still fits the compute dtype (see mwam.frequency_ratio)
MAX_EXPONENT = {torch.float16: 4, torch.bfloat16: 36, torch.float32: 36, torch.float64: 300}


@st.composite
def image_batches(draw):
    dtype = draw(st.sampled_from(DTYPES))
    batch = draw(st.integers(1, 3))
    channels = draw(st.integers(1, 3))
    height = draw(st.sampled_from([1, 2, 7, 8, 9, 16, 17]))
    width = draw(st.sampled_from([1, 8, 13, 16, 24]))
    pattern = draw(st.sampled_from(["normal", "zeros", "constant", "checkerboard", "minus_sigma", "ramp", "spikes"]))
    exponent = draw(st.integers(-30, MAX_EXPONENT[dtype]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    shape = (batch, channels, height, width)
    scale = 10.0**exponent
    if pattern == "normal":
        x = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    elif pattern == "zeros":
        x = torch.zeros(shape, dtype=torch.float64)
    elif pattern == "constant":
        x = torch.full(shape, scale, dtype=torch.float64)
    elif pattern == "checkerboard":
        grid = torch.arange(height).view(-1, 1) + torch.arange(width).view(1, -1)
        x = ((grid % 2) * 2 - 1).to(torch.float64).expand(shape) * scale
    elif pattern == "minus_sigma":
        x = torch.full(shape, -1e-6, dtype=torch.float64)
    elif pattern == "ramp":
        x = torch.linspace(-scale, scale, width, dtype=torch.float64).expand(shape).clone()
    else:
        x = torch.zeros(shape, dtype=torch.float64)
        x.view(-1)[torch.randint(0, x.numel(), (3,), generator=g)] = scale
    limit = torch.finfo(dtype).max / 8
    return x.clamp(-limit, limit).to(dtype)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=image_batches(), rule=st.sampled_from(FRM_RULES), per_sample=st.booleans())
def test_frm_is_always_finite(x, rule, per_sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # inputs smaller than a patch
        value = frm(x, rule=rule, reduction="none" if per_sample else "sum")
    assert value.dtype == torch.float64
    assert torch.isfinite(value).all(), (rule, x.dtype, x.shape)
    assert (value >= 0).all()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.tuples(image_batches(), image_batches()), min_size=1, max_size=4),
    t_rule=st.sampled_from(["batch", "bank"]),
    soft_start=st.booleans(),
)
def test_weights_are_always_finite_and_within_bounds(batches, t_rule, soft_start):
    mwam = MWAM(modalities=("a", "b"), intervention="none", t_rule=t_rule, soft_start=soft_start)
    for a, b in batches:
        size = min(a.shape[0], b.shape[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            k = mwam.step({"a": a[:size], "b": b[:size]})
        assert torch.isfinite(k).all()
        assert ((k >= 0.5 - 1e-6) & (k <= 1.5 + 1e-6)).all()
        record = mwam.record()
        for tensor in (record.frm, record.bank, record.relative):
            assert torch.isfinite(tensor).all()
        assert not math.isnan(float(k.sum()))
