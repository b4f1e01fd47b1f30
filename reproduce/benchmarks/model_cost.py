"""Table 6 computed from the models (``make table6``): parameters, FLOPs and MWAM's time per step, with and without
MWAM, at the paper's input sizes.

Per model of the table that this repository builds (MMANet on CASIA-SURF, RFNet on BraTS2020; ESANet-MD arrives
with NYUv2):

* **Params. (M)**: the parameters an inference forward pass uses (held by the modules an eval-mode forward pass
  calls) -- the paper's convention: RFNet's 8.40 M leave out its training-only separate decoder
  (8.98 M in all), MMANet's 13.18 M its training-only auxiliary trunk. Both counts are kept. MWAM adds none (its
  scaling factors are computed, not learned).
* **Flops (G)**: PyTorch's ``FlopCounterMode`` on one eval forward pass of one sample, which counts 2 FLOPs per
  multiply-accumulate of convolutions and matrix products (a 3-D convolution: 2 x output voxels x C_out x C_in x
  k^3) and nothing for normalisation, activations or pooling. With MWAM: plus the FLOPs of one MWAM step (its block
  DCTs are matrix products) per sample.
* **MACs x batch (G)**: the same count as multiply-accumulates (FLOPs / 2) of a whole training batch -- what the
  paper's Flops column appears to be: RFNet 101.8 G x 2 = 203.6 G (paper 204.56), MMANet 0.94 G x 64 = 60.2 G
  (60.63), ESANet-MD 65.2 G x 8 = 521.9 G (526.60), each within 1 % (the rest: operations PyTorch's counter skips).
* **MWAM time**: ``MWAM.step`` alone (FRM of every modality, the bank, T and K, Alg. 1 lines 3-5) at the paper's
  training batch and input size, mean and std over repetitions, in milliseconds (the paper does not state its
  unit), on the device named in the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from mwam import MWAM
from mwam_harness import models
from reproduce.benchmarks.mwam_step import time_step
from reproduce.devices import device_name


@dataclass(frozen=True)
class CostModel:
    """A model of Table 6: the host, one sample's input shape (per modality when they differ: a mapping), and the
    paper's training batch."""

    column: str
    host: str
    sample_shape: tuple[int, ...] | Mapping[str, tuple[int, ...]]
    batch: int
    note: str
    host_options: dict[str, Any] = field(default_factory=dict)

    def shape(self, modality: str) -> tuple[int, ...]:
        return tuple(self.sample_shape[modality] if isinstance(self.sample_shape, Mapping) else self.sample_shape)


#: The models of Table 6 this repository builds, at the paper's input sizes and training batches (Sec. A.3):
#: MMANet on CASIA-SURF's 112 x 112 crops, batch 64; ESANet-MD on NYUv2's 480 x 640 images, batch 8; RFNet on
#: BraTS2020's 80^3 crops, batch 2.
COST_MODELS: tuple[CostModel, ...] = (
    CostModel("MMANet", "mmanet", (3, 112, 112), 64, "CASIA-SURF, 3 x 112 x 112 per modality"),
    CostModel(
        "ESANet-MD",
        "esanet_md",
        {"rgb": (3, 480, 640), "depth": (1, 480, 640)},
        8,
        "NYU-Depth V2, RGB 3 x 480 x 640 and depth 1 x 480 x 640",
    ),
    CostModel("RFNet", "rfnet", (1, 80, 80, 80), 2, "BraTS2020, 1 x 80^3 per modality"),
)


def _inputs(host: models.Host, batch: int, model: CostModel, device: torch.device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {m: torch.randn(batch, *model.shape(m), generator=generator).to(device) for m in host.modalities}


def inference_parameters(host: models.Host, inputs: dict[str, torch.Tensor]) -> int:
    """The number of parameters an eval-mode forward pass uses: those held directly by the modules it calls (the
    host's own parameters, e.g. position embeddings, included). Counting by gradients would miss RFNet's region-map
    generators, whose outputs are detached before the fusion."""
    called: set[int] = set()
    handles = [m.register_forward_pre_hook(lambda module, _: called.add(id(module))) for m in host.modules()]
    host.eval()
    try:
        with torch.inference_mode():
            host(inputs, None)
    finally:
        for handle in handles:
            handle.remove()
    seen: set[int] = set()
    used = 0
    for module in host.modules():
        if id(module) in called:
            for p in module.parameters(recurse=False):
                if id(p) not in seen:
                    seen.add(id(p))
                    used += p.numel()
    return used


def counted_flops(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def measure_model(model: CostModel, device: torch.device, iters: int = 20, warmup: int = 3) -> dict[str, Any]:
    """Parameters, FLOPs (without and with MWAM) and MWAM's time per step for ``model`` on ``device``."""
    torch.manual_seed(0)
    host = models.build(model.host, **model.host_options).to(device)
    one = _inputs(host, 1, model, device)
    used = inference_parameters(host, one)
    with torch.inference_mode():
        forward = counted_flops(lambda: host(one, None))
    mwam = MWAM.for_host(host, intervention="grad").to(device)
    with torch.no_grad():
        mwam_flops = counted_flops(lambda: mwam.step(one))
    batch = _inputs(host, model.batch, model, device)
    with torch.no_grad():
        timing = time_step(mwam.step, batch, device, warmup, iters)
    return {
        "host": model.host,
        "input": model.note,
        "parameters_inference": used,
        "parameters_total": sum(p.numel() for p in host.parameters()),
        "forward_flops_per_sample": forward,
        "mwam_flops_per_sample": mwam_flops,
        "mwam_batch": model.batch,
        "mwam_step_ms": timing,
    }


def cost_table(measured: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Table 6's quantities (``params_m``, ``flops_g``, ``mwam_time_mean`` / ``_std`` in ms) per column, the
    ``+MWAM`` columns included."""
    out: dict[str, dict[str, float]] = {}
    for column, m in measured.items():
        params = m["parameters_inference"] / 1e6
        flops = m["forward_flops_per_sample"] / 1e9
        out[column] = {"params_m": params, "flops_g": flops, "macs_batch_g": flops / 2 * m["mwam_batch"]}
        out[f"{column} +MWAM"] = {
            "params_m": params,
            "flops_g": flops + m["mwam_flops_per_sample"] / 1e9,
            "macs_batch_g": (flops + m["mwam_flops_per_sample"] / 1e9) / 2 * m["mwam_batch"],
            "mwam_time_mean": m["mwam_step_ms"]["mean_ms"],
            "mwam_time_std": m["mwam_step_ms"]["std_ms"],
        }
    return out


def run_cost(device: str = "cpu", columns: tuple[str, ...] | None = None, iters: int = 20, warmup: int = 3) -> dict:
    """``{"benchmark": "model_cost", "device": ..., "models": {column: measure_model(...)}, "table": cost_table}``."""
    dev = torch.device(device)
    chosen = [m for m in COST_MODELS if columns is None or m.column in columns]
    unknown = sorted(set(columns or ()) - {m.column for m in COST_MODELS})
    if unknown:
        raise ValueError(f"Table 6 models this repository builds: {[m.column for m in COST_MODELS]}; not {unknown}")
    measured = {m.column: measure_model(m, dev, iters, warmup) for m in chosen}
    return {
        "benchmark": "model_cost",
        "device": device_name(dev),
        "torch": torch.__version__,
        "models": measured,
        "table": cost_table(measured),
    }
