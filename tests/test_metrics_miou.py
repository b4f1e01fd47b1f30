import math

import pytest
import torch

from reproduce.metrics import MeanIoU

# Three classes: data-set labels 0..3 (0 = void), network class indices 0..2 (label k <-> index k - 1).
LABELS = torch.tensor([[0, 1, 1, 2], [2, 3, 3, 3]])
PREDS = torch.tensor([[2, 0, 1, 1], [1, 2, 2, 0]])
# Non-void (gt index, pred) pairs: (0,0) (0,1) (1,1) (1,1) (2,2) (2,2) (2,0).
# IoU: class 0: 1 / (2 + 2 - 1) = 1/3; class 1: 2 / (2 + 3 - 2) = 2/3; class 2: 2 / (3 + 2 - 2) = 2/3.


def _logits(indices: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(indices, num_classes).movedim(-1, 1).float() * 5.0 - 1.0


def test_hand_computed_confusion_matrix_with_void_and_index_shift():
    metric = MeanIoU(num_classes=3)
    metric.update(PREDS[None], LABELS[None])
    assert metric.confusion_matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert metric.iou_per_class().tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert metric.compute()["miou"] == pytest.approx(100 * 5 / 9)


def test_logits_give_the_same_result_as_indices():
    metric = MeanIoU(num_classes=3)
    metric.update(_logits(PREDS[None], 3), LABELS[None])
    assert metric.compute()["miou"] == pytest.approx(100 * 5 / 9)


def test_dataset_level_confusion_matrix_not_mean_of_images():
    # Image A: 4 pixels of class 0, all right. Image B: 4 pixels of class 1, predicted as class 0.
    a_labels, a_preds = torch.ones(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long)
    b_labels, b_preds = torch.full((1, 2, 2), 2), torch.zeros(1, 2, 2, dtype=torch.long)
    metric = MeanIoU(num_classes=2)
    metric.update(a_preds, a_labels)
    metric.update(b_preds, b_labels)
    # Pooled: class 0 IoU 4 / (4 + 8 - 4) = 0.5, class 1 IoU 0 / 4 = 0 -> 25 %; per-image mean would be (100 + 0) / 2.
    assert metric.compute()["miou"] == pytest.approx(25.0)
    pooled = MeanIoU(num_classes=2)
    pooled.update(torch.cat([a_preds, b_preds]), torch.cat([a_labels, b_labels]))
    assert torch.equal(pooled.confusion_matrix, metric.confusion_matrix)


def test_zero_union_classes_esanet_zero_versus_excluded():
    labels = torch.tensor([[1, 1, 2, 2]])
    preds = torch.tensor([[0, 0, 1, 0]])  # class 2 neither labelled nor predicted
    # class 0: 2 / (2 + 3 - 2) = 2/3; class 1: 1 / (2 + 1 - 1) = 1/2; class 2: zero union.
    esanet = MeanIoU(num_classes=3)
    excluded = MeanIoU(num_classes=3, zero_union="exclude")
    esanet.update(preds, labels)
    excluded.update(preds, labels)
    assert math.isnan(esanet.iou_per_class()[2])
    assert esanet.compute()["miou"] == pytest.approx(100 * (2 / 3 + 1 / 2 + 0) / 3)
    assert excluded.compute()["miou"] == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)

    from torchmetrics.classification import MulticlassJaccardIndex  # excludes zero-union classes, like "exclude"

    reference = MulticlassJaccardIndex(num_classes=4, ignore_index=0, average="macro")
    assert 100 * reference(preds + 1, labels).item() == pytest.approx(excluded.compute()["miou"], abs=1e-4)
    with pytest.raises(ValueError, match="zero_union"):
        MeanIoU(zero_union="nan")  # type: ignore[arg-type]


def test_forty_classes_against_torchmetrics():
    from torchmetrics.classification import MulticlassJaccardIndex

    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 41, (3, 32, 32), generator=generator)
    noise = torch.randint(0, 40, labels.shape, generator=generator)
    preds = torch.where(torch.rand(labels.shape, generator=generator) < 0.6, (labels - 1).clamp_min(0), noise)
    assert torch.unique(labels).numel() == 41  # every class occurs, so both conventions agree
    metric, reference = MeanIoU(), MulticlassJaccardIndex(num_classes=41, ignore_index=0, average="macro")
    for i in range(3):
        metric.update(_logits(preds[i : i + 1], 40), labels[i : i + 1])
        reference.update(preds[i : i + 1] + 1, labels[i : i + 1])
    assert metric.compute()["miou"] == pytest.approx(100 * reference.compute().item(), abs=1e-4)


def test_invalid_inputs_and_all_void():
    metric = MeanIoU()
    assert (metric.primary, metric.display_name) == ("miou", "MIoU")
    assert math.isnan(metric.compute()["miou"])
    metric.update(torch.full((1, 2, 2), 7), torch.zeros(1, 2, 2, dtype=torch.long))  # all void: nothing counted
    assert math.isnan(metric.compute()["miou"])
    with pytest.raises(ValueError, match=r"0\.\.40"):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 41))
    with pytest.raises(ValueError, match=r"0\.\.39"):
        metric.update(torch.full((1, 2, 2), 40), torch.ones(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="logits"):
        metric.update(torch.zeros(1, 2, 2), torch.ones(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        metric.update(torch.zeros(1, 2, 3, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.long))


@pytest.mark.gpu
def test_cuda_tensors():
    metric = MeanIoU(num_classes=3)
    metric.update(_logits(PREDS[None], 3).cuda(), LABELS[None].cuda())
    assert metric.compute()["miou"] == pytest.approx(100 * 5 / 9)


def test_per_class_iou_keys_are_data_set_labels_and_skip_zero_union_classes():
    labels = torch.tensor([[1, 1, 2, 2]])
    preds = torch.tensor([[0, 0, 1, 0]])  # class index 2 (label 3) neither labelled nor predicted
    result = MeanIoU(num_classes=3)
    result.update(preds, labels)
    values = result.compute()
    assert set(values) == {"miou", "iou_1", "iou_2"}
    assert values["iou_1"] == pytest.approx(100 * 2 / 3)
    assert values["iou_2"] == pytest.approx(100 / 2)
