import numpy as np
import pytest
import torch

from mwam import FRM_RULES, frequency_components, frm, frm_terms
from tests.reference import reference_frm


@pytest.mark.parametrize("rule", FRM_RULES)
@pytest.mark.parametrize("shape", [(2, 3, 16, 24), (1, 2, 16, 8, 16)])
def test_each_rule_matches_reference(rule, shape):
    x = torch.randn(*shape, dtype=torch.float64)
    value = frm(x, rule=rule)
    assert value.dtype == torch.float64 and value.ndim == 0
    assert value.item() == pytest.approx(reference_frm(x.numpy(), rule=rule), rel=1e-9)


@pytest.mark.parametrize("rule", FRM_RULES)
def test_per_sample_reduction_sums_to_total(rule):
    x = torch.randn(4, 3, 24, 24, dtype=torch.float64)
    per_sample = frm(x, rule=rule, reduction="none")
    assert per_sample.shape == (4,)
    np.testing.assert_allclose(per_sample.numpy(), reference_frm(x.numpy(), rule=rule, per_sample=True), rtol=1e-9)
    assert per_sample.sum().item() == pytest.approx(frm(x, rule=rule).item(), rel=1e-12)


def test_window_patch_sigma_and_omega_are_honoured():
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    for q in (1, 4, 6):
        assert frm(x, window=q).item() == pytest.approx(reference_frm(x.numpy(), window=q), rel=1e-9)
    assert frm(x, patch=4).item() == pytest.approx(reference_frm(x.numpy(), patch=4), rel=1e-9)
    assert frm(x, sigma=0.5).item() == pytest.approx(reference_frm(x.numpy(), sigma=0.5), rel=1e-9)
    got = frm(x, rule="weighted_sum", omega=0.3).item()
    assert got == pytest.approx(reference_frm(x.numpy(), rule="weighted_sum", omega=0.3), rel=1e-9)


def test_float32_input_matches_float64_reference():
    x = torch.randn(2, 3, 32, 32)
    # ratio terms amplify rounding where high ~ 0: compare a rule without division tightly, the ratio loosely
    assert frm(x, rule="low_l1").item() == pytest.approx(reference_frm(x.double().numpy(), rule="low_l1"), rel=1e-5)
    assert frm(x).item() == pytest.approx(reference_frm(x.double().numpy()), rel=1e-2)


def test_smooth_modality_has_larger_frm_than_noisy_one():
    torch.manual_seed(0)
    noisy = torch.randn(4, 3, 64, 64)
    smooth = torch.linspace(-1, 1, 64).view(1, 1, 1, 64).expand(4, 3, 64, 64) + 0.01 * torch.randn(4, 3, 64, 64)
    assert frm(smooth) > 10 * frm(noisy)


def test_map_pairing_mirrors_the_patch_grid():
    x = torch.randn(1, 1, 16, 24, dtype=torch.float64)
    low, high = frequency_components(x)
    expected = (low / (high.flip(2, 3) + 1e-6)).abs().sum()
    assert frm(x, pairing="map").item() == pytest.approx(expected.item(), rel=1e-12)
    assert frm(x, pairing="map").item() != pytest.approx(frm(x).item(), rel=1e-6)


def test_zero_denominator_is_guarded():
    low = torch.tensor([[[[2.0]]]])
    high = torch.tensor([[[[-1e-6]]]])
    terms = frm_terms(low, high, sigma=1e-6)
    assert torch.isfinite(terms).all() and terms.item() == pytest.approx(2.0 / 1e-6)


def test_overflowing_terms_saturate_instead_of_becoming_inf():
    low = torch.tensor([[[[3e38]]]])
    high = torch.tensor([[[[0.0]]]])
    assert frm_terms(low, high).item() == torch.finfo(torch.float32).max


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "median"}, "rule must be"),
        ({"reduction": "mean"}, "reduction must be"),
        ({"sigma": 0.0}, "sigma must be"),
        ({"rule": "weighted_sum", "omega": 2.0}, "omega must be"),
        ({"pairing": "global"}, "pairing must be"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        frm(torch.randn(1, 1, 8, 8), **kwargs)
