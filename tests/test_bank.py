import pytest
import torch

from mwam import FRMBank


def test_eq2_first_value_then_exponential_smoothing():
    bank = FRMBank(["a", "b"], momentum=0.5)
    bank.update(torch.tensor([4.0, 8.0]))
    torch.testing.assert_close(bank.value, torch.tensor([4.0, 8.0], dtype=torch.float64))
    bank.update(torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(bank.value, torch.tensor([3.0, 4.0], dtype=torch.float64))
    bank.update(torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(bank.value, torch.tensor([3.0, 4.0], dtype=torch.float64))


def test_momentum_is_weight_of_history():
    bank = FRMBank(1, momentum=0.9)
    bank.update(torch.tensor([10.0]))
    bank.update(torch.tensor([0.0]))
    assert bank.value.item() == pytest.approx(9.0)


def test_soft_start_as_in_released_code():
    bank = FRMBank(1, momentum=0.5, soft_start=True)
    bank.update(torch.tensor([10.0]))
    assert bank.value.item() == pytest.approx(5.0)
    bank.update(torch.tensor([10.0]))
    assert bank.value.item() == pytest.approx(7.5)


def test_absent_or_non_finite_readings_do_not_poison_the_bank():
    bank = FRMBank(3)
    bank.update(torch.tensor([1.0, 2.0, 3.0]))
    used = bank.update(torch.tensor([float("nan"), float("inf"), 5.0]))
    assert used.tolist() == [False, False, True]
    torch.testing.assert_close(bank.value, torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    used = bank.update(torch.tensor([7.0, 7.0, 7.0]), valid=torch.tensor([False, True, False]))
    torch.testing.assert_close(bank.value, torch.tensor([1.0, 4.5, 4.0], dtype=torch.float64))


def test_a_modality_first_seen_late_starts_from_its_first_reading():
    bank = FRMBank(2)
    bank.update(torch.tensor([1.0, 0.0]), valid=torch.tensor([True, False]))
    assert bank.initialized.tolist() == [True, False]
    bank.update(torch.tensor([1.0, 6.0]))
    torch.testing.assert_close(bank.value, torch.tensor([1.0, 6.0], dtype=torch.float64))


def test_state_dict_round_trip_and_reset():
    bank = FRMBank(2)
    bank.update(torch.tensor([1.0, 2.0]))
    restored = FRMBank(2)
    restored.load_state_dict(bank.state_dict())
    for b in (bank, restored):
        b.update(torch.tensor([3.0, 3.0]))
    torch.testing.assert_close(bank.value, restored.value)
    bank.reset()
    assert not bank.initialized.any() and bank.value.abs().sum() == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="momentum"):
        FRMBank(2, momentum=1.5)
    with pytest.raises(ValueError, match="at least one"):
        FRMBank(0)
    with pytest.raises(ValueError, match="one per modality"):
        FRMBank(2).update(torch.ones(3))
