"""Speed of the BraTS hosts (``make bench-brats``): a training step with and without MWAM, MWAM's share of it,
samples per second, peak memory, forward FLOPs, and the evaluation of one volume's 15 subsets by sliding windows
(encoders once per window) against a single subset.

Per host and device, on random volumes already on the device: a training step is forward, the host's loss
(``reproduce.tasks.segmentation3d``: fused + deep supervision + separate decoders), backward and an Adam step, in
fp32; with MWAM, ``MWAM.step`` on the inputs first and its gradient hooks on the encoders (gradient editing).
FLOPs: PyTorch's ``FlopCounterMode`` on one eval forward pass of one sample. Peak memory: CUDA's
``max_memory_allocated`` (on the CPU the process's peak resident size, which includes everything else).

Compared variants are timed interleaved in one process (:mod:`reproduce.benchmarks.interleave`: each round times
each once, the order rotated every round, warm-up rounds discarded; medians with min / max / quartiles): the step
without MWAM, with MWAM and MWAM's step alone (``mwam_over_plain_paired``: with / without in the same round); the
15 subsets against the full set alone (``eval_15_over_one``: ratio of medians; ``eval_15_over_one_paired``).
"""

from __future__ import annotations

import resource
from typing import Any

import torch

from mwam import MWAM
from mwam_harness import models
from mwam_harness.datasets import dataset_spec
from reproduce.benchmarks.interleave import interleave, synchroniser
from reproduce.benchmarks.mwam_step import time_step_with_mwam
from reproduce.devices import device_name
from reproduce.tasks.base import StepContext
from reproduce.tasks.segmentation3d import Segmentation3DTask

MODALITIES = ("flair", "t1ce", "t1", "t2")
#: (window size, batch, timed rounds, warm-up rounds) per device type when the caller gives none: the CPU run stays
#: near a minute.
DEFAULTS = {"cpu": (32, 2, 2, 1), "cuda": (80, 2, 10, 3)}
HOSTS = ("rfnet", "mmformer")


def _volumes(batch: int, shape: tuple[int, int, int], device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, 1, *shape, generator=generator).to(device) for m in MODALITIES}


def host_options(name: str, size: int) -> dict[str, Any]:
    """Options that make host ``name`` take ``size``^3 windows (mmFormer's token grid is size / 16)."""
    return {"patch_size": size // 16} if name == "mmformer" else {}


def bench_host(name: str, device: torch.device, size: int, batch: int, iters: int, warmup: int) -> dict[str, Any]:
    """Host ``name``'s figures on ``device``: ``iters`` timed rounds after ``warmup`` discarded ones (interleaved)."""
    torch.manual_seed(0)
    host = models.build(name, **host_options(name, size)).to(device)
    task = Segmentation3DTask(dataset_spec("brats2020"), "/nonexistent", 0, {"crop": size})
    task.attach(host)
    inputs = _volumes(batch, (size,) * 3, device)
    labels = torch.randint(0, 4, (batch, size, size, size), generator=torch.Generator().manual_seed(1)).to(device)
    batch_dict = {"label": labels}
    optimizer = torch.optim.Adam(host.parameters(), lr=2e-4, amsgrad=True)
    ctx = StepContext(epoch=10**6, step_in_epoch=0, global_step=0, progress=0.5, epochs=10**6, steps_per_epoch=1)

    def step(x: dict[str, torch.Tensor], mwam: MWAM | None = None) -> None:
        host.train()
        if mwam is not None:
            mwam.step(x)
        terms = task.loss(host(x, None), batch_dict, ctx)
        loss = terms.fused + sum(terms.per_modality.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    timed = time_step_with_mwam(step, host, inputs, device, warmup, iters)

    host.eval()
    one = {m: x[:1] for m, x in inputs.items()}
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        host(one, None)
    volume_shape = tuple(round(size * f / 8) * 8 for f in (1.5, 1.5, 1.25))
    volume = _volumes(1, volume_shape, device, seed=2)
    masks = [
        torch.tensor([[code >> i & 1 for i in range(4)]], dtype=torch.bool, device=device) for code in range(1, 16)
    ]

    def evaluate(x: dict[str, torch.Tensor], chosen: list[torch.Tensor]) -> Any:
        with torch.inference_mode():
            return task.predict_subsets(host, x, chosen)

    eval_iters, eval_warmup = max(1, iters // 2), min(warmup, 1)
    evaluation = interleave(
        {"one": lambda: evaluate(volume, masks[-1:]), "all_15": lambda: evaluate(volume, masks)},
        rounds=eval_iters,
        warmup=eval_warmup,
        baseline="one",
        sync=synchroniser(device),
    )
    all_subsets, single = evaluation["variants"]["all_15"], evaluation["variants"]["one"]
    return {
        "parameters": sum(p.numel() for p in host.parameters()),
        "window": size,
        "batch": batch,
        "forward_gflops_per_sample": counter.get_total_flops() / 1e9,
        **timed,
        "samples_per_s": batch / (timed["train_step_ms"]["median_ms"] / 1e3),
        "eval_volume": list(volume_shape),
        "eval_15_subsets_ms": all_subsets,
        "eval_full_set_only_ms": single,
        "eval_15_over_one": all_subsets["median_ms"] / single["median_ms"],
        "eval_15_over_one_paired": all_subsets["paired_ratio"],
        "eval_measurement": evaluation["measurement"],
    }


def run_benchmark(
    devices: list[str] | None = None,
    hosts: tuple[str, ...] | None = None,
    size: int | None = None,
    batch: int | None = None,
    iters: int | None = None,
    warmup: int | None = None,
) -> dict[str, Any]:
    """``{"benchmark": "brats_step", "<device kind>": {"device": ..., "<host>": {...}}}``; hosts default to the
    registered BraTS hosts."""
    if devices is None:
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    hosts = hosts or tuple(h for h in HOSTS if h in models.list_models())
    report: dict[str, Any] = {"benchmark": "brats_step", "torch": torch.__version__, "precision": "fp32"}
    for name in devices:
        device = torch.device(name)
        kind = "cuda" if device.type == "cuda" else "cpu"
        d_size, d_batch, d_iters, d_warmup = DEFAULTS[kind]
        entry: dict[str, Any] = {"device": device_name(device)}
        for host in hosts:
            entry[host] = bench_host(
                host,
                device,
                size or d_size,
                batch or d_batch,
                iters if iters is not None else d_iters,
                warmup if warmup is not None else d_warmup,
            )
        if kind == "cpu":
            entry["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report[kind] = entry
    return report
