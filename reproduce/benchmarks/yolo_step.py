"""Speed of the two-stream YOLOv8n's ultralytics training step (``make bench-yolo``), with and without MWAM.

One step is what ``TwoStreamDetectionTrainer`` does per optimiser step at accumulate = 1: ultralytics' batch
preprocessing (/255) and, with MWAM, the MWAM plug-in's ``before_forward`` (its measurement of the RGB / IR halves;
``MWAMPlugin(deferred=True)`` through a ``LoopContext``, as the trainer), the forward pass and ultralytics'
``v8DetectionLoss`` (under fp16 autocast with a grad scaler on CUDA, as ultralytics' AMP; fp32 on the CPU),
backward, then the trainer's ``optimizer_step_with_mwam`` -- unscale, the plug-in's ``before_optimizer_step``
(MWAM's scaling of the backbone gradients), the global clip to norm 10, ultralytics' SGD (lr 0.01, momentum 0.937,
Nesterov) -- and no EMA (a constant cost of both variants). ``mwam_step_ms`` times MWAM's measurement alone.
Inputs: uint8 6-channel images and 4-12 random boxes per image, already on the device. The default size is the
paper's: batch 16 at 640 x 640 on both devices (a CPU step takes seconds).

The step without MWAM, with MWAM and MWAM's measurement alone are timed interleaved in one process, on the same
model (:mod:`reproduce.benchmarks.interleave`: each round times each once, the order rotated every round, warm-up
rounds discarded; medians with min / max / quartiles; ``mwam_over_plain_paired``: with / without in the same round).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from reproduce.benchmarks.interleave import interleave, synchroniser
from reproduce.devices import device_name

#: (image size, batch, timed rounds, warm-up rounds) per device type.
DEFAULTS = {"cpu": (640, 16, 2, 1), "cuda": (640, 16, 20, 5)}


def random_batch(batch: int, size: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """An ultralytics detection batch: ``img`` (B, 6, size, size) uint8, ``batch_idx``, ``cls`` (N, 1) and
    normalised xywh ``bboxes`` (N, 4)."""
    generator = torch.Generator().manual_seed(seed)
    counts = torch.randint(4, 13, (batch,), generator=generator)
    total = int(counts.sum())
    centre = torch.rand(total, 2, generator=generator) * 0.8 + 0.1
    extent = torch.rand(total, 2, generator=generator) * 0.15 + 0.03
    return {
        "img": torch.randint(0, 256, (batch, 6, size, size), generator=generator, dtype=torch.uint8).to(device),
        "batch_idx": torch.repeat_interleave(torch.arange(batch), counts).float().to(device),
        "cls": torch.randint(0, 5, (total, 1), generator=generator).float().to(device),
        "bboxes": torch.cat([centre, extent], 1).to(device),
    }


def bench_step(device: torch.device, size: int, batch: int, iters: int, warmup: int) -> dict[str, Any]:
    """The step with / without MWAM and MWAM alone: ``iters`` timed rounds after ``warmup`` discarded ones."""
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    from mwam_harness import models
    from reproduce.methods.context import LoopContext
    from reproduce.methods.mwam.plugin import MWAMPlugin
    from reproduce.yolo.trainer import optimizer_step_with_mwam

    torch.manual_seed(0)
    model = models.build("two_stream_yolov8n").to(device)
    model.args = get_cfg(DEFAULT_CFG)
    model.train()
    cuda = device.type == "cuda"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)
    scaler = torch.amp.GradScaler(device.type, enabled=cuda)
    ctx = LoopContext(host=model, device=device, optimizer=optimizer)
    mwam = MWAMPlugin("grad", deferred=True)
    mwam.setup(ctx, {})
    raw = random_batch(batch, size, device)

    def step(batch_: dict[str, torch.Tensor], with_mwam: bool) -> None:
        data = dict(batch_)
        data["img"] = data["img"].float() / 255
        if with_mwam:
            mwam.before_forward(ctx, {"rgb": data["img"][:, :3], "ir": data["img"][:, 3:]})
        with torch.autocast(device.type, dtype=torch.float16) if cuda else nullcontext():
            loss, _ = model(data)
        scaler.scale(loss.sum()).backward()
        optimizer_step_with_mwam(model, optimizer, scaler, None, mwam if with_mwam else None, ctx)

    halves = {"rgb": raw["img"][:, :3].float() / 255, "ir": raw["img"][:, 3:].float() / 255}

    def mwam_alone() -> None:
        with torch.no_grad():
            mwam.mwam.step(halves)

    timed = interleave(
        {"plain": lambda: step(raw, False), "mwam": lambda: step(raw, True), "mwam_alone": mwam_alone},
        rounds=iters,
        warmup=warmup,
        baseline="plain",
        sync=synchroniser(device),
    )
    plain, with_mwam, alone = (timed["variants"][k] for k in ("plain", "mwam", "mwam_alone"))
    return {
        "image": [size, size],
        "batch": batch,
        "precision": "fp16 autocast" if cuda else "fp32",
        "train_step_ms": plain,
        "train_step_mwam_ms": with_mwam,
        "mwam_step_ms": alone,
        "mwam_share_of_step": alone["median_ms"] / with_mwam["median_ms"],
        "mwam_over_plain_paired": with_mwam["paired_ratio"],
        "measurement": timed["measurement"],
        "images_per_s": batch / (plain["median_ms"] / 1e3),
        "images_per_s_mwam": batch / (with_mwam["median_ms"] / 1e3),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def run_benchmark(
    devices: list[str] | None = None,
    size: int | None = None,
    batch: int | None = None,
    iters: int | None = None,
    warmup: int | None = None,
) -> dict[str, Any]:
    """``{"benchmark": "yolo_step", "<device kind>": {"device", "two_stream_yolov8n": {...}}}``."""
    if devices is None:
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    report: dict[str, Any] = {"benchmark": "yolo_step", "torch": torch.__version__}
    for name in devices:
        device = torch.device(name)
        kind = "cuda" if device.type == "cuda" else "cpu"
        d_size, d_batch, d_iters, d_warmup = DEFAULTS[kind]
        report[kind] = {
            "device": device_name(device),
            "two_stream_yolov8n": bench_step(
                device,
                size or d_size,
                batch or d_batch,
                iters if iters is not None else d_iters,
                warmup if warmup is not None else d_warmup,
            ),
        }
    return report
