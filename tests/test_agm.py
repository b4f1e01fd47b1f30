"""AGM (``reproduce/methods/agm``): options and variants; the formulas against hand-computed cases and against the
authors' code transcribed here (lihong2303/AGM_ICCV2023 ``model/CREMAD_net.py`` / ``run/CREMAD_main.py``,
GeWu-Lab/BalanceBenchmark ``balancemm/trainer/AGM_trainer.py``), whole steps included; the loss value and its
gradient w.r.t. o_m; the clipping; toy runs, exact resume, composition with MWAM (and SDE), the clear errors, and
one step on the real resnet18_concat host."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mwam_harness import models
from mwam_harness.catalog import HOSTS
from mwam_harness.models import Host, HostOutput
from mwam_harness.models.registry import ModelInfo
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.methods import LoopContext, StepData
from reproduce.methods.agm import AGM, AGMOptions, fusion_head_weights, maths
from reproduce.runs.config import ConfigError
from reproduce.runs.registry import Registry
from reproduce.tasks.base import LossTerms
from tests.toy_run import RUNTIME, toy_config, weights

PAIR = ("rgb", "depth")


# ---------------------------------------------------------------- a two-modality toy host and task
class PairHost(Host):
    """Two branches (conv -> BatchNorm -> ReLU -> pool -> linear) and a concat head (``head``)."""

    modalities = PAIR

    def __init__(self, aux_heads: bool = False, width: int = 4) -> None:
        super().__init__()
        self.branch = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Conv2d(3, width, 3, padding=1),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1),
                    nn.Flatten(),
                    nn.Linear(width, width),
                )
                for m in PAIR
            }
        )
        self.head = nn.Linear(2 * width, 2)
        self.aux = nn.ModuleDict({m: nn.Linear(width, 2) for m in PAIR}) if aux_heads else None

    def branches(self) -> dict[str, nn.Module]:
        return dict(self.branch.items())

    @classmethod
    def example_inputs(cls, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return {m: torch.randn(batch, 3, 16, 16, generator=generator) for m in PAIR}

    def forward(self, inputs, present=None) -> HostOutput:
        present = self.check_inputs(inputs, present)
        feats = {m: self.branch[m](inputs[m]) * present[:, i, None] for i, m in enumerate(PAIR)}
        aux = {m: self.aux[m](feats[m]) for m in PAIR} if self.aux is not None else None
        return HostOutput(self.head(torch.cat([feats[m] for m in PAIR], dim=1)), aux=aux, present=present)


class HeadlessHost(PairHost):
    """Every parameter inside a branch: no fusion head to read the clipping trigger from."""

    def branches(self) -> dict[str, nn.Module]:
        return {"rgb": self.branch["rgb"], "depth": nn.ModuleList([self.branch["depth"], self.head])}


class PairTask:
    """The accessors the plug-ins read (``Task``'s), for a LoopContext."""

    modalities = PAIR

    def target(self, batch, device=None):
        return batch["label"] if device is None else batch["label"].to(device)

    def modality_logits(self, output):
        return dict(output.modality_logits or output.aux or {})

    def per_sample_loss(self, logits, batch):
        return F.cross_entropy(logits.float(), batch["label"], reduction="none")


@pytest.fixture
def pair_root(toy, root, monkeypatch):
    monkeypatch.setitem(HOSTS.entries, "pair", ModelInfo("pair", PairHost))
    return root


def pair_config(root, options=None, **sections):
    base = {
        "host": {"name": "pair", "options": {"aux_heads": False}},
        "data": {"modalities": list(PAIR)},
        "mwam": {"intervention": "none"},
        "plugins": [{"name": "agm", "options": dict(options or {})}],
    }
    return toy_config(root, **{**base, **sections})


def make_batch(seed=1, size=6, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    inputs = {m: x * scale for m, x in PairHost.example_inputs(size, g).items()}
    return {"inputs": inputs, "label": torch.randint(0, 2, (size,), generator=g)}


def plugin_step(plugin, ctx, host, batch, optimizer=None):
    """One step through the plug-in's hooks in a plain loop; returns (plain CE on the fused output, the loss)."""
    host.train()
    plugin.before_forward(ctx, batch["inputs"])
    output = host(batch["inputs"])
    plain = F.cross_entropy(output.logits, batch["label"])
    loss, _ = plugin.loss(ctx, StepData(batch["inputs"], output, batch, LossTerms(plain, {})), plain, {})
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
    else:
        host.zero_grad(set_to_none=True)
    loss.backward()
    plugin.before_optimizer_step(ctx)
    if optimizer is not None:
        optimizer.step()
    return plain, loss


# ---------------------------------------------------------------- the authors' code, transcribed
class Modality_out(nn.Module):  # noqa: N801 -- the authors' name
    def forward(self, x):
        return x


class OfficialGradMod(nn.Module):
    """lihong2303/AGM_ICCV2023 model/CREMAD_net.py l.7-72 (5a65542), transcribed around a two-modality host: audio
    is its first modality, visual its second; ``pad_*`` zero that input (``AVClassifier.forward`` l.100-105)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.m_v_o, self.m_a_o = Modality_out(), Modality_out()
        self.scale_a = self.scale_v = 1.0
        self.m_a_o.register_full_backward_hook(self.hooka)
        self.m_v_o.register_full_backward_hook(self.hookv)

    def hooka(self, m, ginp, gout):
        gnew = ginp[0].clone()
        return (gnew * self.scale_a,)

    def hookv(self, m, ginp, gout):
        gnew = ginp[0].clone()
        return (gnew * self.scale_v,)

    def update_scale(self, coeff_a, coeff_v):
        self.scale_a, self.scale_v = coeff_a, coeff_v

    def run(self, audio, visual, pad_audio=False, pad_visual=False):
        if pad_audio:
            audio = torch.zeros_like(audio, device=audio.device)
        if pad_visual:
            visual = torch.zeros_like(visual, device=visual.device)
        return self.net({"rgb": audio, "depth": visual}).logits

    def forward(self, audio, visual):
        total_out = self.run(audio, visual)
        self.net.eval()
        pad_visual_out = self.run(audio, visual, pad_visual=True)
        pad_audio_out = self.run(audio, visual, pad_audio=True)
        zero_padding_out = self.run(audio, visual, pad_audio=True, pad_visual=True)
        self.net.train()
        m_a = self.m_a_o(0.5 * (total_out - pad_audio_out + pad_visual_out))
        m_v = self.m_v_o(0.5 * (total_out - pad_visual_out + pad_audio_out))
        return total_out, pad_visual_out, pad_audio_out, zero_padding_out, m_a + m_v


def official_scores(out_a, out_v, label):
    """run/CREMAD_main.py l.130-143."""
    softmax = nn.Softmax(dim=1)
    score_audio = 0.0
    score_visual = 0.0
    for k in range(out_a.size(0)):
        if torch.isinf(torch.log(softmax(out_a)[k][label[k]])) or softmax(out_a)[k][label[k]] < 1e-8:
            score_audio += -torch.log(torch.tensor(1e-8, dtype=out_a.dtype, device=out_a.device))
        else:
            score_audio += -torch.log(softmax(out_a)[k][label[k]])
        if torch.isinf(torch.log(softmax(out_v)[k][label[k]])) or softmax(out_v)[k][label[k]] < 1e-8:
            score_visual += -torch.log(torch.tensor(1e-8, dtype=out_v.dtype, device=out_v.device))
        else:
            score_visual += -torch.log(softmax(out_v)[k][label[k]])
    return score_audio / out_a.size(0), score_visual / out_v.size(0)


def official_coefficients(score_audio, score_visual, train_score_a, train_score_v, iteration, alpha):
    """run/CREMAD_main.py l.145-155: (coeff_a, coeff_v) and the updated running scores."""
    ratio_a = math.exp(score_visual - score_audio)
    ratio_v = math.exp(score_audio - score_visual)
    optimal_ratio_a = math.exp(train_score_v - train_score_a)
    optimal_ratio_v = math.exp(train_score_a - train_score_v)
    coeff_a = math.exp(alpha * (min(optimal_ratio_a - ratio_a, 10)))
    coeff_v = math.exp(alpha * (min(optimal_ratio_v - ratio_v, 10)))
    train_score_a = train_score_a * (iteration - 1) / iteration + score_audio / iteration
    train_score_v = train_score_v * (iteration - 1) / iteration + score_visual / iteration
    return (coeff_a, coeff_v), (train_score_a, train_score_v)


def official_step(model, optimizer, batch, state, alpha):
    """run/CREMAD_main.py l.63-69, 108, 127-166 (AGM inside the modulation epochs) and l.233-244."""
    criterion = nn.CrossEntropyLoss()
    spec, image, label = batch["inputs"]["rgb"], batch["inputs"]["depth"], batch["label"]
    total_out, pad_visual_out, pad_audio_out, _zero_padding_out, out = model(spec, image)
    out_a = 0.5 * (total_out - pad_audio_out + pad_visual_out)
    out_v = 0.5 * (total_out - pad_visual_out + pad_audio_out)
    loss = criterion(out, label)
    optimizer.zero_grad()
    score_audio, score_visual = official_scores(out_a, out_v, label)
    state["iteration"] += 1
    coeffs, state["train"] = official_coefficients(
        score_audio.item(), score_visual.item(), *state["train"], state["iteration"], alpha
    )
    model.update_scale(*coeffs)
    loss.backward()
    grad_max = torch.max(model.net.head.weight.grad)
    grad_min = torch.min(model.net.head.weight.grad)
    clipped = bool(grad_max > 1 or grad_min < -1)
    if clipped:
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    return coeffs, clipped, loss


def balancebenchmark_outputs(run, modalitys):
    """BalanceBenchmark AGM_trainer.py::newGrad l.225-267 (4c1482f); ``run(padding)`` is the model's output with
    the modalities in ``padding`` zeroed (``generate_all_combinations(.., include_empty=False)`` inlined)."""
    modality_nums = len(modalitys)
    res, res_cache = {}, {}
    for modality in modalitys:
        temp_modality = list(modalitys)
        temp_modality.remove(modality)
        sizes = range(1, len(temp_modality) + 1)
        combinations = [list(c) for r in sizes for c in itertools.combinations(temp_modality, r)]
        for combo in combinations:
            indentifer = tuple(sorted(combo))
            length = len(combo)
            weight = math.factorial(length) * math.factorial(modality_nums - length - 1) / math.factorial(modality_nums)
            if indentifer not in res_cache:
                res_cache[indentifer] = run([another for another in modalitys if another not in combo])
            out = res_cache[indentifer]
            combo_add = [*combo, modality]
            indentifer = tuple(sorted(combo_add))
            if indentifer not in res_cache:
                res_cache[indentifer] = run([another for another in modalitys if another not in combo_add])
            out_add = res_cache[indentifer]
            if modality not in res:
                res[modality] = weight * (out_add - out)
            else:
                res[modality] += weight * (out_add - out)
    return res


def balancebenchmark_coefficients(scores, train_scores, iteration, alpha, modalitys):
    """AGM_trainer.py l.562-574 (running scores as Python floats here, float32 tensors there)."""
    num = len(modalitys)
    scores_mean = sum(scores.values()) / num
    train_score_mean = sum(train_scores.values()) / num
    coeffs = {}
    for modality in modalitys:
        ratio = math.exp(num / (num - 1) * (scores[modality] - scores_mean))
        optimal_ratio = math.exp(num / (num - 1) * (train_scores[modality] - train_score_mean))
        coeffs[modality] = math.exp(alpha * min(optimal_ratio - ratio, 7))
        train_scores[modality] = train_scores[modality] * (iteration - 1) / iteration + scores[modality] / iteration
    return coeffs


def balancebenchmark_step(host, optimizer, batch, train_scores, iteration, alpha):
    """AGM_trainer.py l.535-585: newGrad (eval, no_grad), the train-mode forward, CE, backward, the scores, the
    parameter gradients times k (names containing the modality, non-1-D), the clip at 5."""
    softmax, label, modalitys = nn.Softmax(dim=1), batch["label"], list(PAIR)

    def run(padding):
        return host({m: torch.zeros_like(x) if m in padding else x for m, x in batch["inputs"].items()}).logits

    with torch.no_grad():
        host.eval()
        res = balancebenchmark_outputs(run, modalitys)
    host.train()
    out = host(batch["inputs"]).logits
    loss = F.cross_entropy(out, label)
    optimizer.zero_grad()
    loss.backward()
    scores = {}
    for modality in modalitys:
        out_m, total = res[modality], 0.0
        for k in range(out_m.size(0)):
            if torch.isinf(torch.log(softmax(out_m)[k][label[k]])) or softmax(out_m)[k][label[k]] < 1e-8:
                total += -torch.log(torch.tensor(1e-8, dtype=out_m.dtype))
            else:
                total += -torch.log(softmax(out_m)[k][label[k]])
        scores[modality] = (total / out_m.size(0)).item()
    coeffs = balancebenchmark_coefficients(scores, train_scores, iteration, alpha, modalitys)
    for name, parms in host.named_parameters():
        for modality in modalitys:
            if modality in name and len(parms.grad.size()) != 1:
                parms.grad *= coeffs[modality]
    grad_max, grad_min = torch.max(host.head.weight.grad), torch.min(host.head.weight.grad)
    if grad_max > 5 or grad_min < -5:
        nn.utils.clip_grad_norm_(host.parameters(), max_norm=5.0)
    optimizer.step()
    return coeffs


# ---------------------------------------------------------------- options
def test_options_follow_the_variant_and_are_validated(pair_root):
    official = AGMOptions().settings()
    assert (official["alpha"], official["cap"], official["clip"]) == (1.0, 10.0, 1.0)
    assert official["after_modulation"] == "hold" and official["all_zero_pass"] and official["modulation_end"] is None
    bench = AGMOptions(variant="balancebenchmark").settings()
    assert (bench["alpha"], bench["cap"], bench["clip"], bench["after_modulation"]) == (0.1, 7.0, 5.0, "release")
    for bad, message in [
        ({"variant": "bogus"}, "variant must be one of"),
        ({"alpha": -0.1}, "alpha must be a finite number > 0"),
        ({"cap": math.inf}, "cap must be"),
        ({"clip": 0}, "clip must be"),
        ({"modulation_start": None}, "modulation_start must be an epoch"),
        ({"modulation_start": 5, "modulation_end": 4}, r"modulation_end \(4\) must not be before"),
        ({"after_modulation": "keep"}, "after_modulation must be one of"),
        ({"variant": "balancebenchmark", "all_zero_pass": True}, "balancebenchmark has none"),
    ]:
        with pytest.raises(ValueError, match=message):
            AGMOptions(**bad)
    assert pair_config(pair_root, {"variant": "balancebenchmark", "alpha": 1.0}).plugins[0].options["alpha"] == 1.0
    with pytest.raises(ConfigError, match="cap must be"):
        pair_config(pair_root, {"cap": -1})


# ---------------------------------------------------------------- the formulas
def test_formulas_by_hand():
    k, ratio, opt = maths.official_coefficients([1.0, 2.0], [0.0, 0.0], 1.0, 10.0)
    assert ratio == pytest.approx([math.e, 1 / math.e]) and opt == [1.0, 1.0]
    assert k == pytest.approx([math.exp(1 - math.e), math.exp(1 - 1 / math.e)])  # 0.179374, 1.881596
    assert k[0] == pytest.approx(0.179374, abs=1e-6) and k[1] == pytest.approx(1.881596, abs=1e-6)
    k, _, _ = maths.official_coefficients([0.0, 0.0], [0.0, 5.0], 1.0, 10.0)  # opt_a - ratio_a = e^5 - 1 > 10: capped
    assert k[0] == pytest.approx(math.exp(10.0))
    k, ratio, _ = maths.balancebenchmark_coefficients([1.0, 2.0], [0.0, 0.0], 0.1, 7.0)
    assert ratio == pytest.approx([1 / math.e, math.e]), "BalanceBenchmark: ratio_a = exp(s_a - s_v)"
    assert k == pytest.approx([math.exp(0.1 * (1 - 1 / math.e)), math.exp(0.1 * (1 - math.e))])
    assert maths.running_mean(0.0, 3.0, 1) == 3.0 and maths.running_mean(3.0, 1.0, 2) == 2.0
    logits = torch.tensor([[0.0, 0.0], [0.0, -40.0]])
    assert maths.loss_score(logits, torch.tensor([0, 1])).item() == pytest.approx((math.log(2) - math.log(1e-8)) / 2)
    total, pad_a, pad_v = torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, -1.0]])
    o_a, o_v = maths.two_modality_outputs(total, pad_a, pad_v)
    assert o_a.tolist() == [[2.0, -0.5]] and o_v.tolist() == [[1.0, 1.5]] and torch.equal(o_a + o_v, total)


def test_scores_and_coefficients_match_the_authors_code_on_random_outputs():
    g = torch.Generator().manual_seed(4)
    running, train = [0.0, 0.0], (0.0, 0.0)
    for iteration in range(1, 6):
        out_a, out_v = torch.randn(8, 3, generator=g) * iteration, torch.randn(8, 3, generator=g) * 30
        label = torch.randint(0, 3, (8,), generator=g)
        expected_scores = [s.item() for s in official_scores(out_a, out_v, label)]
        scores = [maths.loss_score(o, label).item() for o in (out_a, out_v)]
        assert scores == pytest.approx(expected_scores, rel=1e-6)
        expected_k, train = official_coefficients(*scores, *train, iteration, 1.5)
        k, _, _ = maths.official_coefficients(scores, running, 1.5, 10.0)
        running = [maths.running_mean(r, s, iteration) for r, s in zip(running, scores, strict=True)]
        assert k == pytest.approx(list(expected_k), rel=1e-12) and running == pytest.approx(list(train), rel=1e-12)
    modalities = ["a", "v", "t"]
    values = {frozenset(c): torch.randn(4, 3, generator=g) for c in maths.nonempty_coalitions(modalities)}
    assert len(values) == 7

    def run(padding):
        return values[frozenset(m for m in modalities if m not in padding)]

    expected = balancebenchmark_outputs(run, modalities)
    outputs = maths.coalition_outputs(values, modalities)
    for m in modalities:
        torch.testing.assert_close(outputs[m], expected[m], rtol=0, atol=0)
    # M = 2: half the difference between the full output and the other modality alone (no empty coalition)
    two = maths.coalition_outputs({frozenset("a"): values[frozenset("a")], frozenset("v"): values[frozenset("v")],
                                   frozenset("av"): values[frozenset("av")]}, ["a", "v"])  # fmt: skip
    torch.testing.assert_close(two["a"], 0.5 * (values[frozenset("av")] - values[frozenset("v")]))
    scores, train_scores = {"a": 0.3, "v": 1.1, "t": 0.7}, {"a": 0.5, "v": 0.6, "t": 0.2}
    k, _, _ = maths.balancebenchmark_coefficients(list(scores.values()), list(train_scores.values()), 0.1, 7.0)
    expected = balancebenchmark_coefficients(scores, dict(train_scores), 3, 0.1, modalities)
    assert k == pytest.approx([expected[m] for m in modalities])


# ---------------------------------------------------------------- whole steps against the authors' loops
def test_official_steps_match_the_authors_gradmod_and_loop():
    torch.manual_seed(0)
    host = PairHost()
    with torch.no_grad():  # large features: large head gradients, so that the clip acts now and then
        for m in PAIR:
            host.branch[m][5].weight.mul_(8.0)
    ours = copy.deepcopy(host)
    model = OfficialGradMod(host)
    theirs_opt = torch.optim.SGD(model.parameters(), lr=0.05)
    ours_opt = torch.optim.SGD(ours.parameters(), lr=0.05)
    plugin = AGM(AGMOptions(alpha=1.5))
    ctx = LoopContext(host=ours, task=PairTask())
    plugin.setup(ctx, {})
    state, clipped = {"iteration": 0, "train": (0.0, 0.0)}, []
    for seed in range(4):
        batch = make_batch(seed)
        coeffs, was_clipped, their_loss = official_step(model, theirs_opt, batch, state, 1.5)
        plain, loss = plugin_step(plugin, ctx, ours, batch, ours_opt)
        torch.testing.assert_close(loss, their_loss)
        torch.testing.assert_close(loss, plain, msg="the loss value is the plain CE on the fused output")
        values = {}
        plugin.on_log(ctx, values)
        assert [values["agm/k/rgb"], values["agm/k/depth"]] == pytest.approx(list(coeffs), rel=1e-5)
        assert values["agm/clipped"] == float(was_clipped)
        clipped.append(was_clipped)
        for (name, a), b in zip(host.named_parameters(), ours.parameters(), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
        for a, b in zip(host.buffers(), ours.buffers(), strict=True):
            torch.testing.assert_close(b, a, msg="BatchNorm's running statistics: the passes are in eval mode")
    assert any(clipped) and not all(clipped), clipped
    assert plugin.iteration == 4 and plugin.running == pytest.approx(list(state["train"]), rel=1e-5)


def test_balancebenchmark_steps_match_its_trainer():
    torch.manual_seed(0)
    host = PairHost()
    ours = copy.deepcopy(host)
    theirs_opt = torch.optim.SGD(host.parameters(), lr=0.05)
    ours_opt = torch.optim.SGD(ours.parameters(), lr=0.05)
    plugin = AGM(AGMOptions(variant="balancebenchmark", alpha=0.5))
    ctx = LoopContext(host=ours, task=PairTask())
    plugin.setup(ctx, {})
    train_scores = {"rgb": 0.0, "depth": 0.0}
    for iteration, seed in enumerate(range(4), start=1):
        batch = make_batch(seed, scale=3.0)
        coeffs = balancebenchmark_step(host, theirs_opt, batch, train_scores, iteration, 0.5)
        plain, loss = plugin_step(plugin, ctx, ours, batch, ours_opt)
        assert loss is plain, "BalanceBenchmark's loss is the plain CE"
        assert plugin.applied == pytest.approx([coeffs["rgb"], coeffs["depth"]], rel=1e-5)
        assert min(plugin.applied) != max(plugin.applied)
        for (name, a), b in zip(host.named_parameters(), ours.parameters(), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    assert plugin.running == pytest.approx([train_scores["rgb"], train_scores["depth"]], rel=1e-5)


def test_the_official_loss_has_the_fused_value_and_k_times_the_gradient_of_each_output():
    g = torch.Generator().manual_seed(2)
    o_a, o_v = torch.randn(5, 3, generator=g, requires_grad=True), torch.randn(5, 3, generator=g, requires_grad=True)
    label = torch.randint(0, 3, (5,), generator=g)
    loss = F.cross_entropy(maths.scale_gradient(o_a, 0.25) + maths.scale_gradient(o_v, 3.0), label)
    loss.backward()
    z = (o_a + o_v).detach().requires_grad_(True)
    plain = F.cross_entropy(z, label)
    plain.backward()
    assert torch.equal(loss.detach(), plain.detach())
    torch.testing.assert_close(o_a.grad, 0.25 * z.grad, rtol=0, atol=0)
    torch.testing.assert_close(o_v.grad, 3.0 * z.grad, rtol=0, atol=0)


def test_the_clip_reads_the_fusion_head_and_clips_every_gradient():
    host = PairHost()
    assert [n for n, _ in fusion_head_weights(host)] == ["head.weight"]
    for variant, clip in (("official", 1.0), ("balancebenchmark", 5.0)):
        plugin = AGM(AGMOptions(variant=variant))
        ctx = LoopContext(host=host, task=PairTask())
        plugin.setup(ctx, {})
        for big, expect_clip in ((0.9 * clip, False), (1.1 * clip, True)):
            for p in host.parameters():
                p.grad = torch.full_like(p, 0.5)
            host.head.weight.grad[0, 0] = big
            before = torch.cat([p.grad.flatten() for p in host.parameters()])
            plugin.before_optimizer_step(ctx)
            after = torch.cat([p.grad.flatten() for p in host.parameters()])
            if expect_clip:
                assert after.norm().item() == pytest.approx(clip, rel=1e-4)
                torch.testing.assert_close(after, before * (after.norm() / before.norm()))
            else:
                assert torch.equal(after, before), (variant, big)


def test_the_head_can_be_named_and_the_clip_turned_off(pair_root):
    host = PairHost()
    assert (
        [n for n, _ in fusion_head_weights(host, "head")]
        == ["head.weight"]
        == [n for n, _ in fusion_head_weights(host, "head.weight")]
    )
    assert fusion_head_weights(host, "hea") == [], "a module path, not a string prefix"
    with pytest.raises(ValueError, match="names no trainable weight"):
        AGM(AGMOptions(head="branch.rgb.9")).setup(LoopContext(host=host, task=PairTask()), {})
    for bad, message in [
        ({"clipping": "no"}, "clipping must be true or false"),
        ({"head": ""}, "head must be a parameter name"),
        ({"head": "head", "clipping": False}, "with clipping: false it has no use"),
    ]:
        with pytest.raises(ValueError, match=message):
            AGMOptions(**bad)
    assert pair_config(pair_root, {"clipping": True, "head": None}).plugins[0].options == {}
    for variant in ("official", "balancebenchmark"):
        plugin = AGM(AGMOptions(variant=variant, clipping=False))
        ctx = LoopContext(host=HeadlessHost(), task=PairTask())
        plugin.setup(ctx, {})  # no fusion head needed
        for p in ctx.host.parameters():
            p.grad = torch.full_like(p, 100.0)
        plugin.before_optimizer_step(ctx)
        assert all(torch.equal(p.grad, torch.full_like(p, 100.0)) for p in ctx.host.parameters()), variant
        values = {}
        plugin.on_log(ctx, values)
        assert values["agm/clipped"] == 0.0 and plugin.describe()["clipping"] is False


# ---------------------------------------------------------------- runs
@pytest.mark.parametrize("variant", ["official", "balancebenchmark"])
def test_toy_runs_train_and_resume_exactly(tmp_path, pair_root, variant):
    config = pair_config(pair_root, {"variant": variant, "alpha": 1.0})
    whole = Trainer(config, Registry(tmp_path / "a"), RUNTIME)
    result_whole = whole.run()
    assert all(math.isfinite(entry["loss"]) for entry in result_whole["history"])
    record = next(p for p in result_whole["plugins"] if p["name"] == "agm")
    passes = {"official": {"with_gradient": 2, "without_gradient": 1}, "balancebenchmark": {"with_gradient": 0,
              "without_gradient": 3}}[variant]  # fmt: skip
    assert record["variant"] == variant and record["extra_forward_passes_per_step"] == passes
    state = whole.plugins["agm"].state_dict()
    assert state["iteration"] == 12 and all(math.isfinite(s) and s > 0 for s in state["running"])

    def stop(trainer, step):
        if step == 6:  # mid-epoch 1
            trainer.request_stop()

    registry = Registry(tmp_path / "b")
    with pytest.raises(TrainingInterruptedError):
        Trainer(config, registry, RUNTIME, callbacks=[stop]).run()
    resumed = Trainer(config, registry, RUNTIME)
    result = resumed.run(resume=True)
    assert torch.equal(weights(resumed.host), weights(whole.host))
    assert result["history"] == result_whole["history"] and result["subsets"] == result_whole["subsets"]
    assert resumed.plugins["agm"].state_dict() == state


def test_hold_keeps_the_last_coefficients_after_the_modulation_epochs(tmp_path, pair_root):
    for after in ("hold", "release"):
        config = pair_config(pair_root, {"modulation_end": 0, "after_modulation": after, "alpha": 2.0})
        trainer = Trainer(config, Registry(tmp_path / after), RUNTIME)
        seen: list = []
        trainer.callbacks.append(lambda t, step, seen=seen: seen.append((t.epoch, list(t.plugins["agm"].applied))))
        trainer.run()
        last_modulated = [k for epoch, k in seen if epoch == 0][-1]
        later = [k for epoch, k in seen if epoch > 0]
        assert last_modulated != [1.0, 1.0]
        assert all(k == (last_modulated if after == "hold" else [1.0, 1.0]) for k in later), after


def test_composes_with_mwam_and_sde(tmp_path, pair_root):
    """MWAM's K scales the branches' parameter gradients of every pass alike: with AGM, the gradients the optimiser
    sees are K_m times those without MWAM's intervention (clip out of reach), the head's equal; SDE's hooks leave
    the eval-mode passes alone."""
    options = {"clip": 1e9}
    both = Trainer(pair_config(pair_root, options, mwam={"intervention": "grad"}), Registry(tmp_path / "a"), RUNTIME)
    alone = Trainer(pair_config(pair_root, options, mwam={"intervention": "none"}), Registry(tmp_path / "b"), RUNTIME)
    for trainer in (both, alone):
        trainer.setup()
    assert both.plugins.names == ["standard", "agm", "mwam", "logger"]
    batch = next(iter(both.train_loader))
    edited, reference = _step_gradients(both, batch), _step_gradients(alone, batch)
    big_k = dict(zip(PAIR, both.plugins["mwam"].mwam.grad_scale.tolist(), strict=True))
    assert len(set(big_k.values())) > 1
    for name, grad in edited.items():
        modality = name.split(".")[1] if name.startswith("branch.") else None
        factor = 1.0 if modality is None else big_k[modality]
        torch.testing.assert_close(grad, reference[name] * factor, rtol=1e-5, atol=1e-8, msg=name)
    config = pair_config(pair_root, mwam={"intervention": "grad"}, sde={"enabled": True})
    result = Trainer(config, Registry(tmp_path / "c"), RUNTIME).run()
    assert all(math.isfinite(entry["loss"]) for entry in result["history"])


def _step_gradients(trainer, batch):
    ctx = trainer.step_context()
    inputs = trainer.task.inputs(batch, trainer.device)
    trainer.before_forward(inputs, ctx)
    output = trainer.model(inputs, None)
    loss, _ = trainer.compute_loss(inputs, output, batch, ctx)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.backward(loss)
    trainer.before_optimizer_step(ctx)
    return {name: p.grad.clone() for name, p in trainer.host.named_parameters() if p.grad is not None}


def test_auxiliary_terms_are_kept_and_balancebenchmark_takes_three_modalities(tmp_path, pair_root):
    config = pair_config(pair_root, host={"name": "pair", "options": {"aux_heads": True}})
    trainer = Trainer(config, Registry(tmp_path / "a"), RUNTIME)
    trainer.setup()
    batch = next(iter(trainer.train_loader))
    inputs = trainer.task.inputs(batch, trainer.device)
    output = trainer.model(inputs, None)
    loss, parts = trainer.compute_loss(inputs, output, batch, trainer.step_context())
    torch.testing.assert_close(loss, parts["loss/total"], msg="fused + auxiliary terms, the fused one AGM's")
    three = toy_config(pair_root, plugins=[{"name": "agm", "options": {"variant": "balancebenchmark"}}])
    result = Trainer(three, Registry(tmp_path / "b"), RUNTIME).run()  # the toy host: rgb, depth, ir
    assert next(p for p in result["plugins"] if p["name"] == "agm")["extra_forward_passes_per_step"] == {
        "with_gradient": 0,
        "without_gradient": 7,
    }
    assert all(math.isfinite(entry["loss"]) for entry in result["history"])


# ---------------------------------------------------------------- errors
def test_clear_errors(tmp_path, pair_root):
    with pytest.raises(ValueError, match=r"agm \(official\) is the authors' two-modality AGM.*3 modalities"):
        Trainer(toy_config(pair_root, plugins=["agm"]), Registry(tmp_path), RUNTIME).setup()
    with pytest.raises(ValueError, match="no trainable weight matrix outside its branches"):
        AGM().setup(LoopContext(host=HeadlessHost(), task=PairTask()), {})
    plugin, host = AGM(), PairHost()
    ctx = LoopContext(host=host, task=PairTask())
    plugin.setup(ctx, {})
    output = HostOutput(torch.zeros(2, 2, 4, 4))
    step = StepData(host.example_inputs(2), output, {"label": torch.zeros(2, 4, 4, dtype=torch.long)}, None)
    with pytest.raises(ValueError, match=r"agm scores classification predictions \(B, C\)"):
        plugin.loss(ctx, step, torch.tensor(0.0), {})


# ---------------------------------------------------------------- the real host
@pytest.mark.parametrize("variant", ["official", "balancebenchmark"])
def test_one_step_on_resnet18_concat(variant):
    torch.manual_seed(0)
    host = models.build("resnet18_concat", modalities=list(PAIR))
    assert [n for n, _ in fusion_head_weights(host)] == ["head.weight"]
    batch = {"inputs": host.example_inputs(4, torch.Generator().manual_seed(1)), "label": torch.tensor([0, 1, 1, 0])}
    plugin = AGM(AGMOptions(variant=variant))
    ctx = LoopContext(host=host, task=PairTask())
    plugin.setup(ctx, {})
    host.train()
    stats = {n: b.clone() for n, b in host.named_buffers()}
    plugin.before_forward(ctx, batch["inputs"])  # BalanceBenchmark's passes
    assert all(torch.equal(b, stats[n]) for n, b in host.named_buffers()), "eval-mode passes: statistics untouched"
    output = host(batch["inputs"])
    stats = {n: b.clone() for n, b in host.named_buffers()}
    plain = F.cross_entropy(output.logits, batch["label"])
    loss, _ = plugin.loss(ctx, StepData(batch["inputs"], output, batch, LossTerms(plain, {})), plain, {})  # official's
    assert all(m.training for m in host.modules()), "train mode restored"
    assert all(torch.equal(b, stats[n]) for n, b in host.named_buffers()), "eval-mode passes: statistics untouched"
    torch.testing.assert_close(loss, plain)
    host.zero_grad(set_to_none=True)
    loss.backward()
    plugin.before_optimizer_step(ctx)
    grads = [p.grad for p in host.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    values = {}
    plugin.on_log(ctx, values)
    assert all(math.isfinite(v) for v in values.values()) and {"agm/k/rgb", "agm/score/depth"} <= set(values)
