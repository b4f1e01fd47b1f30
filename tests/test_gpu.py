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
