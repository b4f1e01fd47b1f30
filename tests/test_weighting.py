import math

import pytest
import torch

from mwam import relative_frm, weight_fn


def eq5(t, alpha=1.5, beta=1.0, lam=6.0, gamma=0.7):
    return alpha - beta / (1.0 + math.exp(-lam * (t - gamma)))


@pytest.mark.parametrize("t", [0.0, 0.3, 0.7, 1.0, 1.5, 2.0, 3.0])
def test_weight_fn_matches_eq5_for_floats_and_tensors(t):
    assert weight_fn(t) == pytest.approx(eq5(t), abs=1e-15)
    tensor = weight_fn(torch.tensor([t], dtype=torch.float64))
    assert tensor.item() == pytest.approx(eq5(t), abs=1e-12)


def test_weight_fn_known_values_and_parameters():
    assert weight_fn(0.7) == pytest.approx(1.0)  # the midpoint: alpha - beta / 2
    assert weight_fn(1.0, alpha=1.5, beta=1.0, lam=10.0, gamma=1.0) == pytest.approx(1.0)
    assert weight_fn(0.0, 2.0, 1.5, 6.5, 1.3) == pytest.approx(eq5(0.0, 2.0, 1.5, 6.5, 1.3))
    t = torch.linspace(0, 2, 50, dtype=torch.float64)
    k = weight_fn(t)
    assert torch.all(k[1:] < k[:-1]), "K must decrease as T grows"
    assert torch.all((k > 0.5) & (k < 1.5))


def test_weight_fn_is_finite_for_extreme_t():
    t = torch.tensor([-1e308, -1e30, 0.0, 1e30, 1e308, float("inf"), -float("inf")], dtype=torch.float64)
    k = weight_fn(t)
    assert torch.isfinite(k).all()
    assert k[0].item() == pytest.approx(1.5) and k[4].item() == pytest.approx(0.5)
    assert weight_fn(1e300) == pytest.approx(0.5) and weight_fn(-1e300) == pytest.approx(1.5)


@pytest.mark.parametrize(
    "params",
    [
        (0.5, 1.0, 6.0, 0.7),
        (1.5, -1.0, 6.0, 0.7),
        (1.5, 1.0, -6.0, 0.7),
        (float("nan"), 1.0, 6.0, 0.7),
        (0.0, 0.0, 6.0, 0.7),
    ],
)
def test_weight_fn_rejects_parameters_that_allow_non_positive_weights(params):
    with pytest.raises(ValueError):
        weight_fn(1.0, *params)


def test_relative_frm_batch_rule_is_eq6():
    current = torch.tensor([2.0, 4.0, 6.0], dtype=torch.float64)
    all_valid = torch.ones(3, dtype=torch.bool)
    bank = torch.tensor([100.0, 100.0, 100.0], dtype=torch.float64)
    t = relative_frm(current, all_valid, bank, all_valid, rule="batch", sigma=0.0 + 1e-6)
    expected = current / (current.mean() + 1e-6)
    torch.testing.assert_close(t, expected)


def test_relative_frm_bank_rule_divides_by_bank_mean():
    current = torch.tensor([2.0, 4.0], dtype=torch.float64)
    bank = torch.tensor([1.0, 3.0], dtype=torch.float64)
    valid = torch.ones(2, dtype=torch.bool)
    t = relative_frm(current, valid, bank, valid, rule="bank")
    torch.testing.assert_close(t, current / (2.0 + 1e-6))


def test_absent_modality_is_replaced_by_its_bank_value():
    current = torch.tensor([2.0, 0.0, 6.0], dtype=torch.float64)
    valid = torch.tensor([True, False, True])
    bank = torch.tensor([1.0, 4.0, 5.0], dtype=torch.float64)
    t = relative_frm(current, valid, bank, torch.ones(3, dtype=torch.bool), rule="batch")
    effective = torch.tensor([2.0, 4.0, 6.0], dtype=torch.float64)
    torch.testing.assert_close(t, effective / (4.0 + 1e-6))


def test_modality_without_reading_or_bank_gets_zero_and_is_left_out_of_the_mean():
    current = torch.tensor([2.0, float("nan"), 4.0], dtype=torch.float64)
    valid = torch.tensor([True, False, True])
    bank_valid = torch.tensor([True, False, True])
    t = relative_frm(current, valid, torch.zeros(3, dtype=torch.float64), bank_valid)
    torch.testing.assert_close(t, torch.tensor([2 / (3 + 1e-6), 0.0, 4 / (3 + 1e-6)], dtype=torch.float64))


def test_many_modalities():
    current = torch.arange(1.0, 9.0, dtype=torch.float64)
    valid = torch.ones(8, dtype=torch.bool)
    t = relative_frm(current, valid, current, valid)
    assert t.mean().item() == pytest.approx(1.0, rel=1e-6)
