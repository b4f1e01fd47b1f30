"""MMANet (classification): the student host, MAD, the weak-combination search, the teacher run and the loss."""

import logging

import pytest
import torch
import torch.nn.functional as F

import models
import reproduce.tasks as tasks
from reproduce.engine.distillation import margin_aware_distillation, teacher_entropy_weights
from reproduce.engine.mmanet import MMANetOptions, MMANetTrainer, candidate_subsets, histogram_divergence
from reproduce.engine.trainer import TrainingInterruptedError
from reproduce.engine.trainers import build_trainer, check_trainer
from reproduce.runs.registry import Registry
from tests.test_trainer import ToyTask
from tests.test_trainer import config as toy_config

FAST = {"search_epochs": (0, 1), "begin_epoch": 1}


@pytest.fixture(autouse=True, scope="module")
def toy_task():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(tasks.TASKS, "toy", ToyTask)
        yield


def config(tmp_path, **changes):
    """tests/test_trainer.py's toy run, turned into an MMANet run of the real student host."""
    values = dict(
        host="mmanet",
        column="MMANet",
        batch_size=6,
        lr=0.01,
        milestones=(),
        mwam="none",
        host_options={},
        trainer="mmanet",
        trainer_options=dict(FAST),
        log_every=1,
    )
    return toy_config(tmp_path, **{**values, **changes})


def weights(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


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


def test_options_are_validated_and_defaults_do_not_change_the_run(tmp_path):
    assert check_trainer("mmanet", {"begin_epoch": 5, "lambda_distill": 30.0}) == {}
    assert config(tmp_path, trainer_options={**FAST, "lambda_auxiliary": 0.5}).key == config(tmp_path).key
    for bad, message in (
        ({"search_epochs": (2, 6), "begin_epoch": 5}, "must lie in"),
        ({"search_epochs": ()}, "at least one"),
        ({"lambda_distill": -1}, "lambda_distill"),
        ({"teacher_run": {"host": "sf_md"}}, "may not set"),
        ({"teacher_run": {"batch_sise": 4}}, "unknown run settings"),
        ({"bogus": 1}, "unknown options"),
    ):
        with pytest.raises(ValueError, match=message):
            MMANetOptions(**bad) if "bogus" not in bad else check_trainer("mmanet", bad)
    with pytest.raises(ValueError, match="takes no trainer_options"):
        config(tmp_path, trainer="standard", trainer_options={"begin_epoch": 1})
    with pytest.raises(ValueError, match="unknown trainer"):
        config(tmp_path, trainer="mmanets")


# ---------------------------------------------------------------- end to end
def test_teacher_first_then_search_then_full_loss(tmp_path, caplog):
    reg = Registry(tmp_path / "runs")
    trainer = build_trainer(config(tmp_path), reg, wandb_mode="disabled")
    assert isinstance(trainer, MMANetTrainer)
    parts_seen = []
    trainer.callbacks.append(lambda t, step: parts_seen.append((t.epoch, t.weak_set is not None)))
    with caplog.at_level(logging.INFO):
        result = trainer.run()
    teacher = trainer.teacher_config()
    assert teacher.host == "sf" and teacher.trainer == "standard" and teacher.mwam == "none"
    assert reg.has(teacher) and reg.weights_path(teacher).exists() and reg.weights_path(trainer.config).exists()
    assert "training the MMANet teacher first" in caplog.text
    method = result["method"]
    assert method["method"] == "mmanet" and method["teacher_run"] == teacher.key
    pair = method["weak_set"][0]
    assert pair in {"rgb+depth", "rgb+ir", "depth+ir"} and method["weak_set"][1:] == pair.split("+")
    assert set(method["divergence"]) == {"rgb+depth", "rgb+ir", "depth+ir"}
    searched = [h["epoch"] for h in result["history"] if "divergence" in h.get("mmanet", {})]
    assert searched == [0, 1] and "weak_set" in result["history"][1]["mmanet"]
    assert parts_seen[-1] == (2, True)
    # the teacher stays frozen: its weights equal the saved ones
    saved = torch.load(reg.weights_path(teacher), weights_only=False)["host"]
    assert all(torch.equal(v, saved[k]) for k, v in trainer.teacher.state_dict().items())
    # a second MMANet run (another seed of the student) reuses the teacher
    stamp = reg.path(teacher).stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO):
        build_trainer(config(tmp_path, seed=1, epochs=3), reg, wandb_mode="disabled").run()
    assert reg.path(teacher).stat().st_mtime_ns == stamp and "teacher first" not in caplog.text


def test_loss_after_begin_epoch_is_ce_plus_weighted_auxiliary_and_mad(tmp_path):
    trainer = build_trainer(config(tmp_path), Registry(tmp_path / "runs"), wandb_mode="disabled")
    trainer.setup()
    trainer.epoch = 2
    trainer.weak_set = [("rgb", "ir"), ("rgb",), ("ir",)]
    batch = next(iter(trainer.train_loader))
    inputs = trainer.task.inputs(batch, trainer.device)
    torch.manual_seed(3)
    output = trainer.host(inputs, None)
    total, parts = trainer.compute_loss(inputs, output, batch)
    target = batch["label"]
    ce = F.cross_entropy(output.logits, target)
    in_weak = torch.tensor([row in ([1, 0, 1], [1, 0, 0], [0, 0, 1]) for row in output.present.int().tolist()])
    aux = (F.cross_entropy(output.extras["auxiliary"], target, reduction="none") * in_weak).sum() / len(target)
    teacher = trainer.teacher(inputs, None)
    mad = authors_mad(output.extras["layer4"], teacher.extras["layer4"], teacher.logits)
    torch.testing.assert_close(total, ce + 0.5 * aux + 30 * mad)
    torch.testing.assert_close(parts["loss/auxiliary"], aux.detach())
    assert parts["mmanet/weak_fraction"] == in_weak.float().mean()
    trainer.epoch = 1  # up to begin_epoch: the task loss alone
    total, parts = trainer.compute_loss(inputs, output, batch)
    torch.testing.assert_close(total, ce) and "loss/distill" not in parts


def test_resumed_mmanet_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    cfg, reg = config(tmp_path), Registry(tmp_path / "runs")  # one registry: the teacher is trained once
    whole = build_trainer(cfg, reg, wandb_mode="disabled")
    result_whole = whole.run()

    def stop(trainer, step):
        if step == 9:  # epoch 2, after the weak combination was fixed
            trainer.request_stop()

    interrupted = build_trainer(cfg, reg, wandb_mode="disabled", callbacks=[stop])
    with pytest.raises(TrainingInterruptedError):
        interrupted.run(force=True)
    assert interrupted.weak_set is not None and interrupted.epoch == 2
    resumed = build_trainer(cfg, reg, wandb_mode="disabled")
    result_resumed = resumed.run(resume=True, force=True)
    assert torch.equal(weights(resumed.host), weights(whole.host))
    assert result_resumed["method"] == result_whole["method"]
    assert result_resumed["subsets"] == result_whole["subsets"]


def test_teacher_without_weights_is_trained_again(tmp_path, caplog):
    reg = Registry(tmp_path / "runs")
    trainer = build_trainer(config(tmp_path), reg, wandb_mode="disabled")
    teacher = trainer.teacher_config()
    build_trainer(teacher, reg, wandb_mode="disabled").run()
    reg.weights_path(teacher).unlink()
    with caplog.at_level(logging.INFO):
        trainer.setup()  # builds the teacher
    assert "no weights" in caplog.text and "teacher first" in caplog.text and reg.weights_path(teacher).exists()
    stamp = reg.weights_path(teacher).stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO):
        build_trainer(config(tmp_path), reg, wandb_mode="disabled").setup()
    assert "teacher first" not in caplog.text and reg.weights_path(teacher).stat().st_mtime_ns == stamp


def test_a_host_without_mmanet_outputs_is_a_clear_error(tmp_path):
    trainer = build_trainer(config(tmp_path, host="sf_md"), Registry(tmp_path / "runs"), wandb_mode="disabled")
    trainer.setup()
    trainer.epoch, trainer.weak_set = 2, [("rgb", "ir"), ("rgb",), ("ir",)]
    batch = next(iter(trainer.train_loader))
    inputs = trainer.task.inputs(batch, trainer.device)
    with pytest.raises(ValueError, match="use host 'mmanet'"):
        trainer.compute_loss(inputs, trainer.host(inputs, None), batch)


def test_too_few_epochs_for_the_schedule_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no epoch after begin_epoch"):
        build_trainer(config(tmp_path, epochs=2), Registry(tmp_path / "runs"), wandb_mode="disabled").run()
