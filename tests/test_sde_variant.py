"""SDE as a variant of the hosts (``sde: true``): branch hooks, the dual-domain loss in training, logging, resume,
and Table 4's SDE columns."""

import copy

import pytest
import torch

import mwam_harness.datasets.casia_surf as surf
from mwam_harness import models
from mwam_harness.models import HostOutput
from reproduce.engine.trainer import Trainer, TrainingInterruptedError
from reproduce.experiments import run_table
from reproduce.methods.sde.enhancer import BranchEnhancer
from reproduce.runs.config import ConfigError
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.tables.specs import table_runs
from tests.toy_run import RUNTIME, toy_config, use_tiny_smoke_preset, weights

pytestmark = pytest.mark.usefixtures("toy")


def sf_inputs(batch=6, size=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, 3, size, size, generator=g) for m in ("rgb", "depth", "ir")}


def test_hooks_enhance_the_pooled_embedding_in_training_only():
    host = models.build("sf_md", features=True)
    inputs = sf_inputs()
    host.eval()
    plain = host(inputs).logits
    raw = copy.deepcopy(host.special_bone_rgb).train()(inputs["rgb"]).mean(dim=(2, 3)).detach()  # no hook
    enhancer = BranchEnhancer(host.branches(), {})
    host.eval()
    assert torch.equal(host(inputs).logits, plain), "evaluation passes the branch outputs through"
    host.train()
    enhancer.begin_step(0.1)
    torch.manual_seed(0)
    out = host(inputs)
    for m in host.modalities:
        # the host's pooled features are the enhanced embeddings the loss sees (the change is added per pixel)
        torch.testing.assert_close(out.features[m], enhancer.embeddings[m], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(enhancer.embeddings["rgb"], raw, atol=1e-4), "enhancement changed the embedding"
    host.eval()
    with_hooks = host(inputs).logits  # (training changed BatchNorm's running statistics: compare after it)
    enhancer.remove()
    assert torch.equal(host(inputs).logits, with_hooks)


def test_the_dual_domain_loss_reaches_every_encoder_and_honours_the_mask():
    host = models.build("sf_md").train()
    enhancer = BranchEnhancer(host.branches(), {})
    enhancer.begin_step(0.5)
    host(sf_inputs())
    everything = HostOutput(torch.zeros(6, 2), present=torch.ones(6, 3, dtype=torch.bool))
    loss, parts = enhancer.loss(everything)  # every pair present in every sample
    assert torch.isfinite(loss) and parts
    loss.backward()
    for m, branch in host.branches().items():
        grads = [p.grad for p in branch.parameters() if p.grad is not None]
        assert grads and sum(float(g.abs().sum()) for g in grads) > 0, m
    # no sample with two modalities: no pair to align, a finite (zero) loss
    enhancer.begin_step(0.5)
    host(sf_inputs())
    only_rgb = torch.zeros(6, 3, dtype=torch.bool)
    only_rgb[:, 0] = True
    loss, _ = enhancer.loss(HostOutput(torch.zeros(6, 2), present=only_rgb))
    assert torch.isfinite(loss) and float(loss.detach()) == 0


def test_sde_variant_trains_end_to_end_and_logs_per_epoch(tmp_path, root):
    cfg = toy_config(root, train={"epochs": 2}, sde={"enabled": True})
    result = Trainer(cfg, Registry(tmp_path / "runs"), RUNTIME).run()
    assert result["variant"] == "toy+mwam-hybrid+sde"
    for entry in result["history"]:
        sde = entry["sde"]
        assert any(k.startswith("sde/energy/") for k in sde) and any("loss" in k or "nce" in k for k in sde), sde
        assert all(v == v for v in sde.values())  # no NaN
    assert cfg.key != toy_config(root, train={"epochs": 2}).key
    assert toy_config(root, sde={"enabled": True, "options": {}}).key == toy_config(root, sde={"enabled": True}).key
    with pytest.raises(ConfigError, match=r"sde\.options given but sde\.enabled is false"):
        toy_config(root, sde={"options": {"rho": 0.1}})
    with pytest.raises(ConfigError, match="unknown options"):
        toy_config(root, sde={"enabled": True, "options": {"bogus": 1}})


def test_the_loss_reads_the_hosts_own_embeddings_when_it_returns_them():
    host = models.build("sf_md", features=True).train()
    enhancer = BranchEnhancer(host.branches(), {})
    enhancer.begin_step(0.5)
    out = host(sf_inputs())
    chosen = {m: torch.randn(6, 128) for m in host.modalities}  # a host's choice of embedding
    loss_chosen, _ = enhancer.loss(HostOutput(out.logits, features=chosen, present=out.present))
    assert enhancer.embeddings is not None and all(torch.equal(enhancer.embeddings[m], chosen[m]) for m in chosen)
    enhancer.begin_step(0.5)
    out = host(sf_inputs())
    loss_hooks, _ = enhancer.loss(HostOutput(out.logits, present=out.present))  # fallback: the hooks' embeddings
    assert not torch.isclose(loss_chosen.detach(), loss_hooks.detach())


def test_sde_run_resumes_exactly(tmp_path, root):
    cfg = toy_config(root, sde={"enabled": True})
    whole = Trainer(cfg, Registry(tmp_path / "a"), RUNTIME)
    result_whole = whole.run()

    def stop(trainer, step):
        if step == 6:
            trainer.request_stop()

    with pytest.raises(TrainingInterruptedError):
        Trainer(cfg, Registry(tmp_path / "b"), RUNTIME, callbacks=[stop]).run()
    resumed = Trainer(cfg, Registry(tmp_path / "b"), RUNTIME)
    result = resumed.run(resume=True)
    assert torch.equal(weights(resumed.host), weights(whole.host))
    assert result["history"] == result_whole["history"] and result["subsets"] == result_whole["subsets"]


def test_table4_sde_columns_are_an_extension():
    spec = table_runs(4)
    smoke = surf.PRESETS["smoke"]
    assert {"sde", "released"} <= set(spec.extensions)
    plain = {runtime.column for _, runtime in spec.configs(None, smoke)}
    with_sde = {runtime.column: c for c, runtime in spec.configs(None, smoke, extensions=("sde",))}
    assert plain == {"SF-MD", "MMANet", "SF-MD +MWAM", "MMANet +MWAM"}
    assert {"SF-MD +SDE", "SF-MD +MWAM +SDE", "MMANet +SDE", "MMANet +MWAM +SDE"} <= set(with_sde) - plain
    assert all(with_sde[c].sde.enabled for c in set(with_sde) - plain)
    assert with_sde["SF-MD +MWAM +SDE"].mwam.intervention == "hybrid" and with_sde["SF-MD +MWAM +SDE"].sde.enabled
    assert with_sde["SF-MD +SDE"].mwam.intervention == "none" and with_sde["SF-MD +SDE"].sde.enabled
    mmanet = with_sde["MMANet +MWAM +SDE"]
    assert mmanet.method.name == "mmanet" and mmanet.mwam.intervention == "grad"
    with pytest.raises(ValueError, match="no extension"):
        spec.configs(None, smoke, extensions=("sdf",))


@pytest.mark.slow
def test_sf_md_with_sde_renders_beside_table4(tmp_path, monkeypatch):
    use_tiny_smoke_preset(monkeypatch)
    run_table(
        4,
        "smoke",
        columns=["SF-MD +SDE", "SF-MD +MWAM +SDE"],
        extensions=("sde",),
        runtime=Runtime(wandb="disabled", progress=False),
        output_dir=tmp_path / "out",
        results_dir=tmp_path / "results",
    )
    text = (tmp_path / "out" / "table4_vs_paper.md").read_text()
    assert "SYNTHETIC" in text.splitlines()[0]
    assert "SF-MD +SDE Acc ours" in text and "SF-MD +MWAM +SDE Acc ours" in text
    assert "| — |" in text  # no paper numbers for the extension


# ---------------------------------------------------------------- SDE on every host the engine trains
@pytest.mark.parametrize(
    "name", [n for n in models.list_models() if models.model_info(n).runner == "trainer"]
)
def test_the_sde_plugin_trains_every_host(name):
    """SDE as a plug-in on the host's feature branches: training forward passes are enhanced and recorded per
    modality, the dual-domain loss is finite and reaches every feature branch; evaluation is left alone."""
    from reproduce.methods import LoopContext, StepData
    from reproduce.methods.sde import SDEPlugin

    torch.manual_seed(0)
    host = models.build(name, **models.model_info(name).test_options)
    inputs = host.example_inputs(4, torch.Generator().manual_seed(1))
    host.eval()
    with torch.no_grad():
        before = host(inputs, None).logits
    plugin = SDEPlugin(seed=0)
    ctx = LoopContext(host=host, fixed_progress=0.5)
    plugin.setup(ctx, {})
    with torch.no_grad():
        assert torch.equal(host(inputs, None).logits, before), "evaluation passes the branch outputs through"
    host.train()
    host.training_dropout = lambda present, generator=None: present  # every sample keeps every pair (SDE's loss)
    plugin.before_forward(ctx, inputs)
    output = host(inputs, None)
    loss, parts = plugin.loss(ctx, StepData(inputs, output, {}, None), torch.zeros(()), {})
    assert set(plugin.enhancer.embeddings) == set(host.modalities) and torch.isfinite(loss) and parts["sde/total"] > 0
    loss.backward()
    for modality, branch in host.feature_branches().items():
        grads = [p.grad for p in branch.parameters() if p.grad is not None]
        assert grads and sum(float(g.abs().sum()) for g in grads) > 0, modality


@pytest.mark.parametrize(
    "table, column, plain, shared",
    [
        (4, "MMANet +SDE", "MMANet", "teacher"),  # the SF teacher is MMANet's, without SDE
        (4, "MMANet +MWAM +SDE", "MMANet +MWAM", "teacher"),
        (3, "MMANet +SDE", "MMANet", "teacher"),  # MMANet-seg's ESANet teacher
        (2, "GSS +SDE", "GSS", "init"),  # every GSS stage with SDE; the initial RFNet run is Table 2's RFNet column
        (2, "GSS +MWAM +SDE", "GSS +MWAM", "init"),
    ],
)
def test_sde_columns_of_methods_with_dependency_runs_share_the_plain_dependencies(table, column, plain, shared):
    """SDE applies to the column's own training (every GSS stage), never to a teacher or an initial run: those are
    the plain column's, trained once for both."""
    from unittest import mock

    from mwam_harness.datasets import dataset_spec
    from reproduce.engine.plan import plan_runs
    from reproduce.runs.config import DataConfig

    spec = table_runs(table)
    smoke = dataset_spec(spec.dataset).preset("smoke")
    with mock.patch.object(DataConfig, "fingerprint", lambda self: "data"):
        with_sde, without = (
            plan_runs([spec.configs(None, smoke, columns=[name], extensions=("sde",))[0]]) for name in (column, plain)
        )
        assert shared in with_sde[-1].dependencies or any(shared in p.dependencies for p in with_sde)
        assert with_sde[-1].config.sde.enabled and with_sde[-1].requested
        dependencies = {p.key for p in with_sde if not p.requested and not p.config.sde.enabled}
        assert dependencies and dependencies <= {p.key for p in without}, "the plain column's dependency runs"
        stages = [p for p in with_sde if p.config.method.name == with_sde[-1].config.method.name]
        assert all(p.config.sde.enabled for p in stages), "every stage of the method trains with SDE"
