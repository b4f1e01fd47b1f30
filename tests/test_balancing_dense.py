"""OGM-GE and AGM on dense predictions and more than two modalities (RFNet on BraTS2020: four modalities, 3-D
label maps, per-modality predictions from RFNet's separate decoders): the task accessor ``correct_class_score`` per
task on hand-made tensors; OGM-GE's BalanceBenchmark multi-modality rule (three and four modalities) against its
code transcribed here (GeWu-Lab/BalanceBenchmark ``balancemm/trainer/OGM_trainer.py``, 4c1482f); one real training
step of each plug-in on a tiny RFNet run with the gradients the rules prescribe; exact resume of both plug-ins on
a tiny RFNet run and on the three-modality toy host (with MWAM)."""

from __future__ import annotations

import copy
import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mwam_harness.datasets.brats2020 as brats
from mwam_harness.models import Host, HostOutput
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.methods import LoopContext, StepData
from reproduce.methods.agm import AGM, AGMOptions
from reproduce.methods.ogm_ge import OGMGE, OGMGEOptions, multimodal_coefficients
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.tasks.classification import ClassificationTask
from reproduce.tasks.segmentation2d import Segmentation2DTask
from reproduce.tasks.segmentation3d import Segmentation3DTask
from tests.test_agm import balancebenchmark_coefficients as agm_balancebenchmark_coefficients
from tests.test_agm import balancebenchmark_outputs as agm_balancebenchmark_outputs
from tests.toy_run import RUNTIME, toy_config, weights

BRATS = ("flair", "t1ce", "t1", "t2")


def make_task(cls, num_classes=3, modalities=("a", "b")):
    spec = SimpleNamespace(name="hand", modalities=tuple(modalities), num_classes=num_classes)
    return cls(spec, "", 0, {}, None)


# ---------------------------------------------------------------- BalanceBenchmark's rule, transcribed
def balancebenchmark_ogm_multi(outs, label, alpha):
    """GeWu-Lab/BalanceBenchmark balancemm/trainer/OGM_trainer.py (4c1482f) l.92-95, 104-151 with method 'OGM_GE'
    and its ``modality_nums == 3`` branch (l.115-116, 144-145), here also for four modalities (there l.117-118
    raise). Two changes, the same numbers: the softmax of l.116 is computed once per modality instead of once per
    sample, and ``except:`` names the error it catches (a score summed from integer zeros has no ``detach``)."""
    softmax, relu, tanh = nn.Softmax(dim=1), nn.ReLU(inplace=True), nn.Tanh()
    modality_list = list(outs)
    scores, ratios, coeffs = {}, {}, {}
    minscore = float("inf")
    for modality in modality_list:
        cos_softmax = softmax(torch.cos(outs[modality]))
        score_modality = sum([cos_softmax[i][label[i]] if label[i] == torch.argmax(outs[modality][i]) else 0
                              for i in range(label.size(0))])  # fmt: skip
        try:
            scores[modality] = score_modality.detach().clone()
        except AttributeError:
            continue
        minscore = min(score_modality, minscore)
    for modality in modality_list:
        ratios[modality] = scores[modality].detach().clone()  # KeyError for a skipped modality, as theirs
        ratios[modality] /= minscore + 1e-5
    for modality in modality_list:
        if ratios[modality] > 1:
            coeffs[modality] = max(1 - tanh(alpha * relu(ratios[modality])), 0)
        else:
            coeffs[modality] = 1
    return [float(coeffs[m]) for m in modality_list]


def rows(logits, labels):
    """Dense logits (B, C, *S) and labels (B, *S) as (B * N, C) rows and (B * N,) labels: every voxel one of the
    transcription's samples. With N voxels per sample its scores are N times ours (a per-sample mean), so its ratios
    differ from ours by the 1e-5 in the denominator only."""
    channels = logits.shape[1]
    return logits.movedim(1, -1).reshape(-1, channels), labels.reshape(-1)


# ---------------------------------------------------------------- the accessor, per task
def test_correct_class_score_per_task_by_hand():
    ln3 = math.log(3.0)
    task = make_task(ClassificationTask, 2)
    logits = torch.tensor([[0.0, ln3], [ln3, 0.0]])
    score = task.correct_class_score(logits, {"label": torch.tensor([1, 1])})
    torch.testing.assert_close(score, torch.tensor([0.75, 0.25]))
    # BalanceBenchmark's multi-modality reading: softmax(cos(logits))[y], only where argmax(logits) = y
    logits = torch.tensor([[0.0, math.pi], [0.0, math.pi]])
    score = task.correct_class_score(logits, {"label": torch.tensor([1, 0])}, cosine=True, correct_only=True)
    expected = math.exp(-1) / (math.e + math.exp(-1))
    assert score.tolist() == pytest.approx([expected, 0.0], abs=1e-6)

    # 2-D segmentation: labels 1..C, 0 = void (left out), resized to the prediction by nearest neighbour
    task = make_task(Segmentation2DTask, 3)
    logits = torch.zeros(2, 3, 2, 2)
    logits[0, 0, 0, 0] = math.log(2.0)  # that pixel: probabilities (1/2, 1/4, 1/4); the others 1/3 each
    labels = torch.tensor([[[1, 0], [3, 2]], [[0, 0], [0, 0]]])
    score = task.correct_class_score(logits, {"label": labels})
    assert score.tolist() == pytest.approx([(1 / 2 + 1 / 3 + 1 / 3) / 3, 0.0], abs=1e-6), "the void-only sample: 0"
    big = torch.full((2, 4, 4), 2)  # nearest neighbour at half size reads rows and columns 0 and 2 only
    big[:, ::2, ::2] = labels
    torch.testing.assert_close(task.correct_class_score(logits, {"label": big}), score)

    # 3-D segmentation: classes 0..C-1 at every voxel (background is a class)
    task = make_task(Segmentation3DTask, 2)
    logits = torch.zeros(2, 2, 1, 1, 2)
    logits[0, 1, 0, 0, 0] = ln3
    labels = torch.tensor([[[[1, 0]]], [[[0, 0]]]])
    score = task.correct_class_score(logits, {"label": labels})
    assert score.tolist() == pytest.approx([(3 / 4 + 1 / 2) / 2, 1 / 2], abs=1e-6)
    cos = math.cos(ln3)
    first = math.exp(cos) / (math.e + math.exp(cos))  # voxel 0: argmax 1 = its label
    score = task.correct_class_score(logits, {"label": labels}, cosine=True, correct_only=True)
    assert score.tolist() == pytest.approx([(first + 1 / 2) / 2, 1 / 2], abs=1e-6), "a tie's argmax is class 0"
    with pytest.raises(ValueError, match="full-resolution"):
        task.correct_class_score(torch.zeros(2, 2, 1, 1, 1), {"label": labels})


# ---------------------------------------------------------------- OGM-GE: the multi-modality rule
def test_multimodal_rule_by_hand():
    k, rho = multimodal_coefficients([1.0, 2.0, 4.0], 0.3)
    assert rho == pytest.approx([1 / 1.00001, 2 / 1.00001, 4 / 1.00001], rel=1e-12)
    assert k == pytest.approx([1.0, 1 - math.tanh(0.3 * 2 / 1.00001), 1 - math.tanh(0.3 * 4 / 1.00001)], rel=1e-12)
    # a zero score (no correct position) is left out of the minimum and not modulated; all zero: none modulated
    k, rho = multimodal_coefficients([0.0, 1.0, 2.0, 3.0], 0.3)
    assert rho[0] == 0.0 and k[0] == 1.0 and k[1] == 1.0 and k[3] == pytest.approx(1 - math.tanh(0.9 / 1.00001))
    assert multimodal_coefficients([0.0, 0.0, 0.0], 0.3)[0] == [1.0, 1.0, 1.0]
    assert multimodal_coefficients([1.0, 1.0, 100.0], 20.0)[0][2] == 0.0, "clamped at 0"


@pytest.mark.parametrize("count", [3, 4])
def test_multimodal_rule_matches_balancebenchmark(count):
    g = torch.Generator().manual_seed(count)
    task = make_task(ClassificationTask, 4)
    checked = modulated = 0
    for trial in range(30):
        label = torch.randint(0, 4, (8,), generator=g)
        outs = {f"m{i}": torch.randn(8, 4, generator=g) * (0.5 + (i + trial) % 3) for i in range(count)}
        for i, m in enumerate(outs):  # a few correct samples per modality, more for the later ones
            outs[m][: 1 + i, :] = F.one_hot(label[: 1 + i], 4).float() * 5
        scores = [
            float(task.correct_class_score(o, {"label": label}, cosine=True, correct_only=True).sum())
            for o in outs.values()
        ]
        for alpha in (0.3, 1.0):
            expected = balancebenchmark_ogm_multi(outs, label, alpha)
            k, _ = multimodal_coefficients(scores, alpha)
            assert k == pytest.approx(expected, rel=1e-5, abs=1e-6), (trial, scores)
            checked += 1
            modulated += sum(v < 1 for v in k)
    assert checked == 60 and modulated >= 60 * (count - 2)


class QuadHost(Host):
    """Four 3-D branches (1x1x1 conv, ReLU), a fused 1x1x1 head on their concatenation and one dense auxiliary head
    per modality (RFNet's layout in miniature: logits (B, C, D, H, W) at the label's resolution)."""

    modalities = BRATS

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.branch = nn.ModuleDict({m: nn.Sequential(nn.Conv3d(1, 4, 1), nn.ReLU()) for m in BRATS})
        self.head = nn.Conv3d(16, classes, 1)
        self.aux = nn.ModuleDict({m: nn.Conv3d(4, classes, 1) for m in BRATS})

    def branches(self):
        return dict(self.branch.items())

    def forward(self, inputs, present=None):
        present = self.check_inputs(inputs, present)
        feats = {m: self.branch[m](inputs[m]) for m in BRATS}
        fused = torch.cat([feats[m] * present[:, i, None, None, None, None] for i, m in enumerate(BRATS)], dim=1)
        return HostOutput(self.head(fused), aux={m: self.aux[m](feats[m]) for m in BRATS}, present=present)


def quad_batch(seed=0, batch=4, classes=3):
    g = torch.Generator().manual_seed(seed)
    inputs = {m: torch.randn(batch, 1, 2, 2, 2, generator=g) * (1 + i) for i, m in enumerate(BRATS)}
    return inputs, {"label": torch.randint(0, classes, (batch, 2, 2, 2), generator=g)}


def test_ogm_ge_balancebenchmark_scales_four_dense_branches_as_its_rule_says():
    torch.manual_seed(0)
    host, task = QuadHost(), make_task(Segmentation3DTask, 3, BRATS)
    inputs, batch = quad_batch()
    ctx = LoopContext(host=host, task=task)
    with pytest.raises(ValueError, match=r"exactly two modalities.*variant: balancebenchmark"):
        OGMGE().setup(ctx, {})

    def step(plugin):
        host.zero_grad(set_to_none=True)
        output = host(inputs)
        loss = task.loss(output, batch, ctx.step)
        total = loss.fused + sum(loss.per_modality.values())
        if plugin is not None:
            assert plugin.loss(ctx, StepData(inputs, output, batch, loss), total, {})[0] is total
        total.backward()
        if plugin is not None:
            plugin.before_optimizer_step(ctx)
        return output, {n: p.grad.clone() for n, p in host.named_parameters()}

    _, plain = step(None)
    plugin = OGMGE(OGMGEOptions(variant="balancebenchmark", noise=False, modulation_start=0))
    plugin.setup(ctx, {})
    output, edited = step(plugin)
    expected = balancebenchmark_ogm_multi({m: rows(output.aux[m].detach(), batch["label"])[0] for m in BRATS},
                                          rows(output.aux["flair"], batch["label"])[1], 0.3)  # fmt: skip
    values = {}
    plugin.on_log(ctx, values)
    k = {m: values[f"ogm_ge/k/{m}"] for m in BRATS}
    assert list(k.values()) == pytest.approx(expected, rel=1e-4) and min(k.values()) < 1.0 == max(k.values())
    assert {f"ogm_ge/ratio/{m}" for m in BRATS} <= set(values) and "ogm_ge/ratio" not in values
    for name, grad in edited.items():
        modality = name.split(".")[1] if name.startswith("branch.") else None
        factor = k[modality] if modality and grad.dim() > 1 else 1.0
        torch.testing.assert_close(grad, plain[name] * factor, rtol=1e-5, atol=1e-8, msg=name)


# ---------------------------------------------------------------- one real step on a tiny RFNet run
TINY_RUNTIME = Runtime(device="cpu", progress=False, wandb="disabled", val_every=0, log_every=1)


@pytest.fixture(scope="module")
def rfnet_runs(tmp_path_factory):
    """Tiny RFNet runs (basic_dims 4, 16^3 crops of a 4-case synthetic BraTS of 24 x 24 x 16 voxels, batch 2, the
    preset's fused term from epoch 1): without plug-ins, with OGM-GE and with AGM (both BalanceBenchmark), set up;
    one training batch; the base configuration and the folder (its synthetic data lie under ``results``)."""
    from reproduce.paths import results_root_set_to
    from reproduce.tables.specs import table_runs

    root = tmp_path_factory.mktemp("rfnet")
    with pytest.MonkeyPatch.context() as patch, results_root_set_to(root / "results"):
        smoke = brats.PRESETS["smoke"]
        run = {
            **smoke.run,
            "data": {"options": {"crop": 16}},
            "train": {"epochs": 2, "batch_size": 2, "iterations_per_epoch": 2, "deterministic": True},
        }
        generator = {"num_cases": 4, "shape": (24, 24, 16), "split": (2, 1, 1)}
        patch.setitem(brats.PRESETS, "smoke", dataclasses.replace(smoke, run=run, generator=generator))
        base, _ = table_runs(2).configs(None, brats.PRESETS["smoke"], columns=["RFNet"])[0]
        base = base.with_overrides({"host": {"options": {"basic_dims": 4}}})
        assert base.host.options == {"fused_loss_start_epoch": 1, "basic_dims": 4}
        plugins = {
            "plain": [],
            "ogm_ge": [{"name": "ogm_ge", "options": {"variant": "balancebenchmark", "noise": False,
                                                      "modulation_start": 0}}],
            "agm": [{"name": "agm", "options": {"variant": "balancebenchmark", "alpha": 1.0,
                                                "head": "decoder_fuse.seg_layer"}}],
        }  # fmt: skip
        trainers = {}
        for name, listed in plugins.items():
            trainers[name] = Trainer(base.with_overrides({"plugins": listed}), Registry(root / name), TINY_RUNTIME)
            trainers[name].setup()
        batch = next(iter(trainers["plain"].train_loader))
        yield trainers, batch, base, root


def rfnet_step(trainer, batch):
    """One ``Trainer.train_step`` (the drawn modality subsets reseeded alike); the per-modality outputs it saw, its
    loss parts and the gradients the optimiser applied."""
    seen = {}

    def record(module, args, output):
        if module.training:  # the training pass (AGM's extra passes run in eval mode)
            seen["output"] = output

    handle = trainer.host.register_forward_hook(record)
    torch.manual_seed(11)
    trainer.host.train()
    try:
        parts = trainer.train_step(batch)
    finally:
        handle.remove()
    grads = {n: p.grad.clone() for n, p in trainer.host.named_parameters() if p.grad is not None}
    return seen["output"], parts, grads


@pytest.fixture(scope="module")
def plain_rfnet_step(rfnet_runs):
    trainers, batch, _, _ = rfnet_runs
    before = weights(trainers["plain"].host)
    assert all(torch.equal(weights(t.host), before) for t in trainers.values()), "the same initial weights"
    return rfnet_step(trainers["plain"], batch)


def assert_branch_gradients_scaled(host, edited, plain, k):
    """Each encoder's gradients of more than one dimension are k_m times the plain ones, every other the same."""
    owner = {id(p): m for m, branch in host.branches().items() for p in branch.parameters()}
    for name, p in host.named_parameters():
        if name not in plain:
            continue
        modality = owner.get(id(p))
        factor = k[modality] if modality is not None and p.dim() > 1 else 1.0
        torch.testing.assert_close(edited[name], plain[name] * factor, rtol=1e-4, atol=1e-9, msg=name)


def test_ogm_ge_balancebenchmark_one_step_on_rfnet(rfnet_runs, plain_rfnet_step):
    trainers, batch, _, _ = rfnet_runs
    trainer = trainers["ogm_ge"]
    _, _, plain = plain_rfnet_step
    output, parts, edited = rfnet_step(trainer, batch)
    assert all(math.isfinite(float(v)) for v in parts.values()) and set(output.aux) == set(BRATS)
    labels = trainer.task.target(batch)
    assert tuple(output.aux["flair"].shape[2:]) == tuple(labels.shape[1:]), "full-resolution decoder logits"
    outs = {m: rows(output.aux[m].detach(), labels)[0] for m in BRATS}
    expected = balancebenchmark_ogm_multi(outs, rows(output.aux["flair"], labels)[1], 0.3)
    values = {}
    trainer.plugins["ogm_ge"].on_log(trainer.ctx, values)
    k = {m: values[f"ogm_ge/k/{m}"] for m in BRATS}
    assert list(k.values()) == pytest.approx(expected, rel=1e-4) and min(k.values()) < 1.0
    assert_branch_gradients_scaled(trainer.host, edited, plain, k)
    record = trainer.plugins["ogm_ge"].describe()
    assert record["variant"] == "balancebenchmark" and "softmax(cos(out_m))" in record["score"]


def test_agm_balancebenchmark_one_step_on_rfnet(rfnet_runs, plain_rfnet_step):
    trainers, batch, _, _ = rfnet_runs
    trainer = trainers["agm"]
    _, _, plain = plain_rfnet_step
    plugin = trainer.plugins["agm"]
    assert [n for n, p in trainer.host.named_parameters() if any(p is h for h in plugin.head)] == [
        "decoder_fuse.seg_layer.weight"
    ]
    start = copy.deepcopy(trainer.host)
    _, parts, edited = rfnet_step(trainer, batch)
    assert all(math.isfinite(float(v)) for v in parts.values())
    # BalanceBenchmark's coalition outputs (newGrad, transcribed in tests/test_agm.py) scored by the task's loss
    inputs = trainer.task.inputs(batch, trainer.device)
    start.eval()

    def run(padding):
        return start({m: torch.zeros_like(x) if m in padding else x for m, x in inputs.items()}).logits

    with torch.no_grad():
        outputs = agm_balancebenchmark_outputs(run, list(BRATS))
    scores = {m: float(trainer.task.per_sample_loss(outputs[m], batch).mean()) for m in BRATS}
    k = agm_balancebenchmark_coefficients(scores, dict.fromkeys(BRATS, 0.0), 1, 1.0, list(BRATS))
    assert plugin.applied == pytest.approx([k[m] for m in BRATS], rel=1e-4)
    assert max(k.values()) > 1.0 > min(k.values())
    values = {}
    plugin.on_log(trainer.ctx, values)
    assert values["agm/clipped"] == 0.0, "the fused term is 0 in epoch 0: the head's gradient is 0"
    assert float(edited["decoder_fuse.seg_layer.weight"].abs().max()) == 0.0
    assert_branch_gradients_scaled(trainer.host, edited, plain, k)
    # RFNet's encoders map an all-zero input to zero features (conv bias, then InstanceNorm): AGM's zeroed inputs
    # are RFNet's own feature-level masking of that modality
    mask = torch.tensor([[False, True, True, True]] * 2)
    with torch.no_grad():
        zeroed = run(["flair"])
        masked = start(inputs, mask).logits
    torch.testing.assert_close(zeroed, masked, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "plugin",
    [
        {"name": "ogm_ge", "options": {"variant": "balancebenchmark", "modulation_start": 0}},
        {"name": "agm", "options": {"variant": "balancebenchmark", "head": "decoder_fuse.seg_layer"}},
    ],
    ids=["ogm_ge", "agm"],
)
def test_tiny_rfnet_runs_resume_exactly(rfnet_runs, plugin):
    """Two epochs of two steps (the fused term, and so the head's gradient, from epoch 1), OGM-GE with its noise:
    stopped after the first step of epoch 1 and resumed, the run ends bit-identical to the uninterrupted one."""
    _, _, base, root = rfnet_runs
    config = base.with_overrides({"plugins": [plugin]})
    name = plugin["name"]
    whole = Trainer(config, Registry(root / f"{name}-whole"), TINY_RUNTIME)
    result_whole = whole.run()
    assert all(math.isfinite(entry["loss"]) for entry in result_whole["history"]) and len(result_whole["subsets"]) == 15

    def stop(trainer, step):
        if step == 3:  # epoch 1, after its first step
            trainer.request_stop()

    registry = Registry(root / f"{name}-stopped")
    with pytest.raises(TrainingInterruptedError):
        Trainer(config, registry, TINY_RUNTIME, callbacks=[stop]).run()
    resumed = Trainer(config, registry, TINY_RUNTIME)
    result = resumed.run(resume=True)
    assert torch.equal(weights(resumed.host), weights(whole.host))
    assert result["history"] == result_whole["history"] and result["subsets"] == result_whole["subsets"]
    assert resumed.plugins[name].state_dict() == whole.plugins[name].state_dict()


# ---------------------------------------------------------------- exact resume on the three-modality toy host
@pytest.mark.parametrize(
    "plugin",
    [
        {"name": "ogm_ge", "options": {"variant": "balancebenchmark", "modulation_start": 0}},
        {"name": "agm", "options": {"variant": "balancebenchmark", "alpha": 1.0, "clipping": False}},
    ],
)
def test_three_modality_toy_runs_resume_exactly_with_mwam(tmp_path, toy, root, plugin):
    """The toy host's three modalities with its auxiliary heads as the per-modality predictions and MWAM (hybrid)
    in the same run: the multi-modality rules, stopped mid-epoch and resumed, end bit-identical."""
    config = toy_config(root, plugins=[plugin])
    assert config.mwam.intervention == "hybrid"
    whole = Trainer(config, Registry(tmp_path / "a"), RUNTIME)
    result_whole = whole.run()
    assert all(math.isfinite(entry["loss"]) for entry in result_whole["history"])
    values = {}
    whole.plugins[plugin["name"]].on_log(whole.ctx, values)
    assert {f"{plugin['name']}/k/{m}" for m in ("rgb", "depth", "ir")} <= set(values)

    def stop(trainer, step):
        if step == 7:  # mid-epoch 1
            trainer.request_stop()

    registry = Registry(tmp_path / "b")
    with pytest.raises(TrainingInterruptedError):
        Trainer(config, registry, RUNTIME, callbacks=[stop]).run()
    resumed = Trainer(config, registry, RUNTIME)
    result = resumed.run(resume=True)
    assert torch.equal(weights(resumed.host), weights(whole.host))
    assert result["history"] == result_whole["history"] and result["subsets"] == result_whole["subsets"]


def test_agm_scores_dense_outputs_by_the_tasks_loss():
    torch.manual_seed(0)
    host, task = QuadHost(), make_task(Segmentation3DTask, 3, BRATS)
    inputs, batch = quad_batch(1)
    ctx = LoopContext(host=host, task=task)
    with pytest.raises(ValueError, match=r"agm \(official\) is the authors' two-modality AGM"):
        AGM().setup(ctx, {})
    plugin = AGM(AGMOptions(variant="balancebenchmark"))
    plugin.setup(ctx, {})
    assert len(plugin.head) == 5, "the default fusion head: every weight outside the branches (head and aux heads)"
    plugin.before_forward(ctx, inputs)
    output = host(inputs)
    loss = task.loss(output, batch, ctx.step)
    plugin.loss(ctx, StepData(inputs, output, batch, loss), loss.fused, {})

    def run(padding):
        return host({m: torch.zeros_like(x) if m in padding else x for m, x in inputs.items()}).logits

    with torch.no_grad():
        outputs = agm_balancebenchmark_outputs(run, list(BRATS))
    values = {}
    plugin.on_log(ctx, values)
    for m in BRATS:
        assert values[f"agm/score/{m}"] == pytest.approx(float(task.per_sample_loss(outputs[m], batch).mean()))
