"""3-D segmentation task: the BraTS hosts' losses against their loops, sliding-window prediction against the
authors' window loop, encode-once over subsets, the fused term's start epoch."""

import numpy as np
import pytest
import torch
from torch import nn

from mwam_harness.datasets import dataset_spec
from mwam_harness.models.host import Host, HostOutput
from reproduce.tasks.base import StepContext
from reproduce.tasks.segmentation3d import Segmentation3DTask
from reproduce.tasks.segmentation_losses import dice_loss, softmax_weighted_loss

MODALITIES = ("flair", "t1ce", "t1", "t2")


def authors_softmax_weighted_loss(output, target, num_cls=4):
    """RFNet's loop, transcribed: per class, weight 1 - class share of the sample, clamped log."""
    target = target.float()
    _, _, H, W, Z = output.size()
    cross = 0
    for i in range(num_cls):
        weighted = 1.0 - target[:, i].sum((1, 2, 3)) / target.sum((1, 2, 3, 4))
        weighted = weighted.reshape(-1, 1, 1, 1).repeat(1, H, W, Z)
        cross = cross - weighted * target[:, i] * torch.log(torch.clamp(output[:, i], min=0.005, max=1))
    return cross.mean()


def authors_dice_loss(output, target, num_cls=4, eps=1e-7):
    total = 0
    for i in range(num_cls):
        total = total + 2.0 * (output[:, i] * target[:, i]).sum() / (output[:, i].sum() + target[:, i].sum() + eps)
    return 1.0 - total / num_cls


def test_losses_equal_the_authors_loops():
    g = torch.Generator().manual_seed(0)
    probabilities = torch.softmax(torch.randn(2, 4, 6, 5, 4, generator=g), dim=1)
    probabilities[0, 1, 0, 0, 0] = 1e-6  # below the clamp
    labels = torch.randint(0, 4, (2, 6, 5, 4), generator=g)
    onehot = torch.nn.functional.one_hot(labels, 4).permute(0, 4, 1, 2, 3)
    torch.testing.assert_close(
        softmax_weighted_loss(probabilities, onehot), authors_softmax_weighted_loss(probabilities, onehot)
    )
    torch.testing.assert_close(dice_loss(probabilities, onehot), authors_dice_loss(probabilities, onehot))


class ToyHost3D(Host):
    """Four conv encoders, feature zeroing, a 1x1 head; encode / fuse split."""

    modalities = MODALITIES

    def __init__(self) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({m: nn.Conv3d(1, 3, 3, padding=1) for m in MODALITIES})
        self.head = nn.Conv3d(12, 4, 1)
        self.sep = nn.Conv3d(3, 4, 1)
        self.fused_loss_start_epoch = 2

    def branches(self):
        return dict(self.encoders.items())

    def encode(self, inputs):
        return {m: self.encoders[m](inputs[m]) for m in MODALITIES}

    def fuse(self, features, present):
        gates = present.to(features["flair"].dtype)
        fused = torch.cat([features[m] * gates[:, i, None, None, None, None] for i, m in enumerate(MODALITIES)], 1)
        aux = {m: self.sep(features[m]) for m in MODALITIES} if self.training else None
        extras = {"prm": [torch.softmax(self.head(fused), 1)]} if self.training else {}
        return HostOutput(self.head(fused), aux=aux, present=present, extras=extras)

    def forward(self, inputs, present=None):
        present = self.check_inputs(inputs, present)
        return self.fuse(self.encode(inputs), present)


def task(window=8):
    return Segmentation3DTask(dataset_spec("brats2020"), "/nonexistent", 0, {"crop": window})


def authors_sliding_window(host, volume, mask, roi):
    """RFNet predict.py's loop, transcribed: starts 0, roi/2, ... then size - roi per axis; uniform average."""
    _, _, H, W, Z = volume.shape

    def starts(size):
        count = int(np.ceil((size - roi) / (roi * 0.5)))
        return [i * int(roi * 0.5) for i in range(count)] + [size - roi]

    pred = torch.zeros(1, 4, H, W, Z)
    weight = torch.zeros(1, 1, H, W, Z)
    for h in starts(H):
        for w in starts(W):
            for z in starts(Z):
                window = volume[:, :, h : h + roi, w : w + roi, z : z + roi]
                parts = {m: window[:, i : i + 1] for i, m in enumerate(MODALITIES)}
                pred[:, :, h : h + roi, w : w + roi, z : z + roi] += torch.softmax(host(parts, mask).logits, 1)
                weight[:, :, h : h + roi, w : w + roi, z : z + roi] += 1
    return pred / weight


@torch.no_grad()
def test_sliding_window_equals_the_authors_loop_and_encodes_once_per_window():
    torch.manual_seed(0)
    host = ToyHost3D().eval()
    volume = torch.randn(1, 4, 21, 18, 13)
    inputs = {m: volume[:, i : i + 1] for i, m in enumerate(MODALITIES)}
    masks = [torch.tensor([[True, False, True, False]]), torch.ones(1, 4, dtype=torch.bool)]
    seg = task(window=8)
    outs = seg.predict_subsets(host, inputs, masks)
    for out, mask in zip(outs, masks, strict=True):
        torch.testing.assert_close(out.logits, authors_sliding_window(host, volume, mask, 8), rtol=1e-5, atol=1e-6)
    calls = []
    host.encode = lambda x, f=host.encode: calls.append(1) or f(x)
    seg.predict_subsets(host, inputs, masks)
    windows = len(calls)
    calls.clear()
    for mask in masks:
        seg.predict(host, inputs, mask)
    assert len(calls) == 2 * windows, "one encoder pass per window for all the masks"


def test_the_fused_term_is_zero_before_the_hosts_start_epoch_and_the_terms_are_the_authors():
    torch.manual_seed(0)
    host = ToyHost3D().train()
    seg = task()
    seg.attach(host)
    inputs = {m: torch.randn(2, 1, 8, 8, 8) for m in MODALITIES}
    batch = {"label": torch.randint(0, 4, (2, 8, 8, 8))}
    output = host(inputs, None)
    onehot = torch.nn.functional.one_hot(batch["label"], 4).permute(0, 4, 1, 2, 3)

    def term(p):
        return authors_softmax_weighted_loss(p, onehot) + authors_dice_loss(p, onehot)

    ctx = StepContext(epoch=1, step_in_epoch=0, global_step=0, progress=0.0, epochs=3, steps_per_epoch=1)
    early = seg.loss(output, batch, ctx)
    prm = term(output.extras["prm"][0])
    torch.testing.assert_close(early.fused, prm)
    late = seg.loss(output, batch, StepContext(2, 0, 0, 0.5, 3, 1))
    torch.testing.assert_close(late.fused, term(torch.softmax(output.logits, 1)) + prm)
    assert set(late.per_modality) == set(MODALITIES)
    torch.testing.assert_close(late.per_modality["t1"], term(torch.softmax(output.aux["t1"], 1)))
    early.fused.backward()
    assert host.head.weight.grad is not None  # computed (times 0 for the fused output, the PRM term still trains)


def test_metric_is_brats_dice_on_the_argmax():
    seg = task()
    metric = seg.new_metric()
    labels = torch.zeros(1, 6, 6, 6, dtype=torch.long)
    labels[0, 2:4, 2:4, 2:4] = 2
    probabilities = torch.nn.functional.one_hot(labels, 4).permute(0, 4, 1, 2, 3).float()
    seg.update_metric(metric, HostOutput(probabilities), {"label": labels})
    assert metric.compute()["wt"] == pytest.approx(100.0)


def test_the_report_adds_the_post_processed_et_and_merges_like_its_parts():
    from reproduce.metrics.base import merge_states
    from reproduce.metrics.brats_dice import BratsDiceReport

    target = torch.zeros(1, 12, 12, 12, dtype=torch.long)
    target[0, 2:10, 2:10, 2:10] = 2
    prediction = target.clone()
    prediction[0, 5:7, 5:7, 5:7] = 3  # 8 false enhancing voxels: ET 0, emptied by the post-processing -> 1
    report = BratsDiceReport(et_min_voxels=500)
    report.update(prediction, target)
    values = report.compute()
    assert values["et"] == 0.0 and values["et_post"] == 100.0 and values["wt"] == 100.0
    merged = merge_states(BratsDiceReport(et_min_voxels=500), [report.state(), report.state()])
    assert merged.compute() == values
    with pytest.raises(ValueError, match="no plain_"):
        BratsDiceReport().merge({"per_case_dice": torch.zeros(0, 3, dtype=torch.float64)})
