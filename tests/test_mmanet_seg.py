"""MMANet-seg's method on stand-ins: the MIoU-gap search and the weak combination, the loss
``seg + 4 MAD + 0.2 aux`` against a direct computation, the teacher's batch statistics in the checkpoint state, the
options. (The hosts are tested in tests/test_esanet.py, the pixel MAD in tests/test_segmentation2d.py.)"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mwam_harness.models.host import HostOutput
from reproduce.methods import LoopContext, StepData
from reproduce.methods.mmanet.distillation import pixel_margin_aware_distillation
from reproduce.methods.mmanet_seg import MMANetSeg, MMANetSegOptions
from reproduce.tasks.segmentation2d import Segmentation2DTask

C = 40


def task():
    dataset = SimpleNamespace(class_weights=np.linspace(0.5, 2.0, C).astype(np.float32))
    spec = SimpleNamespace(
        name="nyuv2", modalities=("rgb", "depth"), num_classes=C, build_dataset=lambda *a, **k: dataset
    )
    t = Segmentation2DTask(spec, "/nowhere", 0, {})
    t.build_dataset("train", True)
    return t


class Teacher(torch.nn.Module):
    """A stand-in teacher: fixed encoder / decoder features, a BatchNorm whose running statistics move."""

    def __init__(self, encoder, scores):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(3)
        self.encoder, self.scores, self.calls = encoder, scores, 0

    def forward(self, inputs, present):
        self.calls += 1
        self.bn(torch.randn(4, 3))
        assert bool(present.all())
        return HostOutput(torch.zeros(1), extras={"encoder": self.encoder, "decoder": [None, None, self.scores]})


def method_with(teacher, **options):
    method = MMANetSeg(MMANetSegOptions(**options))
    method.modalities = ("rgb", "depth")
    method.candidates = [("rgb",), ("depth",), ("rgb", "depth")]
    method.distance, method.device = [0.0, 0.0], torch.device("cpu")
    method.weak = None
    method.teacher = teacher
    method.teacher_run = SimpleNamespace(config=SimpleNamespace(key="t"), result={"selection": {"select": "last"}})
    return method


def test_search_accumulates_squared_miou_gaps_and_picks_the_weak_single_modality():
    method = method_with(None)
    logged = []

    class Tracker:
        def log(self, values, step):
            logged.append(values)

        def summary(self, values):
            logged.append(values)

    results = {6: (40.0, 30.0, 45.0), 7: (42.0, 30.0, 46.0), 8: (44.0, 31.0, 47.0), 9: (44.0, 35.0, 47.0)}

    def evaluate_subsets(split, subsets, new_metric, description):
        assert split == "test" and subsets == method.candidates and new_metric is None
        rgb, depth, both = results[epoch]
        return {"rgb": {"miou": rgb}, "depth": {"miou": depth}, "rgb+depth": {"miou": both}}

    ctx = LoopContext(host=None, task=task(), tracker=Tracker(), evaluator=evaluate_subsets)
    for epoch in range(11):
        entry = {}
        ctx.epoch = epoch
        method.on_epoch_end(ctx, epoch, entry)
        assert ("mmanet" in entry) == (epoch in (6, 7, 8, 9, 10))
    assert method.distance == [25 + 16 + 9 + 9, 225 + 256 + 256 + 144]
    assert method.weak == ("depth",) and method.describe()["weak"] == "depth"


def test_loss_after_begin_epoch_is_seg_plus_4_mad_plus_02_aux_on_the_weak_samples():
    g = torch.Generator().manual_seed(0)
    student_enc = [torch.randn(4, 6, 4, 6, generator=g) for _ in range(3)]
    teacher_enc = [torch.randn(4, 6, 4, 6, generator=g) for _ in range(3)]
    scores = torch.randn(4, 8, 4, 6, generator=g)
    teacher = Teacher(teacher_enc, scores)
    method = method_with(teacher)
    method.weak = ("depth",)
    labels = torch.randint(0, C + 1, (4, 64, 96), generator=g)
    aux = torch.randn(4, C, 64, 96, generator=g)
    aux_side = [torch.randn(4, C, 64 // r, 96 // r, generator=g) for r in (8, 16, 32)]
    present = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 1]], dtype=torch.bool)
    output = HostOutput(
        torch.zeros(4, C, 64, 96), present=present,
        extras={"encoder": student_enc, "auxiliary": aux, "auxiliary_side": aux_side},
    )  # fmt: skip
    t = task()
    config = SimpleNamespace(host=SimpleNamespace(name="mmanet_seg"))
    ctx = LoopContext(host=None, task=t, config=config, epoch=10, epochs=20)
    step = StepData({}, output, {"label": labels}, None)
    seg = torch.tensor(1.5)
    before, _ = method.loss(ctx, step, seg, {})
    assert before is seg and teacher.calls == 1, "the teacher runs (batch statistics) but adds nothing yet"
    ctx.epoch = 11
    total, parts = method.loss(ctx, step, seg, {})
    mad = sum(pixel_margin_aware_distillation(s, t_, scores) for s, t_ in zip(student_enc, teacher_enc, strict=True))
    weak = torch.tensor([False, True, False, True])
    expected_aux = t.loss(
        HostOutput(aux[weak], extras={"side": [s[weak] for s in aux_side]}), {"label": labels[weak]}, None
    )
    assert torch.allclose(total, seg + 4.0 * mad + 0.2 * expected_aux.fused)
    assert parts["mmanet/weak_fraction"] == 0.5
    method.weak = ("rgb", "depth")  # no sample of the weak combination: aux is 0
    output.present[2] = False
    total, parts = method.loss(ctx, step, seg, {})
    assert parts["loss/auxiliary"] == 0 and torch.allclose(total, seg + 4.0 * mad)


def test_state_keeps_the_search_and_the_teachers_moving_batchnorm_statistics():
    teacher = Teacher([], None)
    method = method_with(teacher)
    method.distance, method.weak = [3.0, 4.0], ("rgb",)
    teacher.bn(torch.randn(8, 3) + 5)
    state = method.state_dict()
    other = method_with(Teacher([], None))
    other.load_state_dict(state)
    assert other.distance == [3.0, 4.0] and other.weak == ("rgb",)
    assert torch.equal(other.teacher.bn.running_mean, teacher.bn.running_mean)
    assert "teacher_buffers" not in method_with(teacher, teacher_batchnorm="running").state_dict()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"teacher_batchnorm": "frozen"}, "teacher_batchnorm"),
        ({"search_epochs": (9, 6)}, "increasing"),
        ({"search_epochs": (11,)}, "begin_epoch"),
        ({"lambda_distill": -1}, "lambda_distill"),
        ({"teacher_run": {"seed": 1}}, "may not set"),
    ],
)
def test_option_errors(options, message):
    with pytest.raises(ValueError, match=message):
        MMANetSegOptions(**options)
