"""MMANet (classification): the student host, MAD, the weak-combination search, the teacher run and the loss."""

import logging

import pytest
import torch
import torch.nn.functional as F

from mwam_harness import models
from reproduce.engine.runner import run_config
from reproduce.engine.trainer import DependencyError, Trainer, TrainingInterruptedError
from reproduce.methods import method_class
from reproduce.methods.mmanet import (
    MMANet,
    MMANetOptions,
    auxiliary_loss,
    candidate_subsets,
    histogram_divergence,
)
from reproduce.methods.mmanet.distillation import margin_aware_distillation, teacher_entropy_weights
from reproduce.runs.config import ConfigError, MethodConfig
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME, toy_config

FAST = {"search_epochs": (0, 1), "begin_epoch": 1}
MMANET_RUNTIME = RUNTIME.replace(column="MMANet", log_every=1)


pytestmark = pytest.mark.usefixtures("toy")


def config(root, **changes):
    """tests/toy_run.py's toy run, turned into an MMANet run of the real student host."""
    values = dict(
        host={"name": "mmanet", "options": {}},
        train={"batch_size": 6},
        optim={"lr": 0.01},
        schedule={"milestones": []},
        mwam={"intervention": "none"},
        method={"name": "mmanet", "options": dict(FAST)},
    )
    values.update(changes)
    return toy_config(root, **values)


def teacher_of(cfg):
    return MMANet.dependencies(cfg)["teacher"].config


def setup_trainer(cfg, reg):
    """A set-up student trainer (its teacher trained first)."""
    run_config(teacher_of(cfg), reg, RUNTIME)
    trainer = Trainer(cfg, reg, MMANET_RUNTIME)
    trainer.setup()
    return trainer


# ---------------------------------------------------------------- the student host
def test_student_is_sf_md_plus_the_auxiliary_trunk():
    student, sf = models.build("mmanet"), models.build("sf")
    assert sum(p.numel() for p in student.parameters()) == 24_332_380  # the authors' 24.33 M
    assert student.config.modality_dropout
    keys = set(student.state_dict())
    assert set(sf.state_dict()) < keys and {k for k in keys - set(sf.state_dict())} == {
        k for k in keys if k.startswith("auxi_bone.")
    }
    x = {m: torch.randn(2, 3, 32, 32) for m in student.modalities}
    out = student.train()(x)
    assert set(out.extras) == {"layer4", "auxiliary"} and out.extras["auxiliary"].shape == (2, 2)
    assert set(student.eval()(x).extras) == {"layer4"}, "the auxiliary trunk only serves training"
    with pytest.raises(ValueError, match="modality dropout"):
        models.build("mmanet", modality_dropout=False)


# ---------------------------------------------------------------- MAD
def authors_mad(fm_s, fm_t, logit_t):
    """The authors' MAD, transcribed operation by operation (loss/kd/mad.py)."""
    fm_s, fm_t = fm_s.view(fm_s.size(0), -1), fm_t.view(fm_t.size(0), -1)
    norm_g_s = F.normalize(fm_s @ fm_s.t(), p=2, dim=1)
    norm_g_t = F.normalize(fm_t @ fm_t.t(), p=2, dim=1)
    loss = F.mse_loss(norm_g_s, norm_g_t, reduction="none")
    prob = F.softmax(logit_t, dim=1)
    entropy = torch.sum(-prob * torch.log(prob), dim=1)
    return torch.sum(loss * (entropy / entropy.sum()))


def test_mad_equals_the_authors_formula_and_has_gradients():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5, 8, 2, 2, generator=g, requires_grad=True)
    t, logits = torch.randn(5, 8, 2, 2, generator=g), torch.randn(5, 2, generator=g)
    ours = margin_aware_distillation(s, t, logits)
    torch.testing.assert_close(ours, authors_mad(s, t, logits))
    ours.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert margin_aware_distillation(t, t, logits) == 0


def test_mad_is_finite_where_the_authors_formula_is_not():
    s, t = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    certain = torch.tensor([[200.0, -200.0]] * 4)  # the teacher's softmax underflows to exactly 0 and 1
    assert torch.isnan(authors_mad(s, t, certain))
    torch.testing.assert_close(teacher_entropy_weights(certain), torch.full((4,), 0.25))
    assert torch.isfinite(margin_aware_distillation(s, t, certain))
    one = margin_aware_distillation(torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2), torch.randn(1, 2))
    assert one == 0  # batch size 1: a 1 x 1 normalised Gram matrix is 1 for both
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert margin_aware_distillation(s, t, torch.randn(4, 2)).dtype == torch.float32
    with pytest.raises(ValueError, match="batch sizes differ"):
        margin_aware_distillation(s, t[:2], certain)


# ---------------------------------------------------------------- the weak-combination search
def test_candidates_and_divergence_follow_the_authors():
    assert candidate_subsets(("rgb", "depth", "ir")) == [
        ("rgb", "depth"),
        ("rgb", "ir"),
        ("depth", "ir"),
        ("rgb", "depth", "ir"),
    ]
    h, full = torch.tensor([0.9, 0.1]), torch.tensor([0.4, 0.6])
    # the authors: F.kl_div(F.log_softmax(full), F.softmax(h), reduction="batchmean") on (1, K) rows
    expected = F.kl_div(F.log_softmax(full[None], dim=1), F.softmax(h[None], dim=1), reduction="batchmean")
    assert histogram_divergence(h, full) == pytest.approx(float(expected), rel=1e-6)
    assert histogram_divergence(full, full) == 0


def test_options_are_validated_and_defaults_do_not_change_the_run(root):
    assert MethodConfig("mmanet", {"begin_epoch": 5, "lambda_distill": 30.0}).options == {}
    assert config(root, method={"name": "mmanet", "options": {**FAST, "lambda_auxiliary": 0.5}}).key == config(root).key
    for bad, message in (
        ({"search_epochs": (2, 6), "begin_epoch": 5}, "must lie in"),
        ({"search_epochs": ()}, "at least one"),
        ({"lambda_distill": -1}, "lambda_distill"),
        ({"teacher_run": {"host": {"name": "sf_md"}}}, "may not set"),
        ({"teacher_run": {"trian": {"batch_size": 4}}}, "unknown run settings"),
        ({"teacher_run": {"train": 4}}, "must be mappings"),
    ):
        with pytest.raises(ValueError, match=message):
            MMANetOptions(**bad)
    with pytest.raises(ConfigError, match="unknown options"):
        MethodConfig("mmanet", {"bogus": 1})
    with pytest.raises(ConfigError, match="takes no options"):
        MethodConfig("standard", {"begin_epoch": 1})
    with pytest.raises(ConfigError, match="unknown method 'mmanets'"):
        MethodConfig("mmanets")
    assert method_class("mmanet") is MMANet


def test_the_teacher_is_the_students_run_with_the_teacher_host_no_mwam_no_sde(root):
    student = config(root, mwam={"intervention": "grad"}, sde={"enabled": True}, seed=3)
    teacher = teacher_of(student)
    assert teacher.host.name == "sf" and teacher.method.name == "standard" and teacher.mwam.intervention == "none"
    assert not teacher.sde.enabled and teacher.seed == 0 and teacher.train == student.train
    assert teacher_of(config(root, seed=1)).key == teacher_of(config(root, seed=2)).key, "one teacher for every seed"
    small = config(
        root,
        train={"batch_size": 1},
        method={"name": "mmanet", "options": {**FAST, "teacher_run": {"train": {"batch_size": 6}}}},
    )
    assert teacher_of(small).key == teacher_of(config(root)).key


# ---------------------------------------------------------------- end to end
@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
def test_teacher_first_then_search_then_full_loss(tmp_path, root, caplog):
    reg = Registry(tmp_path / "runs")
    parts_seen = []
    cfg = config(root)
    with caplog.at_level(logging.INFO):
        result = run_config(
            cfg,
            reg,
            MMANET_RUNTIME,
            callbacks=[lambda t, step: parts_seen.append((t.epoch, t.plugins.method.weak_set is not None))],
        )
    teacher = teacher_of(cfg)
    assert reg.has(teacher) and reg.weights_path(teacher).exists() and reg.weights_path(cfg).exists()
    assert "(dependency)" in caplog.text and teacher.key in caplog.text
    method = result["method"]
    assert method["method"] == "mmanet" and method["teacher_run"] == teacher.key and method["aux_loss"] == "released"
    pair = method["weak_set"][0]
    assert pair in {"rgb+depth", "rgb+ir", "depth+ir"} and method["weak_set"][1:] == pair.split("+")
    assert set(method["divergence"]) == {"rgb+depth", "rgb+ir", "depth+ir"}
    searched = [h["epoch"] for h in result["history"] if "divergence" in h.get("mmanet", {})]
    assert searched == [0, 1] and "weak_set" in result["history"][1]["mmanet"]
    assert parts_seen[-1] == (2, True) and len(parts_seen) == 12, "the callbacks see the student's steps only"
    # a second MMANet run (another seed of the student) reuses the teacher
    stamp = reg.path(teacher).stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run_config(config(root, seed=1, train={"epochs": 3, "batch_size": 6}), reg, MMANET_RUNTIME)
    assert reg.path(teacher).stat().st_mtime_ns == stamp and "(dependency)" not in caplog.text


def test_the_teacher_stays_frozen_and_building_it_leaves_the_students_random_stream(tmp_path, root):
    reg = Registry(tmp_path / "runs")
    trainer = setup_trainer(config(root), reg)
    saved = torch.load(reg.weights_path(teacher_of(trainer.config)), weights_only=False)["host"]
    teacher = trainer.plugins.method.teacher
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(v, saved[k]) for k, v in teacher.state_dict().items())
    draw = torch.rand(3)
    from reproduce.checkpoints import seed_everything

    seed_everything(0)
    models.build("mmanet")  # what the student's set-up draws before the method's
    assert torch.equal(torch.rand(3), draw), "the teacher's construction consumed none of the student's stream"


def authors_released_auxiliary(aux_logits, target, present, weak_set_rows):
    """The released code's auxiliary term, re-created with its shapes: ``p`` (B, 3, 1, 1, 1), each weak combination
    (3,) unsqueezed to (3, 1, 1, 1), ``(p == w).all(dim=1)`` of shape (B, 1, 1, 1) times the (B,) losses of one
    ``auxi_bone`` pass (three identical passes), summed and divided by B, summed over the weak combinations."""
    p = present.float().view(-1, 3, 1, 1, 1)
    total = 0.0
    for row in weak_set_rows:
        weak = torch.tensor(row, dtype=torch.float).view(3, 1, 1, 1)
        weak_index = (p == weak).all(dim=1)
        assert weak_index.shape == (p.shape[0], 1, 1, 1)
        loss_batch = F.cross_entropy(aux_logits, target, reduction="none")
        total = total + torch.sum(loss_batch * weak_index) / p.shape[0]
    return total


@pytest.mark.parametrize("aux_loss", ["released", "intended"])
def test_loss_after_begin_epoch_is_ce_plus_weighted_auxiliary_and_mad(tmp_path, root, aux_loss):
    options = {**FAST, "aux_loss": aux_loss}
    trainer = setup_trainer(config(root, method={"name": "mmanet", "options": options}), Registry(tmp_path / "runs"))
    method = trainer.plugins.method
    method.weak_set = [("rgb", "ir"), ("rgb",), ("ir",)]
    batch = next(iter(trainer.train_loader))
    inputs = trainer.task.inputs(batch, trainer.device)
    torch.manual_seed(3)
    output = trainer.host(inputs, None)
    trainer.epoch = 2
    total, parts = trainer.compute_loss(inputs, output, batch, trainer.step_context())
    target = batch["label"]
    ce = F.cross_entropy(output.logits, target)
    rows = ([1, 0, 1], [1, 0, 0], [0, 0, 1])
    in_weak = torch.tensor([row in rows for row in output.present.int().tolist()])
    per_sample = F.cross_entropy(output.extras["auxiliary"], target, reduction="none")
    if aux_loss == "intended":
        aux = (per_sample * in_weak).sum() / len(target)
    else:
        aux = authors_released_auxiliary(output.extras["auxiliary"], target, output.present, rows)
        torch.testing.assert_close(aux, in_weak.sum() * per_sample.mean())  # n_weak * mean CE over all samples
    teacher = method.teacher(inputs, None)
    mad = authors_mad(output.extras["layer4"], teacher.extras["layer4"], teacher.logits)
    torch.testing.assert_close(total, ce + 0.5 * aux + 30 * mad)
    torch.testing.assert_close(parts["loss/auxiliary"], aux.detach())
    assert parts["mmanet/weak_fraction"] == in_weak.float().mean()
    trainer.epoch = 1  # up to begin_epoch: the task loss alone
    total, parts = trainer.compute_loss(inputs, output, batch, trainer.step_context())
    torch.testing.assert_close(total, ce)
    assert "loss/distill" not in parts


def test_released_and_intended_auxiliary_terms_on_random_tensors():
    generator = torch.Generator().manual_seed(0)
    batch = 64
    logits = torch.randn(batch, 2, generator=generator)
    target = torch.randint(0, 2, (batch,), generator=generator)
    per_sample = F.cross_entropy(logits, target, reduction="none")
    in_weak = torch.zeros(batch, dtype=torch.bool)
    in_weak[torch.randperm(batch, generator=generator)[:32]] = True
    released = auxiliary_loss(per_sample, in_weak, "released")
    intended = auxiliary_loss(per_sample, in_weak, "intended")
    torch.testing.assert_close(released, 32 * per_sample.mean())
    torch.testing.assert_close(intended, per_sample[in_weak].sum() / batch)
    assert released / intended > 20, "about 50x the intended term at batch 64 with half the batch weak"
    # Every sample receives gradient under the released term, only the weak ones under the intended one.
    for mode, expected in (("released", torch.ones(batch, dtype=torch.bool)), ("intended", in_weak)):
        leaf = logits.clone().requires_grad_(True)
        auxiliary_loss(F.cross_entropy(leaf, target, reduction="none"), in_weak, mode).backward()
        assert torch.equal(leaf.grad.abs().sum(dim=1) > 0, expected)
    with pytest.raises(ValueError, match="aux_loss must be one of"):
        MMANetOptions(aux_loss="mean")


def test_three_auxiliary_passes_equal_one_and_its_statistics_are_never_read():
    """The authors run ``auxi_bone`` three times per step: the same loss and gradients as one pass, and the
    BatchNorm statistics it updates three times do not reach any evaluation output."""
    torch.manual_seed(0)
    host = models.build("mmanet").train()
    inputs = host.example_inputs(4, torch.Generator().manual_seed(1))
    present = torch.ones(4, 3, dtype=torch.bool)
    features = host.encode(inputs)
    fused = torch.cat([features[m] for m in host.modalities], dim=1)
    target = torch.tensor([0, 1, 1, 0])
    grads = []
    for passes in (1, 3):
        host.zero_grad()
        outs = [host.auxi_bone(fused.detach()) for _ in range(passes)]  # the authors: one pass per weak combination
        losses = [F.cross_entropy(o, target) for o in outs]
        (sum(losses) if passes == 3 else 3 * losses[0]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in host.auxi_bone.parameters()]))
        assert all(torch.equal(o, outs[0]) for o in outs)
    torch.testing.assert_close(grads[0], grads[1])
    host.eval()
    before = host(inputs, present).logits
    for module in host.auxi_bone.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.add_(5.0)
            module.running_var.mul_(3.0)
    assert torch.equal(host(inputs, present).logits, before)


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
def test_resumed_mmanet_run_ends_exactly_like_an_uninterrupted_one(tmp_path, root):
    cfg, reg = config(root), Registry(tmp_path / "runs")  # one registry: the teacher is trained once
    result_whole = run_config(cfg, reg, MMANET_RUNTIME)
    whole = torch.load(reg.weights_path(cfg), weights_only=False)["host"]

    def stop(trainer, step):
        if step == 9:  # epoch 2, after the weak combination was fixed
            trainer.request_stop()

    interrupted = Trainer(cfg, reg, MMANET_RUNTIME, callbacks=[stop])
    with pytest.raises(TrainingInterruptedError):
        interrupted.run(force=True)
    assert interrupted.plugins.method.weak_set is not None and interrupted.epoch == 2
    resumed = Trainer(cfg, reg, MMANET_RUNTIME)
    result_resumed = resumed.run(resume=True, force=True)
    assert all(torch.equal(v, whole[k]) for k, v in resumed.host.state_dict().items())
    assert result_resumed["method"] == result_whole["method"]
    assert result_resumed["subsets"] == result_whole["subsets"]


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
def test_a_student_without_its_teacher_is_a_clear_error_and_a_teacher_without_weights_is_retrained(
    tmp_path, root, caplog
):
    reg = Registry(tmp_path / "runs")
    cfg = config(root)
    with pytest.raises(DependencyError, match="needs its teacher run"):
        Trainer(cfg, reg, MMANET_RUNTIME).setup()
    teacher = teacher_of(cfg)
    run_config(teacher, reg, RUNTIME)
    reg.weights_path(teacher).unlink()
    with caplog.at_level(logging.INFO):
        run_config(cfg, reg, MMANET_RUNTIME)
    assert "no weights" in caplog.text and reg.weights_path(teacher).exists()


def test_a_host_without_mmanet_outputs_is_a_clear_error(tmp_path, root):
    trainer = setup_trainer(config(root, host={"name": "sf_md"}), Registry(tmp_path / "runs"))
    trainer.epoch, trainer.plugins.method.weak_set = 2, [("rgb", "ir"), ("rgb",), ("ir",)]
    batch = next(iter(trainer.train_loader))
    inputs = trainer.task.inputs(batch, trainer.device)
    with pytest.raises(ValueError, match="use host 'mmanet'"):
        trainer.compute_loss(inputs, trainer.host(inputs, None), batch, trainer.step_context())


def test_too_few_epochs_for_the_schedule_is_a_clear_error(tmp_path, root):
    with pytest.raises(ValueError, match="no epoch after begin_epoch"):
        run_config(config(root, train={"epochs": 2, "batch_size": 6}), Registry(tmp_path / "runs"), MMANET_RUNTIME)
