import numpy as np
import pytest
import torch

from mwam import dct_matrix, frequency_components
from tests.reference import reference_blocks


@pytest.mark.parametrize(
    ("shape", "patch", "window"),
    [
        ((2, 3, 16, 24), 8, 2),
        ((1, 1, 8, 8), 8, 1),
        ((3, 2, 19, 21), 8, 2),  # remainders of 3 and 5 pixels are dropped
        ((1, 3, 16, 16), 8, 4),
        ((1, 3, 16, 16), 8, 6),  # overlapping corners (Table 7, q = 6)
        ((2, 1, 12, 12), 4, 2),
        ((1, 2, 16, 9, 17), 8, 2),  # volume: 8x8x8 cubes
        ((1, 1, 8, 16, 8), 8, 3),
    ],
)
def test_matches_scipy_block_by_block(shape, patch, window):
    x = torch.randn(*shape, dtype=torch.float64)
    low, high = frequency_components(x, patch=patch, window=window)
    ref_low, ref_high = reference_blocks(x.numpy(), patch, window)
    assert low.shape == ref_low.shape and high.shape == ref_high.shape
    np.testing.assert_allclose(low.numpy(), ref_low, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(high.numpy(), ref_high, rtol=1e-10, atol=1e-12)


def test_float32_matches_scipy_and_stays_float32():
    x = torch.randn(2, 3, 32, 40)
    low, high = frequency_components(x)
    assert low.dtype == torch.float32
    ref_low, ref_high = reference_blocks(x.double().numpy(), 8, 2)
    np.testing.assert_allclose(low.numpy(), ref_low, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(high.numpy(), ref_high, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    x = torch.randn(2, 3, 16, 16).to(dtype)
    low, high = frequency_components(x)
    assert low.dtype == torch.float32 and high.dtype == torch.float32
    ref_low, ref_high = frequency_components(x.float())
    torch.testing.assert_close(low, ref_low)
    torch.testing.assert_close(high, ref_high)


def test_reduced_precision_settings_are_ignored_and_restored():
    previous = torch.get_float32_matmul_precision()
    conv = getattr(torch.backends.mkldnn, "conv", None)
    previous_conv = getattr(conv, "fp32_precision", None)
    x = torch.randn(2, 3, 32, 32)
    exact_low, exact_high = frequency_components(x.double())
    try:
        torch.set_float32_matmul_precision("medium")
        if previous_conv is not None:
            conv.fp32_precision = "bf16"
        low, high = frequency_components(x)
        assert torch.get_float32_matmul_precision() == "medium"
        if previous_conv is not None:
            assert conv.fp32_precision == "bf16"
    finally:
        torch.set_float32_matmul_precision(previous)
        if previous_conv is not None:
            conv.fp32_precision = previous_conv
    np.testing.assert_allclose(low.double().numpy(), exact_low.numpy(), atol=1e-5)
    np.testing.assert_allclose(high.double().numpy(), exact_high.numpy(), atol=1e-5)


def test_autocast_does_not_lower_precision():
    x = torch.randn(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, _ = frequency_components(x)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, frequency_components(x)[0])


def test_constant_patch_has_only_dc():
    x = torch.full((1, 1, 8, 8), 3.0, dtype=torch.float64)
    low, high = frequency_components(x)
    assert low[0, 0, 0, 0, 0, 0].item() == pytest.approx(24.0)  # DC of orthonormal 8x8 = 8 * mean
    assert torch.count_nonzero(low.abs() > 1e-12) == 1
    assert torch.all(high.abs() < 1e-12)


def test_input_smaller_than_a_patch_gives_empty_components_and_warns():
    with pytest.warns(UserWarning, match="smaller than one 8-pixel patch"):
        low, high = frequency_components(torch.randn(2, 3, 1, 50))
    assert low.shape == (2, 3, 0, 6, 2, 2) and high.numel() == 0


def test_dct_matrix_is_orthonormal():
    c = dct_matrix(8, torch.float64)
    torch.testing.assert_close(c @ c.T, torch.eye(8, dtype=torch.float64))


@pytest.mark.parametrize(
    ("x", "kwargs", "message"),
    [
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), {}, "floating-point"),
        (torch.zeros(3, 8, 8), {}, "3 dimensions"),
        (np.zeros((1, 1, 8, 8)), {}, "torch.Tensor"),
        (torch.zeros(1, 1, 8, 8), {"patch": 0}, "patch must be"),
        (torch.zeros(1, 1, 8, 8), {"window": 9}, "window must be"),
        (torch.zeros(0, 1, 8, 8), {}, "at least 1"),
    ],
)
def test_wrong_input_is_a_clear_value_error(x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        frequency_components(x, **kwargs)
