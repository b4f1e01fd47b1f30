"""Speed of evaluating every missing-modality subset: the encoders run once per batch vs one forward per subset.

A host with ``encode`` / ``fuse`` (SF-MD: the three special bones, then masking and the shared trunk) evaluates
the 2^M - 1 subsets of a batch with one encoder pass and one fusion per subset (``models.forward_subsets``); the
straightforward way runs the whole network once per subset. Timed here on one batch already on the device, in
eval mode under ``torch.inference_mode`` (and the trainer's bf16 autocast and channels-last on CUDA): one full
forward pass (the cost of a single subset), the 7 subsets by 7 forward passes, and the 7 subsets with the
encoders run once. The outputs of the two ways are checked to be identical.

The three are timed interleaved in one process (:mod:`reproduce.benchmarks.interleave`: each round times each
once, the order rotated every round, warm-up rounds discarded); the ``*_ms`` figures are medians, the ratios
ratios of medians, and ``timings`` holds each one's spread and its paired ratio to ``one_pass`` (per round).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import torch

from mwam_harness import models
from mwam_harness.models import forward_subsets
from reproduce.benchmarks.interleave import interleave, synchroniser
from reproduce.benchmarks.mwam_step import MODALITIES, make_inputs
from reproduce.devices import device_name
from reproduce.engine.evaluation import to_channels_last

DEFAULT_BATCH = {"cpu": 16, "cuda": 64}
#: (rounds, warm-up rounds, calls per timing) per device type; CUDA: 5 back-to-back calls per timing (pipelined).
DEFAULT_ITERS = {"cpu": (3, 1, 1), "cuda": (10, 2, 5)}


def subset_masks(batch: int, device: torch.device) -> list[torch.Tensor]:
    """The 7 non-empty subsets of (rgb, depth, ir) as (batch, 3) masks."""
    rows = [[bool(code >> i & 1) for i in range(len(MODALITIES))] for code in range(1, 2 ** len(MODALITIES))]
    return [torch.tensor(row, device=device).expand(batch, -1) for row in rows]


def bench_device(
    device: torch.device, batch: int, size: int, iters: int, warmup: int, steps: int = 1
) -> dict[str, Any]:
    """The three ways timed interleaved on ``device``: ``iters`` rounds after ``warmup``, ``steps`` calls a timing."""
    cuda = device.type == "cuda"
    host = models.build("sf_md").to(device).eval()
    inputs = dict(make_inputs(batch, size, device))
    if cuda:
        host = host.to(memory_format=torch.channels_last)
        inputs = to_channels_last(inputs)
    masks = subset_masks(batch, device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    def one_pass(x: dict[str, torch.Tensor]) -> Any:
        with torch.inference_mode(), amp:
            return host(x, masks[-1])

    def per_subset(x: dict[str, torch.Tensor]) -> Any:
        with torch.inference_mode(), amp:
            return [host(x, mask) for mask in masks]

    def encode_once(x: dict[str, torch.Tensor]) -> Any:
        with torch.inference_mode(), amp:
            return forward_subsets(host, x, masks)

    identical = all(
        torch.equal(a.logits, b.logits) for a, b in zip(encode_once(inputs), per_subset(inputs), strict=True)
    )
    ways = {"one_pass": one_pass, "per_subset": per_subset, "encode_once": encode_once}
    timed = interleave(
        {name: functools.partial(fn, inputs) for name, fn in ways.items()},
        rounds=iters,
        warmup=warmup,
        steps=steps,
        baseline="one_pass",
        sync=synchroniser(device),
    )
    timings = timed["variants"]
    ms = {name: float(t["median_ms"]) for name, t in timings.items()}
    return {
        "device_name": device_name(device),
        "batch": batch,
        "iters": iters,
        "warmup_rounds": warmup,
        "steps_per_timing": steps,
        "measurement": timed["measurement"],
        "precision": "bf16 autocast" if cuda else "fp32",
        "one_pass_ms": ms["one_pass"],
        "seven_subsets_per_subset_ms": ms["per_subset"],
        "seven_subsets_encode_once_ms": ms["encode_once"],
        "per_subset_over_one_pass": ms["per_subset"] / ms["one_pass"],
        "encode_once_over_one_pass": ms["encode_once"] / ms["one_pass"],
        "speedup": ms["per_subset"] / ms["encode_once"],
        "identical_outputs": identical,
        "timings": timings,
    }


def run_benchmark(
    devices: list[str] | None = None,
    batch: int | None = None,
    size: int = 112,
    iters: int | None = None,
    warmup: int | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """``{"benchmark": "eval_subsets", "cpu": {...}, "cuda": {...}}`` (CUDA when present or asked for); ``iters``
    timed rounds, ``warmup`` discarded ones and ``steps`` calls per timing default per device (:data:`DEFAULT_ITERS`).
    """
    if devices is None:
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    report: dict[str, Any] = {
        "benchmark": "eval_subsets",
        "host": "sf_md",
        "shape": [3, size, size],
        "torch": torch.__version__,
    }
    for name in devices:
        device = torch.device(name)
        kind = "cuda" if device.type == "cuda" else "cpu"
        default_iters, default_warmup, default_steps = DEFAULT_ITERS[kind]
        report[kind] = bench_device(
            device,
            batch or DEFAULT_BATCH[kind],
            size,
            iters if iters is not None else default_iters,
            warmup if warmup is not None else default_warmup,
            steps if steps is not None else default_steps,
        )
    return report
