"""Checks that only a GPU can make (skipped without CUDA)."""

import pytest
import torch

from mwam import MWAM, frm
from tests.reference import reference_frm

pytestmark = pytest.mark.gpu


def test_step_has_no_device_to_host_synchronisation():
    mwam = MWAM(modalities=("rgb", "depth", "ir"), intervention="none").cuda()
    x = {m: torch.randn(64, 3, 112, 112, device="cuda") for m in ("rgb", "depth", "ir")}
    mwam.step(x)  # warm-up: caches the DCT basis on the device
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        k = mwam.step(x)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert k.is_cuda


def test_cuda_frm_with_tf32_enabled_matches_scipy():
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")  # TF32 on; MWAM must not use it
    try:
        x = torch.randn(2, 3, 32, 32)
        value = frm(x.cuda(), rule="low_l1").item()
    finally:
        torch.set_float32_matmul_precision(previous)
    assert value == pytest.approx(reference_frm(x.double().numpy(), rule="low_l1"), rel=1e-5)


@pytest.mark.parametrize(("amp", "precision"), [("off", "fp32"), ("bf16", "bf16")])
def test_the_trainer_runs_on_cuda_in_fp32_by_default_or_bf16_and_channels_last(tmp_path, toy, root, amp, precision):
    from reproduce.engine.trainer import Trainer
    from reproduce.runs.registry import Registry
    from tests.toy_run import RUNTIME, toy_config

    trainer = Trainer(
        toy_config(root, train={"epochs": 1, "amp": amp}), Registry(tmp_path / "runs"), RUNTIME.replace(device="auto")
    )
    result = trainer.run()
    assert trainer.device.type == "cuda" and trainer.channels_last and result["precision"] == precision
    assert result["tf32"] == {"cudnn_conv": True, "cuda_matmul": False}, "PyTorch's defaults, as the authors had"
    assert result["device"] == torch.cuda.get_device_name() and len(result["subsets"]) == 7


def test_sf_md_encode_once_equals_a_forward_per_subset_on_cuda_under_bf16():
    from mwam_harness import models
    from mwam_harness.models import forward_subsets

    host = models.build("sf_md").cuda().eval().to(memory_format=torch.channels_last)
    x = {m: t.cuda().contiguous(memory_format=torch.channels_last) for m, t in host.example_inputs(8).items()}
    masks = [torch.tensor([a, b, c], device="cuda").expand(8, -1) for a, b, c in
             [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1)]]  # fmt: skip
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        once = forward_subsets(host, x, [m.bool() for m in masks])
        each = [host(x, m.bool()) for m in masks]
    assert all(torch.equal(a.logits, b.logits) for a, b in zip(once, each, strict=True))
