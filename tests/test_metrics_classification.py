import math
from typing import ClassVar

import pytest
import torch

from reproduce.metrics import METRICS, BinaryAccuracy, TaskMetric, build_metric

# 4 bona fide (label 1): 3 accepted, 1 rejected; 6 attacks (label 0): 2 accepted as bona fide, 4 rejected.
TARGETS = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
PREDICTED = torch.tensor([1, 1, 1, 0, 1, 1, 0, 0, 0, 0])


def _logits(labels: torch.Tensor) -> torch.Tensor:
    return torch.stack([-labels.float() * 2 + 1, labels.float() * 2 - 1], dim=1) * 3.0


def test_hand_computed_confusion_matrix():
    metric = BinaryAccuracy()
    metric.update(PREDICTED, TARGETS)
    assert metric.confusion_matrix.tolist() == [[4, 2], [1, 3]]  # rows: attack, bona fide
    out = metric.compute()
    assert out["acc"] == pytest.approx(70.0)  # (TP 3 + TN 4) / 10, Eq. 22
    assert out["apcer"] == pytest.approx(100 * 2 / 6)  # attacks accepted as bona fide / attacks
    assert out["npcer"] == pytest.approx(25.0)  # bona fide rejected / bona fide
    assert out["acer"] == pytest.approx((100 * 2 / 6 + 25.0) / 2)
    assert metric.primary_value() == out["acc"]


def test_logits_and_batches_give_the_same_counts():
    metric = BinaryAccuracy()
    for lo, hi in [(0, 3), (3, 7), (7, 10)]:
        metric.update(_logits(PREDICTED[lo:hi]), TARGETS[lo:hi])
    assert metric.confusion_matrix.tolist() == [[4, 2], [1, 3]]
    assert metric.compute()["acc"] == pytest.approx(70.0)


def test_absent_class_gives_nan_not_a_division_by_zero():
    metric = BinaryAccuracy()
    metric.update(torch.tensor([1, 0, 1]), torch.tensor([1, 1, 1]))  # no attack sample
    out = metric.compute()
    assert math.isnan(out["apcer"]) and math.isnan(out["acer"])
    assert out["npcer"] == pytest.approx(100 / 3) and out["acc"] == pytest.approx(200 / 3)
    metric.reset()
    metric.update(torch.tensor([0, 0]), torch.tensor([0, 0]))  # no bona fide sample
    out = metric.compute()
    assert out["apcer"] == 0.0 and math.isnan(out["npcer"]) and math.isnan(out["acer"]) and out["acc"] == 100.0


def test_empty_and_reset():
    metric = BinaryAccuracy()
    assert all(math.isnan(v) for v in metric.compute().values())
    metric.update(PREDICTED, TARGETS)
    metric.reset()
    assert all(math.isnan(v) for v in metric.compute().values())


def test_invalid_inputs_are_rejected():
    metric = BinaryAccuracy()
    with pytest.raises(ValueError, match="0 \\(attack\\) or 1"):
        metric.update(torch.tensor([0, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="0 \\(attack\\) or 1"):
        metric.update(torch.tensor([0, 1]), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="predictions for"):
        metric.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="logits"):
        metric.update(torch.tensor([0.3, 0.9]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="logits"):
        metric.update(torch.zeros(2, 3), torch.tensor([0, 1]))


@pytest.mark.gpu
def test_cuda_tensors():
    metric = BinaryAccuracy()
    metric.update(_logits(PREDICTED).cuda(), TARGETS.cuda())
    metric.update(PREDICTED, TARGETS)  # a later batch on another device joins the same counts
    assert metric.confusion_matrix.tolist() == [[8, 4], [2, 6]]


def test_registry_and_protocol():
    assert set(METRICS) == {"acc", "dice_brats", "miou", "map50"}
    metric = build_metric("acc")
    assert isinstance(metric, BinaryAccuracy) and isinstance(metric, TaskMetric)
    assert (metric.primary, metric.display_name, metric.higher_is_better) == ("acc", "Acc", True)
    with pytest.raises(ValueError, match="acc, dice_brats, map50, miou"):
        build_metric("f1")


def test_a_metric_must_name_its_primary_value():
    with pytest.raises(TypeError, match="primary"):

        class Incomplete(TaskMetric):  # pragma: no cover - the class statement itself raises
            display_name: ClassVar[str] = "X"
            higher_is_better: ClassVar[bool] = True
