"""OGM-GE (``reproduce/methods/ogm_ge``): options and variants, Eq. 10 against a hand-computed case and against the
authors' code transcribed here (GeWu-Lab/OGM-GE_CVPR2022 ``main.py``, GeWu-Lab/BalanceBenchmark ``OGM_trainer.py``),
which gradients each rule modulates, the noise, a toy run, exact resume, composition with MWAM, the clear errors,
and one step on the real resnet18_concat host."""

from __future__ import annotations

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
from reproduce.methods.ogm_ge import OGMGE, OGMGEOptions, balancebenchmark_coefficients, official_coefficients
from reproduce.runs.config import ConfigError
from reproduce.runs.registry import Registry
from reproduce.tasks.base import LossTerms
from tests.toy_run import RUNTIME, toy_config, weights

PAIR = ("rgb", "depth")


# ---------------------------------------------------------------- a two-modality toy host and task
class PairHost(Host):
    """Two branches (conv -> BatchNorm -> ReLU -> pool -> linear), a concat head; per-modality predictions are
    the head's slices f_m W_m^T + b / 2 (as resnet18_concat) unless ``per_modality=False``."""

    modalities = PAIR

    def __init__(self, aux_heads: bool = False, per_modality: bool = True, width: int = 4) -> None:
        super().__init__()
        self.width, self.per_modality = width, per_modality
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
        logits = self.head(torch.cat([feats[m] for m in PAIR], dim=1))
        w, b, width = self.head.weight, self.head.bias, self.width
        slices = {m: feats[m] @ w[:, i * width : (i + 1) * width].T + b / 2 for i, m in enumerate(PAIR)}
        aux = {m: self.aux[m](feats[m]) for m in PAIR} if self.aux is not None else None
        return HostOutput(logits, aux=aux, present=present, modality_logits=slices if self.per_modality else None)


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
    plugin = {"name": "ogm_ge", "options": dict(options or {})}
    base = {
        "host": {"name": "pair", "options": {"aux_heads": False}},
        "data": {"modalities": list(PAIR)},
        "mwam": {"intervention": "none"},
        "plugins": [plugin],
    }
    return toy_config(root, **{**base, **sections})


def one_step(plugin, host, batch, epoch=0):
    """One step through the plug-in's hooks in a plain loop; the gradients the optimiser would see."""
    ctx = LoopContext(host=host, task=PairTask(), epoch=epoch)
    if not plugin.parameters:
        plugin.setup(ctx, {})
    host.zero_grad(set_to_none=True)
    output = host(batch["inputs"])
    loss = F.cross_entropy(output.logits, batch["label"])
    step = StepData(batch["inputs"], output, batch, LossTerms(loss, {}))
    new_loss, _ = plugin.loss(ctx, step, loss, {})
    assert new_loss is loss, "OGM-GE leaves the loss alone"
    loss.backward()
    plugin.before_optimizer_step(ctx)
    return output, {n: p.grad.clone() for n, p in host.named_parameters()}


def plain_gradients(host, batch):
    host.zero_grad(set_to_none=True)
    F.cross_entropy(host(batch["inputs"]).logits, batch["label"]).backward()
    return {n: p.grad.clone() for n, p in host.named_parameters()}


def make_batch(seed=1, size=6):
    g = torch.Generator().manual_seed(seed)
    return {"inputs": PairHost.example_inputs(size, g), "label": torch.randint(0, 2, (size,), generator=g)}


# ---------------------------------------------------------------- the authors' formulas, transcribed
def official_ogm(out_a, out_v, label, alpha):
    """GeWu-Lab/OGM-GE_CVPR2022 main.py l.105-124 (343dc1d), transcribed (audio = the first modality)."""
    softmax, relu, tanh = nn.Softmax(dim=1), nn.ReLU(inplace=True), nn.Tanh()
    score_v = sum([softmax(out_v)[i][label[i]] for i in range(out_v.size(0))])
    score_a = sum([softmax(out_a)[i][label[i]] for i in range(out_a.size(0))])
    ratio_v = score_v / score_a
    ratio_a = 1 / ratio_v
    if ratio_v > 1:
        coeff_v = 1 - tanh(alpha * relu(ratio_v))
        coeff_a = 1
    else:
        coeff_a = 1 - tanh(alpha * relu(ratio_a))
        coeff_v = 1
    return [float(coeff_a), float(coeff_v)]


def balancebenchmark_ogm(outs, label, alpha):
    """GeWu-Lab/BalanceBenchmark balancemm/trainer/OGM_trainer.py l.112-151 (4c1482f), two modalities, OGM_GE."""
    softmax, relu, tanh = nn.Softmax(dim=1), nn.ReLU(inplace=True), nn.Tanh()
    modality_list = list(outs)
    scores, ratios, coeffs = {}, {}, {}
    for modality in modality_list:
        score_modality = sum([softmax(outs[modality])[i][label[i]] for i in range(label.size(0))])
        scores[modality] = score_modality.detach().clone()
    for modality in modality_list:
        ratios[modality] = scores[modality].detach().clone()
        for modality_another in modality_list:
            if modality_another == modality:
                continue
            ratios[modality] /= scores[modality_another] + 1e-5
    for modality in modality_list:
        if ratios[modality] > 1:
            coeffs[modality] = max(1 - tanh(alpha * relu(ratios[modality])), 0)
        else:
            coeffs[modality] = 1
    return [float(coeffs[m]) for m in modality_list]


# ---------------------------------------------------------------- options
def test_options_follow_the_variant_and_are_validated(pair_root):
    official = OGMGEOptions().settings()
    assert (official["alpha"], official["modulation_start"], official["modulation_end"]) == (0.1, 0, 50)
    assert official["parameters"] == "conv" and official["noise"] and official["ratio_eps"] == 0
    bench = OGMGEOptions(variant="balancebenchmark").settings()
    assert (bench["alpha"], bench["modulation_start"], bench["modulation_end"]) == (0.3, 10, 80)
    assert bench["parameters"] == "matrix" and bench["ratio_eps"] == 1e-5 and bench["clamp"]
    assert OGMGEOptions(variant="balancebenchmark", alpha=0.1).settings()["alpha"] == 0.1
    for bad, message in [
        ({"variant": "bogus"}, "variant must be one of"),
        ({"alpha": 0}, "alpha must be a finite number > 0"),
        ({"alpha": math.nan}, "alpha must be"),
        ({"alpha": True}, "alpha must be"),
        ({"modulation_start": -1}, "modulation_start must be an epoch"),
        ({"modulation_end": 1.5}, "modulation_end must be an epoch"),
        ({"variant": "balancebenchmark", "modulation_start": 90}, r"modulation_end \(80\) must not be before"),
        ({"noise": "yes"}, "noise must be true"),
        ({"parameters": "all"}, "parameters must be one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            OGMGEOptions(**bad)
    # None means "the variant's value": an alpha equal to the official default stays in a benchmark run's options
    config = pair_config(pair_root, {"variant": "balancebenchmark", "alpha": 0.1})
    assert config.plugins[0].options == {"variant": "balancebenchmark", "alpha": 0.1}
    assert pair_config(pair_root, {"alpha": None}).key == pair_config(pair_root).key
    with pytest.raises(ConfigError, match="alpha must be"):
        pair_config(pair_root, {"alpha": -1})


# ---------------------------------------------------------------- Eq. 10
def test_coefficients_by_hand():
    k, rho = official_coefficients([2.0, 3.0], 0.1)  # rho_v = 1.5 > 1: visual (second) modulated
    assert rho == 1.5 and k[0] == 1.0 and k[1] == pytest.approx(0.851115, abs=1e-6)  # 1 - tanh(0.15)
    k, rho = official_coefficients([3.0, 2.0], 0.1)  # rho_a = 1.5: audio (first) modulated
    assert k[1] == 1.0 and k[0] == pytest.approx(0.851115, abs=1e-6)
    assert official_coefficients([2.0, 2.0], 0.1)[0] == [pytest.approx(1 - math.tanh(0.1)), 1.0], "a tie: the first"
    assert balancebenchmark_coefficients([2.0, 2.0], 0.3)[0] == [1.0, 1.0], "BalanceBenchmark: a tie, neither"
    k, rho = balancebenchmark_coefficients([2.0, 3.0], 0.3)
    assert k[0] == 1.0 and k[1] == pytest.approx(1 - math.tanh(0.3 * 3 / (2 + 1e-5)), abs=1e-12)
    assert rho == pytest.approx(1.5, abs=1e-5)
    assert official_coefficients([0.0, 1.0], 0.1)[0] == [1.0, 0.0], "a zero score: rho = inf, k = 0"


def test_coefficients_match_the_authors_code_on_random_logits():
    g = torch.Generator().manual_seed(3)
    for trial in range(20):
        label = torch.randint(0, 4, (8,), generator=g)
        out_a = torch.randn(8, 4, generator=g) * (0.5 + trial % 3)
        out_v = torch.randn(8, 4, generator=g)
        probs = [F.softmax(o, 1).gather(1, label[:, None]).sum().item() for o in (out_a, out_v)]
        for alpha in (0.1, 0.8):
            expected = official_ogm(out_a, out_v, label, alpha)  # float32 there, float64 here
            assert official_coefficients(probs, alpha)[0] == pytest.approx(expected, rel=1e-5, abs=1e-7)
            expected = balancebenchmark_ogm({"a": out_a, "v": out_v}, label, alpha)
            assert balancebenchmark_coefficients(probs, alpha)[0] == pytest.approx(expected, rel=1e-5, abs=1e-7)


# ---------------------------------------------------------------- which gradients
@pytest.mark.parametrize("variant", ["official", "balancebenchmark"])
def test_k_scales_the_rules_parameters_of_each_modality_only(variant):
    torch.manual_seed(0)
    host = PairHost()
    with torch.no_grad():
        host.branch["depth"][0].weight.mul_(4.0)  # depth dominates (its slice is the more confident)
    batch = make_batch()
    plain = plain_gradients(host, batch)
    plugin = OGMGE(OGMGEOptions(variant=variant, noise=False, modulation_start=0))
    output, edited = one_step(plugin, host, batch)
    slices = output.modality_logits
    if variant == "official":
        k = official_ogm(slices["rgb"].detach(), slices["depth"].detach(), batch["label"], 0.1)
    else:
        k = balancebenchmark_ogm({m: slices[m].detach() for m in PAIR}, batch["label"], 0.3)
    assert min(k) < 1.0, "one modality is modulated"
    k = dict(zip(PAIR, k, strict=True))
    for name, grad in edited.items():
        parts = name.split(".")
        modality = parts[1] if parts[0] == "branch" else None
        selected = grad.dim() == 4 if variant == "official" else grad.dim() > 1
        factor = k[modality] if modality and selected else 1.0
        torch.testing.assert_close(grad, plain[name] * factor, rtol=1e-5, atol=1e-8, msg=name)
    values = {}
    plugin.on_log(None, values)
    assert values["ogm_ge/k/rgb"] == pytest.approx(k["rgb"]) and values["ogm_ge/k/depth"] == pytest.approx(k["depth"])
    assert values["ogm_ge/modulating"] == 1.0 and "ogm_ge/ratio" in values and "ogm_ge/score/rgb" in values


def test_the_noise_has_the_unmodulated_gradients_std_and_only_in_the_modulation_epochs():
    torch.manual_seed(0)
    host = PairHost(width=64)  # conv weights of 1728 entries: the noise's std is estimated within a few percent
    batch = make_batch(size=8)
    plain = plain_gradients(host, batch)
    plugin = OGMGE(OGMGEOptions(modulation_end=3))
    _, edited = one_step(plugin, host, batch)
    values = {}
    plugin.on_log(None, values)
    for name, grad in edited.items():
        modality = name.split(".")[1] if name.startswith("branch.") else None
        if modality is None or grad.dim() != 4:
            assert torch.equal(grad, plain[name]), f"{name}: not modulated, no noise"
            continue
        noise = grad - plain[name] * values[f"ogm_ge/k/{modality}"]
        assert noise.abs().min() > 0, f"{name}: noise also where k = 1"
        ratio = float(noise.std() / (plain[name].std() + 1e-8))
        assert 0.9 < ratio < 1.1, f"{name}: noise std / gradient std = {ratio}"
    state = plugin.process_state_dict()["generator"].clone()
    _, late = one_step(plugin, host, batch, epoch=4)  # past modulation_end
    assert all(torch.equal(late[n], plain[n]) for n in plain), "outside the modulation epochs nothing changes"
    assert torch.equal(plugin.process_state_dict()["generator"], state), "and no noise is drawn"


# ---------------------------------------------------------------- runs
def test_a_toy_run_trains_and_records_the_plugin(tmp_path, pair_root):
    trainer = Trainer(pair_config(pair_root), Registry(tmp_path), RUNTIME)
    result = trainer.run()
    assert all(math.isfinite(entry["loss"]) for entry in result["history"])
    record = next(p for p in result["plugins"] if p["name"] == "ogm_ge")
    assert record["variant"] == "official" and record["alpha"] == 0.1 and record["parameters"] == "conv"
    values = {}
    trainer.plugins["ogm_ge"].on_log(trainer.ctx, values)
    assert all(math.isfinite(v) for v in values.values()) and {"ogm_ge/k/rgb", "ogm_ge/k/depth"} <= set(values)


def test_a_stopped_run_resumes_exactly_with_the_noise_generator(tmp_path, pair_root):
    config = pair_config(pair_root)
    whole = Trainer(config, Registry(tmp_path / "a"), RUNTIME)
    result_whole = whole.run()

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


def test_composes_with_mwam_k_times_k(tmp_path, pair_root):
    """MWAM's K during backward, OGM's k after: the conv gradients the optimiser sees are K_m k_m times the plain
    ones, the branches' other gradients K_m times, the head's untouched."""
    options = {"noise": False}
    both = Trainer(pair_config(pair_root, options, mwam={"intervention": "grad"}), Registry(tmp_path / "a"), RUNTIME)
    plain_config = pair_config(pair_root, plugins=[], mwam={"intervention": "none"})
    plain = Trainer(plain_config, Registry(tmp_path / "b"), RUNTIME)
    for trainer in (both, plain):
        trainer.setup()
    assert both.plugins.names == ["standard", "ogm_ge", "mwam", "logger"]
    batch = next(iter(both.train_loader))
    edited, reference = _step_gradients(both, batch), _step_gradients(plain, batch)
    big_k = dict(zip(PAIR, both.plugins["mwam"].mwam.grad_scale.tolist(), strict=True))
    values = {}
    both.plugins["ogm_ge"].on_log(both.ctx, values)
    assert min(values["ogm_ge/k/rgb"], values["ogm_ge/k/depth"]) < 1.0
    for name, grad in edited.items():
        modality = name.split(".")[1] if name.startswith("branch.") else None
        small_k = values[f"ogm_ge/k/{modality}"] if modality and grad.dim() == 4 else 1.0
        factor = 1.0 if modality is None else big_k[modality] * small_k
        torch.testing.assert_close(grad, reference[name] * factor, rtol=1e-5, atol=1e-8, msg=name)
    result = Trainer(both.config, Registry(tmp_path / "c"), RUNTIME).run()
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


# ---------------------------------------------------------------- errors
def test_clear_errors_for_other_modality_counts_and_hosts_without_per_modality_predictions(tmp_path, pair_root):
    three = toy_config(pair_root, plugins=["ogm_ge"])  # the toy host: rgb, depth, ir
    with pytest.raises(ValueError, match=r"ogm_ge modulates exactly two modalities.*3"):
        Trainer(three, Registry(tmp_path), RUNTIME).setup()
    host = PairHost(per_modality=False)
    with pytest.raises(ValueError, match=r"ogm_ge scores each modality by its own prediction.*PairHost"):
        one_step(OGMGE(), host, make_batch())
    with pytest.raises(RuntimeError, match="no scores were recorded"):
        OGMGE().before_optimizer_step(LoopContext(host=host))


def test_balancebenchmark_takes_three_modalities(tmp_path, pair_root):
    """Its rule for more than two modalities (cos-softmax of the correct samples over the minimum score: the
    formula's tests are in tests/test_balancing_dense.py) on the toy host's three modalities."""
    options = {"variant": "balancebenchmark", "modulation_start": 0}
    trainer = Trainer(
        toy_config(pair_root, plugins=[{"name": "ogm_ge", "options": options}]), Registry(tmp_path), RUNTIME
    )
    result = trainer.run()
    assert all(math.isfinite(entry["loss"]) for entry in result["history"])
    values = {}
    trainer.plugins["ogm_ge"].on_log(trainer.ctx, values)
    assert {f"ogm_ge/ratio/{m}" for m in ("rgb", "depth", "ir")} <= set(values) and "ogm_ge/ratio" not in values
    assert all(math.isfinite(v) for v in values.values())
    record = next(p for p in result["plugins"] if p["name"] == "ogm_ge")
    assert "softmax(cos(out_m))" in record["score"] and "min" in record["score"]


# ---------------------------------------------------------------- the real host
def test_one_step_on_resnet18_concat():
    torch.manual_seed(0)
    host = models.build("resnet18_concat", modalities=list(PAIR))
    batch = {"inputs": host.example_inputs(4, torch.Generator().manual_seed(1)), "label": torch.tensor([0, 1, 1, 0])}
    plain = plain_gradients(host, batch)
    plugin = OGMGE(OGMGEOptions(noise=False, alpha=0.8))
    output, edited = one_step(plugin, host, batch)
    k = official_ogm(*(output.modality_logits[m].detach() for m in PAIR), batch["label"], 0.8)
    k = dict(zip(PAIR, k, strict=True))
    assert min(k.values()) < 1.0
    for name, grad in edited.items():
        modality = name.split(".")[1] if name.startswith("encoders.") else None
        factor = k[modality] if modality and grad.dim() == 4 else 1.0
        torch.testing.assert_close(grad, plain[name] * factor, rtol=1e-4, atol=1e-7, msg=name)
