"""Speed of the UCF-101 video host (``resnet18_concat_video``, Table 11): a training step with and without MWAM's
gradient editing, MWAM's own step, clips per second.

On random clips already on the device -- video (B, 3, T, H, W) and flow (B, 2, T, H, W), channels before time, with
different spectra (the textured ``rgb`` and the smooth ``depth`` of :func:`reproduce.benchmarks.mwam_step.make_inputs`,
the flow its first two channels) -- a training step is the host's forward on both modalities, cross-entropy over
101 classes, backward and an AdamW step (BalanceBenchmark's UCF-101 settings: lr 1e-3, weight decay 0.01); fp32 on
the CPU, bf16 autocast with a channels-last host on CUDA (the trainer's defaults there). With MWAM: ``MWAM.step`` on
the float32 clips first, read in the host's ``input_layouts()`` (``video`` for both: every frame cut into 8 x 8
patches), and its gradient hooks on the two encoders (``intervention="grad"``, the paper's defaults otherwise).

The step without MWAM (``plain``), with it (``mwam``) and MWAM's step alone (``mwam_alone``) are timed interleaved in
one process (:mod:`reproduce.benchmarks.interleave`: each round times each variant once, the order rotated every
round, warm-up rounds discarded); MWAM's hooks are on the host only around the ``mwam`` variant's timings (attached
and removed outside its timed window), so ``plain`` pays nothing of MWAM. Reported: medians with min / max /
quartiles, ``mwam_over_plain_paired`` (with / without MWAM in the same round), MWAM's share of the step, clips and
frames per second of the plain step, the K of the first MWAM step, and on CUDA the peak memory of one plain step.
CPU numbers are for relative comparison only (and noisy on a shared machine).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch

import mwam
from reproduce.benchmarks.interleave import torch_threads
from reproduce.benchmarks.mwam_step import make_inputs, time_step_with_mwam
from reproduce.devices import device_name

HOST = "resnet18_concat_video"
#: What :func:`time_step_with_mwam` measures that the report carries as it is.
TIMED = ("train_step_ms", "train_step_mwam_ms", "mwam_step_ms", "mwam_share_of_step", "mwam_over_plain_paired")
NUM_CLASSES = 101
#: (batch, frames, size, timed rounds, warm-up rounds, steps per timing) per device type: a small clip batch on the
#: CPU; on CUDA BalanceBenchmark's batch 32 of 3 frames at 224 x 224, 5 back-to-back steps per timing (pipelined).
DEFAULTS: dict[str, tuple[int, int, int, int, int, int]] = {"cpu": (4, 3, 112, 5, 1, 1), "cuda": (32, 3, 224, 10, 3, 5)}


def make_clips(
    batch: int, frames: int, size: int, device: torch.device | str = "cpu", seed: int = 0
) -> dict[str, torch.Tensor]:
    """``{"video": (batch, 3, frames, size, size), "flow": (batch, 2, frames, size, size)}`` float32 in [-1, 1]:
    the frames of :func:`make_inputs`' textured ``rgb`` and smooth ``depth`` (its first two channels), seeded."""
    images = make_inputs(batch * frames, size, "cpu", seed)

    def clip(x: torch.Tensor, channels: int) -> torch.Tensor:
        return x[:, :channels].reshape(batch, frames, channels, size, size).transpose(1, 2).contiguous().to(device)

    return {"video": clip(images["rgb"], 3), "flow": clip(images["depth"], 2)}


def bench_step(
    device: torch.device, batch: int, frames: int, size: int, rounds: int, warmup: int, steps: int
) -> dict[str, Any]:
    """The host's training step with / without MWAM and MWAM's step alone, interleaved (module docstring)."""
    from mwam_harness import models

    cuda = device.type == "cuda"
    torch.manual_seed(0)
    host = models.build(HOST, num_classes=NUM_CLASSES).to(device).train()
    if cuda:
        host = host.to(memory_format=torch.channels_last)
    clips = make_clips(batch, frames, size, device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=torch.Generator().manual_seed(1)).to(device)
    optimizer = torch.optim.AdamW(host.parameters(), lr=1e-3, weight_decay=0.01)

    def step(module: mwam.MWAM | None = None) -> None:
        if module is not None:
            module.step(clips)  # the float32 clips, before any autocast
        with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext():
            loss = torch.nn.functional.cross_entropy(host(clips).logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    probe = mwam.MWAM.for_host(host, intervention="grad").to(device)  # the timed MWAM is built the same way
    probe.remove_hooks()
    with warnings.catch_warnings():  # its one-time note that 3 and 2 channels differ in size (docs/balancing.md)
        warnings.filterwarnings("ignore", message="MWAM: the modalities differ in size", category=UserWarning)
        first_k = [float(k) for k in probe.step(clips)]  # K of the first step (the bank starts at its FRM)
        timed = time_step_with_mwam(
            lambda _, module=None: step(module), host, clips, device, warmup=warmup, iters=rounds, steps=steps
        )
    plain_ms = timed["train_step_ms"]["median_ms"]
    result: dict[str, Any] = {
        "device_name": device_name(device),
        "batch": batch,
        "frames": frames,
        "size": size,
        "clip_shapes": {m: list(x.shape[1:]) for m, x in clips.items()},
        "precision": "bf16 autocast, channels-last host" if cuda else "fp32",
        "optimizer": "AdamW(lr=1e-3, weight_decay=0.01)",
        "mwam_layouts": dict(probe.config.layouts),
        "frm_normalisation": probe.config.frm_normalisation,
        "measurement": timed["measurement"],
        "rounds": rounds,
        "warmup_rounds": warmup,
        "steps_per_timing": steps,
        **{k: timed[k] for k in TIMED},
        "clips_per_s": batch / (plain_ms / 1e3) if plain_ms > 0 else math.inf,
        "frames_per_s": batch * frames / (plain_ms / 1e3) if plain_ms > 0 else math.inf,
        "first_k": dict(zip(probe.modalities, first_k, strict=True)),
        "peak_memory_mb": timed["peak_memory_mb"],
    }
    if not cuda:
        result["threads"] = torch.get_num_threads()
    return result


def run_benchmark(
    devices: Sequence[str] | None = None,
    batch: int | None = None,
    frames: int | None = None,
    size: int | None = None,
    rounds: int | None = None,
    warmup: int | None = None,
    steps: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """``{"benchmark": "video_step", "host", "parameters", "<device kind>": {...}}``: each argument left None takes
    the device's default (:data:`DEFAULTS`); ``devices`` defaults to the CPU plus CUDA when available; ``threads``
    sets torch's intra-op threads for the run (restored afterwards; None: torch's)."""
    from mwam_harness import models

    for label, value, minimum in (
        ("batch", batch, 1), ("frames", frames, 1), ("size", size, 32), ("rounds", rounds, 1), ("warmup", warmup, 0),
        ("steps", steps, 1), ("threads", threads, 1),
    ):  # fmt: skip
        if value is not None and value < minimum:
            raise ValueError(f"{label} must be >= {minimum}, got {value}")
    if devices is None:
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    report: dict[str, Any] = {
        "benchmark": "video_step",
        "torch": torch.__version__,
        "host": HOST,
        "parameters": models.model_info(HOST).parameters,
        "num_classes": NUM_CLASSES,
        "notes": [
            "step: forward on video (B, 3, T, H, W) + flow (B, 2, T, H, W), cross-entropy, backward, AdamW; "
            "mwam: MWAM.step on the clips (layouts video) first and its gradient hooks on both encoders",
            "plain / mwam / mwam_alone interleaved, order rotated every round, warm-up rounds discarded; "
            "mwam_over_plain_paired: the mwam step / the plain step of the same round (median, min, max)",
        ],
    }
    with torch_threads(threads):
        for name in devices:
            device = torch.device(name)
            if device.type == "cuda" and not torch.cuda.is_available():
                raise RuntimeError("CUDA was requested but torch.cuda.is_available() is False")
            kind = "cuda" if device.type == "cuda" else "cpu"
            d_batch, d_frames, d_size, d_rounds, d_warmup, d_steps = DEFAULTS[kind]
            report[kind] = bench_step(
                device,
                batch or d_batch,
                frames or d_frames,
                size or d_size,
                rounds or d_rounds,
                d_warmup if warmup is None else warmup,
                steps or d_steps,
            )
            if kind == "cuda":
                torch.cuda.empty_cache()
    return report


__all__ = ["DEFAULTS", "HOST", "NUM_CLASSES", "bench_step", "make_clips", "run_benchmark"]
