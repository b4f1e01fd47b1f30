"""GSS (group self-support on RFNet): the soft target against a step-by-step re-creation of the authors'
``GSS_choice.py`` (their clone / mask / min sequence, written out here as the oracle), the voxel masking, the loss
``fuse + 0.7 sep + prm + 0.3 T^2/10 soft_sep`` against a direct computation, the options, and the stage chain."""

import math
from types import SimpleNamespace

import pytest
import torch

from reproduce.methods import LoopContext, StepData
from reproduce.methods.gss import BRATS_GROUPS, GSS, GSSOptions
from reproduce.methods.gss.group_self_support import (
    double_teacher_target,
    group_soft_target,
    random_voxel_mask,
    self_support_loss,
    single_teacher_target,
)
from reproduce.tasks.base import LossTerms, StepContext
from reproduce.tasks.segmentation_losses import segmentation_loss, softmax_weighted_loss

MODALITIES = ("flair", "t1ce", "t1", "t2")
TP, TM, DTP, T = 0.75, 0.85, 0.3, 8.0


# ---------------------------------------------------------------------- the authors' recipe, step by step
def authors_single(p1, p2, p3, p4, l1, l2, l3, l4, t1, t2):
    """``singel_teacher``: teacher first; every tensor is one class's (B, 1, ...) map."""
    l1, l2, l3, l4 = (x.clone() for x in (l1, l2, l3, l4))
    m1 = p1 > t1
    out = l1.clone()
    out[~m1] = 0
    temps, logit_temps = [], []
    for p, logit in ((p2, l2), (p3, l3), (p4, l4)):
        pt = p.clone()
        pt[m1] = 0
        lt = logit.clone()
        lt[~m1] = 0
        temps.append(pt)
        logit_temps.append(lt)
    low = (temps[0] > t2) & (temps[1] > t2) & (temps[2] > t2)
    for lt in logit_temps:
        lt[~low] = 0
    group = sum(logit_temps) / 3
    for logit in (l1, l2, l3, l4):
        logit[m1] = 0
        logit[low] = 0
    lowest = torch.cat([l1, l2, l3, l4], dim=1).min(dim=1, keepdim=True).values
    return out + group + lowest


def authors_double(p1, p2, p3, p4, l1, l2, l3, l4, t1, t2, blend):
    """``double_teacher``: the two teachers first."""
    l1, l2, l3, l4 = (x.clone() for x in (l1, l2, l3, l4))
    m1, m2 = p1 > t1, p2 > t1
    domain = m1 | m2
    both = m1 & m2
    a1, a2 = l1.clone(), l2.clone()
    a1[~both] = 0
    a2[~both] = 0
    part1 = torch.cat([a1, a2], dim=1).max(dim=1, keepdim=True).values
    b1, b2 = l1.clone(), l2.clone()
    b1[~domain] = 0  # the authors mask with the whole domain here, not its one-teacher part
    b2[~domain] = 0
    high = torch.cat([b1, b2], dim=1).max(dim=1, keepdim=True).values
    low_ = torch.cat([b1, b2], dim=1).min(dim=1, keepdim=True).values
    part2 = high - blend * (high - low_)
    p3t, p4t = p3.clone(), p4.clone()
    p3t[domain] = 0
    p4t[domain] = 0
    l3t, l4t = l3.clone(), l4.clone()
    l3t[domain] = 0
    l4t[domain] = 0
    low = (p3t > t2) & (p4t > t2)
    l3t[~low] = 0
    l4t[~low] = 0
    part3 = (l3t + l4t) / 2
    for logit in (l1, l2, l3, l4):
        logit[domain] = 0
        logit[low] = 0
    lowest = torch.cat([l1, l2, l3, l4], dim=1).min(dim=1, keepdim=True).values
    return part1 + part2 + part3 + lowest


def authors_target(pred, soft):
    """``train_GSS.py``'s soft target from the four (B, 4, ...) predictions and softened predictions."""
    f, c, t1, t2 = (pred[m] for m in MODALITIES)
    sf, sc, s1, s2 = (soft[m] for m in MODALITIES)

    def k(x, i):
        return x[:, i : i + 1]

    targets = [
        authors_single(k(f, 0), k(c, 0), k(t1, 0), k(t2, 0), k(sf, 0), k(sc, 0), k(s1, 0), k(s2, 0), TP, TM),
        authors_single(k(c, 1), k(f, 1), k(t1, 1), k(t2, 1), k(sc, 1), k(sf, 1), k(s1, 1), k(s2, 1), TP, TM),
        authors_double(k(f, 2), k(t2, 2), k(c, 2), k(t1, 2), k(sf, 2), k(s2, 2), k(sc, 2), k(s1, 2), TP, TM, DTP),
        authors_single(k(c, 3), k(f, 3), k(t1, 3), k(t2, 3), k(sc, 3), k(sf, 3), k(s1, 3), k(s2, 3), TP, TM),
    ]
    total = sum(targets)
    return torch.cat([x / total for x in targets], dim=1)


def decoder_logits(seed=0, shape=(2, 4, 6, 6, 5)):
    """Sharp, varied logits: every region of the rules (teacher sure, others sure, neither) occurs."""
    g = torch.Generator().manual_seed(seed)
    shared = 5.0 * torch.randn(*shape, generator=g)  # the modalities partly agree
    return {m: shared + 3.0 * torch.randn(*shape, generator=g) for m in MODALITIES}


def predictions(logits):
    pred = {m: torch.softmax(v, dim=1) for m, v in logits.items()}
    soft = {m: torch.softmax(v / T, dim=1) for m, v in logits.items()}
    return pred, soft


# ---------------------------------------------------------------------- the target
def test_released_target_equals_the_authors_recipe_on_every_region():
    pred, soft = predictions(decoder_logits())
    ours = group_soft_target(pred, soft, BRATS_GROUPS, TP, TM, DTP, "released")
    theirs = authors_target(pred, soft)
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=1e-5)
    assert torch.allclose(ours.sum(dim=1), torch.ones(()))
    # the logits reach every region of the class-0 single teacher and the class-2 double teacher
    sure = pred["flair"][:, 0] > TP
    others = (pred["t1ce"][:, 0] > TM) & (pred["t1"][:, 0] > TM) & (pred["t2"][:, 0] > TM) & ~sure
    assert sure.any() and others.any() and (~sure & ~others).any()
    both = (pred["flair"][:, 2] > TP) & (pred["t2"][:, 2] > TP)
    one = (pred["flair"][:, 2] > TP) ^ (pred["t2"][:, 2] > TP)
    assert both.any() and one.any()


def test_the_released_single_teacher_gives_0_where_only_the_others_are_sure_and_intended_their_mean():
    pred, soft = predictions(decoder_logits(1))
    p = {m: v[:, 0] for m, v in pred.items()}
    s = {m: v[:, 0] for m, v in soft.items()}
    released = single_teacher_target(p, s, "flair", TP, TM, "released")
    intended = single_teacher_target(p, s, "flair", TP, TM, "intended")
    sure = p["flair"] > TP
    others = ~sure & (p["t1ce"] > TM) & (p["t1"] > TM) & (p["t2"] > TM)
    assert others.any()
    assert torch.equal(released[others], torch.zeros_like(released[others]))
    mean = (s["t1ce"] + s["t1"] + s["t2"]) / 3
    assert torch.allclose(intended[others], mean[others])
    assert torch.equal(released[~others], intended[~others])
    assert torch.equal(released[sure], s["flair"][sure])
    rest = ~sure & ~others
    lowest = torch.stack(list(s.values())).amin(dim=0)
    assert torch.equal(released[rest], lowest[rest])


def test_the_released_double_teacher_adds_the_blend_where_both_are_sure_and_intended_does_not():
    pred, soft = predictions(decoder_logits(2))
    p = {m: v[:, 2] for m, v in pred.items()}
    s = {m: v[:, 2] for m, v in soft.items()}
    released = double_teacher_target(p, s, ("flair", "t2"), TP, TM, DTP, "released")
    intended = double_teacher_target(p, s, ("flair", "t2"), TP, TM, DTP, "intended")
    both = (p["flair"] > TP) & (p["t2"] > TP)
    one = (p["flair"] > TP) ^ (p["t2"] > TP)
    high, low = torch.maximum(s["flair"], s["t2"]), torch.minimum(s["flair"], s["t2"])
    blended = high - DTP * (high - low)
    assert both.any() and one.any()
    assert torch.allclose(intended[both], high[both]) and torch.allclose(released[both], (high + blended)[both])
    assert torch.allclose(released[one], blended[one]) and torch.equal(released[~both], intended[~both])


def test_target_errors():
    pred, soft = predictions(decoder_logits())
    with pytest.raises(ValueError, match="one teacher group per class"):
        group_soft_target(pred, soft, BRATS_GROUPS[:3])
    with pytest.raises(ValueError, match="one or two"):
        group_soft_target(pred, soft, (*BRATS_GROUPS[:3], ("flair", "t1", "t2")))
    with pytest.raises(ValueError, match="rule"):
        group_soft_target(pred, soft, BRATS_GROUPS, rule="paper")


# ---------------------------------------------------------------------- masking and the loss
def test_voxel_mask_draws_with_replacement_per_sample():
    g = torch.Generator().manual_seed(0)
    mask = random_voxel_mask((3, 20, 20, 20), 0.2, g)
    assert mask.shape == (3, 20, 20, 20) and mask.dtype == torch.bool
    share = mask.flatten(1).float().mean(dim=1)
    expected = 1 - math.exp(-0.2)  # 1600 draws with replacement among 8000 voxels: ~18.1 % distinct
    assert torch.all((share - expected).abs() < 0.01) and torch.all(share < 0.2)
    assert not torch.equal(mask[0], mask[1])
    assert not random_voxel_mask((2, 5, 5), 0.0).any()


def test_self_support_loss_is_the_authors_masked_weighted_ce_summed_over_modalities():
    pred, soft = predictions(decoder_logits(3))
    target = group_soft_target(pred, soft, BRATS_GROUPS)
    ours = self_support_loss(soft, target, 0.2, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    expected = 0.0
    for m in MODALITIES:  # theirs: index_put zeros at the drawn voxels of every class, in target and prediction
        removed = random_voxel_mask((2, 6, 6, 5), 0.2, g).unsqueeze(1).expand_as(target)
        expected += softmax_weighted_loss(soft[m].masked_fill(removed, 0.0), target.masked_fill(removed, 0.0))
    assert torch.allclose(ours, expected)


def context(num_classes=4, task=None):
    """A real plug-in context (LoopContext) around a stand-in host and task (only their modalities / classes are
    read)."""
    task = task or SimpleNamespace(num_classes=num_classes, fused_loss_start_epoch=20)
    config = SimpleNamespace(host=SimpleNamespace(name="rfnet"))
    host = SimpleNamespace(modalities=MODALITIES)
    return LoopContext(host=host, task=task, config=config, epochs=300, steps_per_epoch=150)


def test_gss_loss_is_fuse_plus_07_sep_plus_prm_plus_the_scaled_soft_term():
    from reproduce.tasks.segmentation3d import Segmentation3DTask

    logits = decoder_logits(4)
    fused = torch.randn(2, 4, 6, 6, 5)
    prm = [torch.softmax(torch.randn(2, 4, 6, 6, 5), dim=1) for _ in range(2)]
    labels = torch.randint(0, 4, (2, 6, 6, 5))
    output = SimpleNamespace(logits=fused, aux=logits, extras={"prm": prm})
    task = Segmentation3DTask.__new__(Segmentation3DTask)
    task.num_classes, task.fused_loss_start_epoch = 4, 20
    ctx = context(task=task)
    method = GSS(GSSOptions())
    method._load_start = lambda ctx, deps: {}
    method.setup(ctx, {})
    assert task.fused_loss_start_epoch == 0  # the fused term from the first epoch
    assert ctx.step == StepContext(0, 0, 0, 0.0, 300, 150)
    batch = {"label": labels}
    terms = method.loss_terms(ctx, task.loss(output, batch, ctx.step))
    loss = terms.fused + sum(terms.per_modality.values())
    torch.manual_seed(7)
    total, parts = method.loss(ctx, StepData({}, output, batch, terms), loss, {})
    onehot = torch.nn.functional.one_hot(labels, 4).permute(0, 4, 1, 2, 3)
    direct = segmentation_loss(torch.softmax(fused, 1), onehot) + sum(segmentation_loss(p, onehot) for p in prm)
    direct = direct + 0.7 * sum(segmentation_loss(torch.softmax(v, 1), onehot) for v in logits.values())
    pred, soft = predictions(logits)
    torch.manual_seed(7)
    soft_term = self_support_loss(soft, authors_target(pred, soft), 0.2)
    assert torch.allclose(total, direct + 0.3 * 64 / 10 * soft_term, rtol=1e-5)
    assert torch.allclose(parts["loss/soft_sep"], soft_term)


def test_gss_needs_every_separate_decoder_and_a_group_per_class():
    method = GSS(GSSOptions())
    with pytest.raises(ValueError, match="one teacher group per class"):
        method.setup(context(num_classes=3), {})
    output = SimpleNamespace(aux={"flair": torch.zeros(1, 4, 2, 2, 2)})
    with pytest.raises(ValueError, match="separate decoders"):
        method.loss(context(), StepData({}, output, {}, None), torch.zeros(()), {})
    with pytest.raises(ValueError, match="lacks"):
        GSS(GSSOptions(groups=(("flair",), ("adc",), ("t1",), ("t2",)))).setup(context(), {})


@pytest.mark.parametrize(
    "options, message",
    [
        ({"stage": 0}, "stage"),
        ({"target_rule": "paper"}, "target_rule"),
        ({"temperature": 0}, "temperature"),
        ({"mask_ratio": 1.0}, "mask_ratio"),
        ({"groups": [["flair", "flair"]]}, "groups"),
        ({"init_weights": "x.pth", "stage": 2}, "init_weights"),
        ({"init_run": {"seed": 3}}, "init_run may not set"),
        ({"init_run": {"optimiser": {}}}, "unknown run settings"),
    ],
)
def test_option_errors(options, message):
    with pytest.raises(ValueError, match=message):
        GSSOptions(**options)


def test_loss_terms_reweights_only_the_separate_decoders():
    terms = LossTerms(torch.tensor(2.0), {m: torch.tensor(1.0) for m in MODALITIES})
    out = GSS(GSSOptions(sep_weight=0.5)).loss_terms(context(), terms)
    assert out.fused == 2.0 and all(v == 0.5 for v in out.per_modality.values())
