"""The 2-D segmentation task: ESANet's weighted cross-entropy against a re-creation of their ``CrossEntropyLoss2d``,
the side outputs' labels against OpenCV's nearest resize, the summed loss, and the MIoU update."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from mwam_harness.models.host import HostOutput
from reproduce.tasks.base import StepContext
from reproduce.tasks.segmentation2d import Segmentation2DTask, downsampled_labels, weighted_cross_entropy

C = 40
CTX = StepContext(0, 0, 0, 0.0, 1, 1)


def esanet_loss(logits, labels, weights):
    """Their ``CrossEntropyLoss2d`` for one scale: CE(weight, reduction none, ignore -1) on labels - 1, summed,
    divided by the weighted count of non-void pixels (bincount over 0..C, void dropped)."""
    ce = torch.nn.CrossEntropyLoss(weight=weights, reduction="none", ignore_index=-1)
    per_pixel = ce(logits, labels.long() - 1)
    counts = torch.bincount(labels.flatten(), minlength=C + 1)
    return per_pixel.sum() / (counts[1:] * weights).sum()


def task_with(weights=None):
    dataset = SimpleNamespace(class_weights=weights)
    spec = SimpleNamespace(
        name="nyuv2", modalities=("rgb", "depth"), num_classes=C, build_dataset=lambda *a, **k: dataset
    )
    return Segmentation2DTask(spec, "/nowhere", 0, {})


def test_weighted_cross_entropy_is_esanets_and_ignores_void():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, C, 12, 16, generator=g)
    labels = torch.randint(0, C + 1, (2, 12, 16), generator=g)
    weights = torch.rand(C, generator=g) + 0.1
    assert torch.allclose(weighted_cross_entropy(logits, labels, weights), esanet_loss(logits, labels, weights))
    void = (labels == 0).unsqueeze(1).expand_as(logits)
    assert void.any()
    changed = torch.where(void, logits + 5.0, logits)
    assert torch.allclose(
        weighted_cross_entropy(changed, labels, weights), weighted_cross_entropy(logits, labels, weights)
    )
    assert weighted_cross_entropy(logits, torch.zeros_like(labels), weights) == 0


@pytest.mark.parametrize("rate", [8, 16, 32])
def test_side_output_labels_are_opencvs_nearest_resize(rate):
    labels = np.random.default_rng(rate).integers(0, C + 1, (96, 128)).astype(np.uint8)
    theirs = cv2.resize(labels, (128 // rate, 96 // rate), interpolation=cv2.INTER_NEAREST)
    ours = downsampled_labels(torch.from_numpy(labels)[None].long(), (96 // rate, 128 // rate))[0].numpy()
    assert np.array_equal(ours, theirs)


def test_loss_sums_the_full_output_and_the_side_outputs_and_scores_aux_heads():
    weights = np.linspace(0.5, 2.0, C).astype(np.float32)
    task = task_with(weights)
    task.build_dataset("train", True)
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, C + 1, (2, 64, 96), generator=g)
    full = torch.randn(2, C, 64, 96, generator=g)
    side = [torch.randn(2, C, 64 // r, 96 // r, generator=g) for r in (8, 16, 32)]
    aux = {"rgb": torch.randn(2, C, 64, 96, generator=g)}
    terms = task.loss(HostOutput(full, aux=aux, extras={"side": side}), {"label": labels}, CTX)
    w = torch.from_numpy(weights)
    expected = esanet_loss(full, labels, w) + sum(
        esanet_loss(s, downsampled_labels(labels, tuple(s.shape[-2:])), w) for s in side
    )
    assert torch.allclose(terms.fused, expected)
    assert set(terms.per_modality) == {"rgb"} and torch.allclose(
        terms.per_modality["rgb"], esanet_loss(aux["rgb"], labels, w)
    )


def test_the_loss_needs_the_training_sets_class_weights():
    task = task_with(None)
    with pytest.raises(ValueError, match="class_weights"):
        task.build_dataset("train", True)
    task.build_dataset("test", False)  # evaluation needs none
    with pytest.raises(RuntimeError, match="build the training set"):
        task.loss(HostOutput(torch.zeros(1, C, 4, 4)), {"label": torch.zeros(1, 4, 4, dtype=torch.long)}, CTX)
    with pytest.raises(ValueError, match="40 entries"):
        task_with(np.ones(13)).build_dataset("train", True)


def test_metric_upsamples_logits_to_the_label_size():
    task = task_with(np.ones(C))
    metric = task.new_metric()
    logits = torch.zeros(1, C, 2, 2)
    logits[0, 4] = 1.0  # every pixel predicts class index 4 = label 5
    labels = torch.full((1, 8, 8), 5, dtype=torch.long)
    labels[0, 0, 0] = 0  # void
    task.update_metric(metric, HostOutput(logits), {"label": labels})
    assert metric.confusion_matrix[4, 4] == 63 and metric.confusion_matrix.sum() == 63


def authors_pixel_mad(fm_s, fm_t, fm_t_scores):
    """``train_missing_mmanet.py``'s pooling and pixel rows, then ``loss/kd/mad.py`` ``MAD.forward`` (CPU)."""
    import torch.nn.functional as F

    if fm_s.shape[2] > 30:
        fm_s, fm_t = F.adaptive_avg_pool2d(fm_s, (30, 40)), F.adaptive_avg_pool2d(fm_t, (30, 40))
    rows_s = fm_s.permute(0, 2, 3, 1).contiguous().view(-1, fm_s.shape[1])
    rows_t = fm_t.permute(0, 2, 3, 1).contiguous().view(-1, fm_t.shape[1])
    scores = F.adaptive_avg_pool2d(fm_t_scores, (fm_s.shape[2], fm_s.shape[3]))
    scores = scores.permute(0, 2, 3, 1).contiguous().view(-1, scores.shape[1])
    s_t, t_t = rows_s.t(), rows_t.t()
    halves_s = [s_t[:, : s_t.shape[1] // 2], s_t[:, s_t.shape[1] // 2 :]]
    halves_t = [t_t[:, : t_t.shape[1] // 2], t_t[:, t_t.shape[1] // 2 :]]
    loss_sum = torch.zeros(t_t.shape[1])
    for hs, ht in zip(halves_s, halves_t, strict=True):
        gs = F.normalize(torch.mm(rows_s, hs), p=2, dim=1)
        gt = F.normalize(torch.mm(rows_t, ht), p=2, dim=1)
        loss_sum += torch.sum(F.mse_loss(gs, gt, reduction="none"), dim=1)
    p = F.softmax(scores, dim=1)
    entropy = torch.sum(-p * torch.log(p), dim=1)
    return torch.sum(loss_sum * entropy / torch.sum(entropy))


@pytest.mark.parametrize("height, width", [(6, 8), (60, 80)])  # below the 30-row threshold and pooled to 30 x 40
def test_pixel_mad_is_the_authors(height, width):
    from reproduce.methods.mmanet.distillation import pixel_margin_aware_distillation

    g = torch.Generator().manual_seed(height)
    s = torch.randn(2, 5, height, width, generator=g)
    t = torch.randn(2, 5, height, width, generator=g)
    scores = torch.randn(2, 7, height, width, generator=g)
    ours = pixel_margin_aware_distillation(s, t, scores)
    assert torch.allclose(ours, authors_pixel_mad(s, t, scores), rtol=1e-4, atol=1e-6)
    assert pixel_margin_aware_distillation(t, t, scores) == 0
