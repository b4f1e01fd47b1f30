"""MWAM under PyTorch Lightning (mwam/integrations/lightning.py, docs/mwam.md "PyTorch Lightning"): K per micro-batch
through the hooks and per optimiser step through MWAMCallback, precision plugins, checkpoints, two-process DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

L = pytest.importorskip("lightning")

from mwam import MWAM  # noqa: E402
from mwam.integrations.lightning import MWAMCallback, find_mwam  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*GPU available but not used:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*reduced-precision inputs:UserWarning"),  # bf16-true casts the batch
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),  # lightning 2.6.6's own use of torch 2.14
]


class Pairs(Dataset):
    """Deterministic uint8 image pairs: RGB noise (3x16x16) and a smooth IR map with per-sample noise (1x16x16),
    so K differs between the modalities and from batch to batch. ``as_float``: normalised float32 tensors."""

    def __init__(self, size: int = 16, as_float: bool = True) -> None:
        g = torch.Generator().manual_seed(1234)
        self.rgb = torch.randint(0, 256, (size, 3, 16, 16), generator=g, dtype=torch.uint8)
        smooth = F.interpolate(torch.rand(size, 1, 4, 4, generator=g), size=(16, 16), mode="bilinear")
        level = 0.5 + torch.rand(size, 1, 1, 1, generator=g)  # of noise: K varies from batch to batch
        ir = ((smooth + level * torch.rand(size, 1, 16, 16, generator=g)) / (1 + level)).clamp(0, 1)
        self.ir = (ir * 255).round().to(torch.uint8)
        self.y = torch.randint(0, 2, (size,), generator=g)
        self.as_float = as_float

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rgb, ir = self.rgb[i], self.ir[i]
        return (normalise(rgb), normalise(ir), self.y[i]) if self.as_float else (rgb, ir, self.y[i])


def normalise(x: torch.Tensor) -> torch.Tensor:
    return (x.to(torch.float32) / 255 - 0.5) / 0.25


def loader(as_float: bool = True, batch: int = 4) -> DataLoader:
    return DataLoader(Pairs(as_float=as_float), batch_size=batch, shuffle=False)


def encoder(channels: int) -> nn.Module:
    convolution = nn.Conv2d(channels, 4, 3, stride=2, padding=1)
    return nn.Sequential(convolution, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class TwoEncoders(L.LightningModule):
    """Two encoders and a head, MWAM as an attribute; ``step`` in ``training_step`` (the recipe)."""

    def __init__(
        self, intervention: str = "grad", gradient_hooks: bool = True, call_step: bool = True, out: str = ""
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)  # every run starts from the same weights
        self.rgb, self.ir, self.head = encoder(3), encoder(1), nn.Linear(8, 2)
        self.mwam = MWAM(
            branches={"rgb": self.rgb, "ir": self.ir},
            intervention=intervention,
            gradient_hooks=gradient_hooks,
            frm_normalisation="per_element",  # 3 channels against 1
        )
        self.k: list[torch.Tensor] = []  # K of every micro-batch
        self.grads: list[dict[str, torch.Tensor]] = []  # what each optimiser step uses (after MWAMCallback's edit)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        rgb, ir, y = batch
        if rgb.dtype == torch.uint8:  # integers are not cast by *-true precision: normalise in float32 here
            rgb, ir = normalise(rgb), normalise(ir)
        if self.hparams.call_step:
            self.k.append(self.mwam.step({"rgb": rgb, "ir": ir}))
        features = torch.cat([self.rgb(rgb.to(self.dtype)), self.ir(ir.to(self.dtype))], dim=1)
        return F.cross_entropy(self.head(features).float(), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:  # after the callbacks' hooks
        self.grads.append({n: p.grad.detach().clone() for n, p in self.named_parameters() if p.grad is not None})

    def on_train_end(self) -> None:
        if self.hparams.out:  # DDP: every rank writes what it ended with
            state = {"k": torch.stack(self.k), "bank": self.mwam.bank.value.clone(), "steps": self.mwam.steps.clone()}
            torch.save({**state, "grads": self.grads[0]}, Path(self.hparams.out) / f"rank{self.global_rank}.pt")


def fit(
    module: TwoEncoders, callbacks: list | None = None, as_float: bool = True, ckpt_path: Path | None = None, **options
) -> L.Trainer:
    settings = {
        "accelerator": "cpu", "devices": 1, "max_steps": 1, "enable_progress_bar": False, "logger": False,
        "enable_checkpointing": False, "enable_model_summary": False, **options,
    }  # fmt: skip
    trainer = L.Trainer(callbacks=callbacks or [], **settings)
    trainer.fit(module, loader(as_float), ckpt_path=ckpt_path)
    return trainer


def branch_factor(name: str, k: torch.Tensor) -> float:
    return float(k[0]) if name.startswith("rgb.") else float(k[1]) if name.startswith("ir.") else 1.0


def assert_scaled(
    edited: dict[str, torch.Tensor], plain: dict[str, torch.Tensor], k: torch.Tensor, rtol: float = 1e-6
) -> None:
    assert set(edited) == set(plain)
    for name, grad in edited.items():
        torch.testing.assert_close(grad, branch_factor(name, k) * plain[name], rtol=rtol, atol=rtol * 1e-3)


def test_grad_mode_scales_each_encoder_by_k_and_the_callback_adds_nothing():
    plain = TwoEncoders("none")
    fit(plain, [MWAMCallback()])
    module, callback = TwoEncoders("grad"), MWAMCallback()
    trainer = fit(module, [callback])
    k = module.k[0]
    assert torch.equal(k, plain.k[0])  # "none" measures the same K
    assert abs(float(k[0] - k[1])) > 0.05 and abs(float(k[1]) - 1) > 0.05, k  # a test that can fail
    assert_scaled(module.grads[0], plain.grads[0], k)
    assert not callback.per_optimizer_step and callback.applied is None  # the hooks did it, per micro-batch
    assert float(trainer.callback_metrics["mwam/K/rgb"]) == pytest.approx(float(k[0]), rel=1e-6)
    assert float(trainer.callback_metrics["mwam/frm/ir"]) == pytest.approx(float(module.mwam.last_frm[1]), rel=1e-6)


def test_accumulation_without_hooks_applies_the_mean_k_once_per_optimizer_step():
    plain = TwoEncoders("none")
    fit(plain, [MWAMCallback()], accumulate_grad_batches=2)
    module, callback = TwoEncoders("grad", gradient_hooks=False), MWAMCallback()
    received: list[torch.Tensor] = []
    scale_gradients = module.mwam.scale_gradients
    module.mwam.scale_gradients = lambda scale=None: (received.append(scale.clone()), scale_gradients(scale))[1]
    trainer = fit(module, [callback], accumulate_grad_batches=2)
    assert callback.per_optimizer_step and len(module.k) == 2 and len(module.grads) == 1
    k0, k1 = module.k
    assert (k0 - k1).abs().max() > 1e-3, "the two micro-batches must differ for the mean to mean something"
    mean = (k0.double() + k1.double()) / 2
    assert len(received) == 1  # once, at the optimiser step
    torch.testing.assert_close(received[0], mean, rtol=1e-6, atol=0)
    torch.testing.assert_close(callback.applied, mean, rtol=1e-6, atol=0)
    assert_scaled(module.grads[0], plain.grads[0], mean)
    assert float(trainer.callback_metrics["mwam/K_applied/ir"]) == pytest.approx(float(mean[1]), rel=1e-6)


def test_bf16_mixed_gives_the_k_of_fp32():
    reference, mixed = TwoEncoders(), TwoEncoders()
    fit(reference, max_steps=2)
    fit(mixed, max_steps=2, precision="bf16-mixed")  # autocast wraps training_step; the batch stays float32
    assert torch.equal(torch.stack(mixed.k), torch.stack(reference.k))


def test_bf16_true_keeps_the_statistics_float64():
    module = TwoEncoders()
    fit(module, max_steps=2, as_float=False, precision="bf16-true")  # uint8 batch: not cast, normalised in fp32
    mwam = module.mwam
    assert module.rgb[0].weight.dtype == torch.bfloat16 and module.head.weight.dtype == torch.bfloat16
    for buffer in (mwam.bank.value, mwam.weight, mwam.last_frm, mwam.last_relative):
        assert buffer.dtype == torch.float64 and torch.isfinite(buffer).all()
    assert mwam.grad_scale.dtype == torch.float32 and int(mwam.steps) == 2
    reference = TwoEncoders()
    fit(reference, max_steps=2)  # the same samples as normalised float32
    torch.testing.assert_close(mwam.bank.value, reference.mwam.bank.value, rtol=1e-12, atol=0)
    assert torch.equal(torch.stack(module.k), torch.stack(reference.k))
    with pytest.warns(UserWarning, match="reduced-precision inputs"):  # a float batch is cast to bfloat16 first
        fit(TwoEncoders(), precision="bf16-true")


@pytest.mark.gpu
def test_16_mixed_on_cuda_gives_the_k_of_fp32_and_the_callback_scales_after_unscale():
    """``16-mixed`` (CUDA only): autocast leaves the batch float32, so K is fp32's; with accumulation and no hooks
    the callback's edit lands after GradScaler's ``unscale_``: the gradients the optimiser sees are mean K x the
    plain unscaled ones (float16 forward passes: compared at 1e-3)."""
    cuda = {"accelerator": "gpu", "devices": 1}
    reference, mixed = TwoEncoders(), TwoEncoders()
    fit(reference, max_steps=2, **cuda)
    fit(mixed, max_steps=2, precision="16-mixed", **cuda)
    torch.testing.assert_close(torch.stack(mixed.k), torch.stack(reference.k), rtol=1e-6, atol=0)
    plain = TwoEncoders("none")
    fit(plain, [MWAMCallback()], accumulate_grad_batches=2, precision="16-mixed", **cuda)
    module, callback = TwoEncoders("grad", gradient_hooks=False), MWAMCallback()
    fit(module, [callback], accumulate_grad_batches=2, precision="16-mixed", **cuda)
    mean = (module.k[0].double() + module.k[1].double()) / 2
    torch.testing.assert_close(callback.applied.cpu(), mean.cpu(), rtol=1e-6, atol=0)
    assert all(g.abs().max() < 1e3 for g in module.grads[0].values()), "gradients still carry the loss scale"
    edited = {n: g.float().cpu() for n, g in module.grads[0].items()}
    assert_scaled(edited, {n: g.float().cpu() for n, g in plain.grads[0].items()}, mean.cpu(), rtol=1e-3)


def test_bank_and_step_count_survive_a_checkpoint(tmp_path):
    module = TwoEncoders()
    trainer = fit(module, max_steps=4)  # one epoch of 4 batches: resuming starts the next epoch
    path = tmp_path / "mwam.ckpt"
    trainer.save_checkpoint(path)
    assert {"mwam.bank.value", "mwam.bank.initialized", "mwam.steps", "mwam.weight"} <= set(
        torch.load(path, weights_only=False)["state_dict"]
    )
    loaded = TwoEncoders.load_from_checkpoint(path)
    assert int(loaded.mwam.steps) == 4
    assert torch.equal(loaded.mwam.bank.value, module.mwam.bank.value) and loaded.mwam.bank.value.dtype == torch.float64
    assert torch.equal(loaded.mwam.weight, module.mwam.weight)
    # resuming continues the count and the bank as an uninterrupted run does
    resumed, straight = TwoEncoders(), TwoEncoders()
    fit(resumed, max_steps=5, ckpt_path=path)
    fit(straight, max_steps=5)
    assert int(resumed.mwam.steps) == 5 and len(resumed.k) == 1
    torch.testing.assert_close(resumed.mwam.bank.value, straight.mwam.bank.value, rtol=1e-12, atol=0)
    assert torch.equal(resumed.k[0], straight.k[-1])


def test_a_training_step_without_mwam_step_is_reported():
    with pytest.raises(RuntimeError, match=r"MWAM.step ran 0 time"):
        fit(TwoEncoders(call_step=False), [MWAMCallback()])


def test_the_callback_finds_the_module_s_only_mwam_and_importing_the_package_loads_nothing():
    module = nn.Module()
    module.inner = nn.Module()
    module.inner.balancer = MWAM(modalities=("a", "b"), intervention="none")
    assert find_mwam(module) is module.inner.balancer  # no attribute "mwam": the only MWAM
    assert find_mwam(module, "inner.balancer") is module.inner.balancer
    module.other = MWAM(modalities=("a", "b"), intervention="none")
    with pytest.raises(ValueError, match="several MWAMs"):
        find_mwam(module)
    code = "import sys, mwam, mwam.integrations; assert not {'torch', 'lightning'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(), reason="gloo")
def test_ddp_two_processes_agree_on_k_and_bank_and_scale_the_gradients(tmp_path):
    module = TwoEncoders(out=str(tmp_path))
    fit(module, [MWAMCallback()], max_steps=2, strategy="ddp_spawn", devices=2)  # pickles the module: hooks kept
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for name in ("k", "bank", "steps"):
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    assert int(ranks[0]["steps"]) == 2
    # the global batch of the first step: each rank's first 4 samples (Lightning's shuffling DistributedSampler)
    data, plain = Pairs(), TwoEncoders("none")
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    shards = [list(DistributedSampler(data, num_replicas=2, rank=r, shuffle=True, seed=seed))[:4] for r in (0, 1)]
    rgb, ir, y = (torch.stack(column) for column in zip(*(data[i] for i in shards[0] + shards[1]), strict=True))
    plain.training_step((rgb, ir, y), 0).backward()  # the mean loss over both shards, as DDP averages
    k = plain.k[0]
    torch.testing.assert_close(ranks[0]["k"][0], k, rtol=1e-6, atol=0)
    grads = {n: p.grad for n, p in plain.named_parameters()}
    for rank in ranks:
        assert_scaled(rank["grads"], grads, k, rtol=1e-5)  # all-reduced K x g (float32 sums in another order)
