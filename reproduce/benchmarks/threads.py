"""How many torch CPU threads to train with: one training step of a host, timed with each thread count in turn
(interleaved rounds in one process, warm-up discarded), median and spread -- what ``--threads``' advice rests on
(docs/training.md, "Progress, CPU threads and the make variables").

The step is a real one of the harness's hosts (SF-MD's three ResNet-18 encoders on CASIA-SURF-shaped input by
default: the demo's batch 32 at 64 x 64): forward with every modality, cross-entropy, backward, SGD. Rounds cycle
through the thread counts (1, 2, 1, 2, ...), so a machine whose load changes during the measurement changes every
count alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from reproduce.devices import cpu_model


def step_seconds(host: Any, inputs: dict[str, torch.Tensor], present: torch.Tensor, target: torch.Tensor,
                 optimizer: torch.optim.Optimizer, steps: int) -> float:  # fmt: skip
    """Seconds per training step, over ``steps`` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(host(inputs, present).logits, target)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def run_benchmark(
    host_name: str = "sf_md",
    threads: Sequence[int] = (1, 2),
    batch: int = 32,
    size: int = 64,
    warmup: int = 1,
    rounds: int = 5,
    steps: int = 2,
) -> dict[str, Any]:
    """``{"threads": {n: {"median_s", "min_s", "max_s", "rounds"}}, "ratio": ..., ...}`` for one host on the CPU."""
    from mwam_harness import models

    previous = torch.get_num_threads()
    torch.manual_seed(0)
    host = models.build(host_name).train()
    inputs = {m: torch.randn(batch, 3, size, size) for m in host.modalities}
    present = torch.ones(batch, len(host.modalities), dtype=torch.bool)
    target = torch.randint(0, 2, (batch,))
    optimizer = torch.optim.SGD(host.parameters(), lr=1e-3, momentum=0.9)
    times: dict[int, list[float]] = {n: [] for n in threads}
    try:
        for index in range(warmup + rounds):
            for count in threads:
                torch.set_num_threads(count)
                seconds = step_seconds(host, inputs, present, target, optimizer, steps)
                if index >= warmup:
                    times[count].append(seconds)
    finally:
        torch.set_num_threads(previous)
    summary = {
        str(n): {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "rounds": [round(x, 4) for x in t]}
        for n, t in times.items()
    }
    fastest = min(times, key=lambda n: statistics.median(times[n]))
    base = statistics.median(times[threads[0]])
    return {
        "benchmark": "threads",
        "host": host_name,
        "cpu": cpu_model(),
        "torch_default_threads": previous,
        "batch": batch,
        "size": size,
        "steps_per_round": steps,
        "threads": summary,
        "median_ratio_to_first": {str(n): statistics.median(t) / base for n, t in times.items()},
        "fastest": fastest,
    }
