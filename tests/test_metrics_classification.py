import math
from typing import ClassVar

import pytest
import torch

from reproduce.metrics import BinaryAccuracy, MulticlassAccuracy, TaskMetric

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


def test_protocol():
    metric = BinaryAccuracy()
    assert isinstance(metric, TaskMetric)
    assert (metric.primary, metric.display_name) == ("acc", "Acc")
    assert metric.primary in metric.compute()


def test_a_metric_must_name_its_primary_value():
    with pytest.raises(TypeError, match="primary"):

        class Incomplete(TaskMetric):  # pragma: no cover - the class statement itself raises
            display_name: ClassVar[str] = "X"


# ---------------------------------------------------------------- multi-class accuracy

# Four classes, top-2. Class 3 has no sample but is predicted once (sample 3).
MC_TARGETS = torch.tensor([0, 0, 1, 1, 2])
MC_LOGITS = torch.tensor(
    [
        [3.0, 1.0, 0.0, 0.0],  # argmax 0: hit
        [1.0, 3.0, 0.0, 0.0],  # argmax 1: miss; class 0 ranks second: top-2 hit
        [0.0, 1.0, 2.0, 3.0],  # argmax 3: miss; class 1 ranks third: top-2 miss
        [0.0, 5.0, 0.0, 0.0],  # hit
        [0.0, 0.0, 1.0, 0.0],  # hit
    ]
)


@pytest.fixture(scope="module")
def reference_accuracy():
    """torchmetrics' MulticlassAccuracy (imported once: the import takes seconds)."""
    from torchmetrics.classification import MulticlassAccuracy as Reference

    return Reference


def test_multiclass_hand_computed(reference_accuracy):
    metric = MulticlassAccuracy(4, top_k=2)
    metric.update(MC_LOGITS[:2], MC_TARGETS[:2])
    metric.update(MC_LOGITS[2:], MC_TARGETS[2:])
    assert metric.confusion_matrix.tolist() == [[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0]]
    per_class = metric.per_class_acc()
    assert per_class[:3].tolist() == [0.5, 0.5, 1.0] and math.isnan(per_class[3])
    out = metric.compute()
    assert out == {"acc": 60.0, "top2": 80.0, "mean_class_acc": pytest.approx(100 * 2 / 3)}
    assert (metric.primary, metric.display_name) == ("acc", "Acc") and isinstance(metric, TaskMetric)
    # torchmetrics' macro average counts the predicted-but-absent class 3 as recall 0: (0.5 + 0.5 + 1 + 0) / 4.
    assert reference_accuracy(num_classes=4, average="macro")(MC_LOGITS, MC_TARGETS).item() == pytest.approx(0.5)


def test_multiclass_ties_go_to_the_lower_class_index():
    metric = MulticlassAccuracy(6, top_k=3)
    metric.update(torch.zeros(4, 6), torch.tensor([0, 2, 3, 5]))  # all logits tied: ranking 0, 1, 2, 3, ...
    out = metric.compute()
    assert out["acc"] == 25.0  # argmax picks class 0
    assert out["top3"] == 50.0  # classes 0 and 2 are among the first three
    assert metric.confusion_matrix[:, 0].sum() == 4


def test_multiclass_top_k_key_only_below_num_classes():
    assert set(MulticlassAccuracy(120).compute()) == {"acc", "top5", "mean_class_acc"}
    metric = MulticlassAccuracy(5, top_k=5)  # every sample would be a top-5 hit
    metric.update(MC_LOGITS[:, :4].repeat(1, 2)[:, :5], MC_TARGETS)
    assert set(metric.compute()) == {"acc", "mean_class_acc"} and not metric.reports_top_k


def test_multiclass_empty_and_reset():
    metric = MulticlassAccuracy(4, top_k=2)
    assert all(math.isnan(v) for v in metric.compute().values())
    metric.update(MC_LOGITS, MC_TARGETS)
    metric.reset()
    assert all(math.isnan(v) for v in metric.compute().values())
    assert int(metric.state()["topk_hits"]) == 0


@pytest.mark.parametrize("num_classes", [101, 120])
def test_multiclass_against_torchmetrics(num_classes, reference_accuracy):
    Reference = reference_accuracy
    generator = torch.Generator().manual_seed(num_classes)
    targets = torch.randint(0, num_classes - 10, (400,), generator=generator)  # the last ten classes: no sample
    logits = torch.randn(400, num_classes, generator=generator)
    boost = torch.rand(400, generator=generator) < 0.5  # about half the samples are easy
    logits[boost, targets[boost]] += 3.0
    predicted = logits.argmax(dim=1)
    present = torch.unique(targets)
    absent = torch.tensor([c for c in range(num_classes) if c not in set(present.tolist())])
    predicted_absent = int(torch.isin(absent, predicted).sum())
    assert absent.numel() >= 10 and predicted_absent > 0  # some absent classes are predicted: macro averages differ

    metric = MulticlassAccuracy(num_classes, top_k=5)
    micro = Reference(num_classes=num_classes, average="micro")
    top5 = Reference(num_classes=num_classes, average="micro", top_k=5)
    macro = Reference(num_classes=num_classes, average="macro")
    for lo in range(0, 400, 100):
        batch = (logits[lo : lo + 100], targets[lo : lo + 100])
        metric.update(*batch)
        for reference in (micro, top5, macro):
            reference.update(*batch)
    out = metric.compute()
    assert 10.0 < out["acc"] < out["top5"] < 100.0
    assert out["acc"] == pytest.approx(100 * micro.compute().item(), abs=1e-4)
    assert out["top5"] == pytest.approx(100 * top5.compute().item(), abs=1e-4)

    # Independent per-class recall over the classes that have samples.
    recall = torch.stack([(predicted[targets == c] == c).double().mean() for c in present])
    assert out["mean_class_acc"] == pytest.approx(100 * recall.mean().item(), abs=1e-9)
    # torchmetrics leaves out classes neither labelled nor predicted but counts predicted absent ones as 0.
    counted = present.numel() + predicted_absent
    assert 100 * macro.compute().item() == pytest.approx(out["mean_class_acc"] * present.numel() / counted, abs=1e-4)

    # When no absent class is predicted, the two macro averages agree.
    logits[:, absent] = -1e4
    agree, reference = MulticlassAccuracy(num_classes), Reference(num_classes=num_classes, average="macro")
    agree.update(logits, targets)
    assert agree.compute()["mean_class_acc"] == pytest.approx(100 * reference(logits, targets).item(), abs=1e-4)


def test_multiclass_invalid_inputs_are_rejected():
    metric = MulticlassAccuracy(4, top_k=2)
    with pytest.raises(ValueError, match=r"logits must be float \(B, 4\)"):
        metric.update(torch.zeros(3, 5), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="logits must be float"):
        metric.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="logits must be float"):
        metric.update(torch.zeros(3, 4, dtype=torch.long), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="integer labels"):
        metric.update(torch.zeros(3, 4), torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="integer labels"):
        metric.update(torch.zeros(3, 4), torch.tensor([[0], [1], [2]]))
    with pytest.raises(ValueError, match="3 predictions for 2 targets"):
        metric.update(torch.zeros(3, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"0\.\.3"):
        metric.update(torch.zeros(2, 4), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"0\.\.3"):
        metric.update(torch.zeros(2, 4), torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="NaN"):
        metric.update(torch.tensor([[0.0, math.nan, 0.0, 0.0]]), torch.tensor([1]))
    assert all(math.isnan(v) for v in metric.compute().values())  # nothing was counted
    with pytest.raises(ValueError, match="num_classes"):
        MulticlassAccuracy(1)
    with pytest.raises(ValueError, match="top_k"):
        MulticlassAccuracy(10, top_k=0)


@pytest.mark.gpu
def test_multiclass_cuda_tensors():
    metric = MulticlassAccuracy(4, top_k=2)
    metric.update(MC_LOGITS.cuda(), MC_TARGETS.cuda())
    metric.update(MC_LOGITS, MC_TARGETS)
    assert metric.compute() == {"acc": 60.0, "top2": 80.0, "mean_class_acc": pytest.approx(100 * 2 / 3)}
    assert metric.state()["confusion"].device.type == "cpu"
