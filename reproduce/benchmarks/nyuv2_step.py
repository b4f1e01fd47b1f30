"""Speed of ESANet-MD (``make bench-nyuv2``): a training step with and without MWAM, MWAM's share of it, images per
second, peak memory, and the NYUv2 loader's throughput against the step.

On random images already on the device: a training step is forward, the task's loss (``segmentation2d``: the
median-frequency weighted CE over the full and the three side outputs; uniform weights here), backward and an SGD
step (lr 0.01, momentum 0.9, Nesterov, weight decay 1e-4), in fp32 on the CPU and under fp16 autocast with a
grad scaler on CUDA (the authors train with AMP); with MWAM, ``MWAM.step`` on the inputs first and its gradient
hooks on the two encoders. The loader: ``Nyuv2Dataset`` with the training augmentation on a synthetic set written
in the real layout at the benchmark's image size, through a ``DataLoader`` with ``workers`` processes.

The step without MWAM, with MWAM and MWAM's step alone are timed interleaved in one process
(:func:`reproduce.benchmarks.mwam_step.time_step_with_mwam`: each round times each once, the order rotated every
round, warm-up rounds discarded; medians with min / max / quartiles, ``mwam_over_plain_paired``: with / without in
the same round). The loader is timed on its own (one configuration, no variants).
"""

from __future__ import annotations

import resource
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from mwam import MWAM
from mwam_harness import models
from reproduce.benchmarks.mwam_step import time_step_with_mwam
from reproduce.devices import device_name
from reproduce.tasks.segmentation2d import downsampled_labels, weighted_cross_entropy

#: (height, width, batch, timed rounds, warm-up rounds) per device type: the paper's 480 x 640 at batch 8 on CUDA;
#: a small size on the CPU (a 480 x 640 step of the 72 M-parameter model takes about a minute on two cores).
DEFAULTS = {"cpu": (96, 128, 2, 2, 1), "cuda": (480, 640, 8, 10, 3)}
NUM_CLASSES = 40


def bench_step(device: torch.device, height: int, width: int, batch: int, iters: int, warmup: int) -> dict[str, Any]:
    """ESANet-MD's step with / without MWAM: ``iters`` timed rounds after ``warmup`` discarded ones (interleaved)."""
    torch.manual_seed(0)
    host = models.build("esanet_md").to(device)
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "rgb": torch.randn(batch, 3, height, width, generator=generator).to(device),
        "depth": torch.randn(batch, 1, height, width, generator=generator).to(device),
    }
    labels = torch.randint(0, NUM_CLASSES + 1, (batch, height, width), generator=generator).to(device)
    weights = torch.ones(NUM_CLASSES, device=device)
    optimizer = torch.optim.SGD(host.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=cuda)

    def step(x: dict[str, torch.Tensor], mwam: MWAM | None = None) -> None:
        host.train()
        if mwam is not None:
            mwam.step(x)
        with torch.autocast(device.type, dtype=torch.float16) if cuda else nullcontext():
            out = host(x, None)
            outputs = [out.logits, *out.extras["side"]]
            loss = sum(
                weighted_cross_entropy(o, downsampled_labels(labels, tuple(o.shape[-2:])), weights) for o in outputs
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    timed = time_step_with_mwam(step, host, inputs, device, warmup, iters)
    return {
        "image": [height, width],
        "batch": batch,
        "precision": "fp16 autocast" if cuda else "fp32",
        **timed,
        "images_per_s": batch / (timed["train_step_ms"]["median_ms"] / 1e3),
    }


def bench_loader(height: int, width: int, batch: int, batches: int, workers: int) -> dict[str, Any]:
    """Images per second of the training loader on a synthetic NYUv2 of ``height`` x ``width`` images."""
    from torch.utils.data import DataLoader

    from mwam_harness.datasets.nyuv2.loader import Nyuv2Dataset
    from mwam_harness.datasets.nyuv2.synthetic import write_nyuv2

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "nyuv2"
        write_nyuv2(root, num_train=max(batch * batches, 8), num_test=2, height=height, width=width)
        dataset = Nyuv2Dataset(root, "train", train=True, seed=0, height=height, width=width)
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
        begin, seen = time.perf_counter(), 0
        for i, item in enumerate(loader):
            seen += item["rgb"].shape[0]
            if i + 1 >= batches:
                break
        elapsed = time.perf_counter() - begin
    return {"images_per_s": seen / elapsed, "images": seen, "workers": workers, "image": [height, width]}


def run_benchmark(
    devices: list[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    batch: int | None = None,
    iters: int | None = None,
    warmup: int | None = None,
    workers: int = 2,
    loader_batches: int = 4,
) -> dict[str, Any]:
    """``{"benchmark": "nyuv2_step", "<device kind>": {"device", "esanet_md": {...}, "loader": {...},
    "loader_over_step": ...}}``."""
    if devices is None:
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    report: dict[str, Any] = {"benchmark": "nyuv2_step", "torch": torch.__version__}
    for name in devices:
        device = torch.device(name)
        kind = "cuda" if device.type == "cuda" else "cpu"
        d_h, d_w, d_batch, d_iters, d_warmup = DEFAULTS[kind]
        h, w, b = height or d_h, width or d_w, batch or d_batch
        entry: dict[str, Any] = {"device": device_name(device)}
        entry["esanet_md"] = bench_step(
            device, h, w, b, iters if iters is not None else d_iters, warmup if warmup is not None else d_warmup
        )
        entry["loader"] = bench_loader(h, w, b, loader_batches, workers)
        entry["loader_over_step"] = entry["loader"]["images_per_s"] / entry["esanet_md"]["images_per_s"]
        if kind == "cpu":
            entry["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report[kind] = entry
    return report
