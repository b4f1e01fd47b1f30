"""How many torch CPU threads to train with: one training step of a host, timed with each thread count in turn
(interleaved rounds in one process, warm-up discarded), median and spread -- what ``--threads``' advice rests on
(docs/training.md, "Progress, CPU threads and the make variables").

The step is a real one of the harness's hosts (SF-MD's three ResNet-18 encoders on CASIA-SURF-shaped input by
default: the demo's batch 32 at 64 x 64): forward with every modality, cross-entropy, backward, SGD. Each round
times every thread count once (:mod:`reproduce.benchmarks.interleave`), the order rotated every round (1, 2 / 2, 1
/ 1, 2 ...), warm-up rounds discarded, so a machine whose load changes during the measurement changes every count
alike; ``paired_ratio_to_first`` is each count's time over the first count's in the same round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from reproduce.benchmarks.interleave import interleave
from reproduce.devices import cpu_model


def train_step(host: Any, inputs: dict[str, torch.Tensor], present: torch.Tensor, target: torch.Tensor,
               optimizer: torch.optim.Optimizer) -> None:  # fmt: skip
    """One training step: forward with every modality, cross-entropy, backward, SGD."""
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(host(inputs, present).logits, target)
    loss.backward()
    optimizer.step()


def step_seconds(host: Any, inputs: dict[str, torch.Tensor], present: torch.Tensor, target: torch.Tensor,
                 optimizer: torch.optim.Optimizer, steps: int) -> float:  # fmt: skip
    """Seconds per training step, over ``steps`` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        train_step(host, inputs, present, target, optimizer)
    return (time.perf_counter() - start) / steps


def run_benchmark(
    host_name: str = "sf_md",
    threads: Sequence[int] = (1, 2),
    batch: int = 32,
    size: int = 64,
    warmup: int = 1,
    rounds: int = 5,
    steps: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """``{"threads": {n: {"median_s", "min_s", "max_s", "q1_s", "q3_s", "rounds"}}, "median_ratio_to_first",
    "paired_ratio_to_first", "fastest", ...}`` for one host on the CPU, the counts interleaved (``clock``: for
    tests)."""
    from mwam_harness import models

    previous = torch.get_num_threads()
    torch.manual_seed(0)
    host = models.build(host_name).train()
    inputs = {m: torch.randn(batch, 3, size, size) for m in host.modalities}
    present = torch.ones(batch, len(host.modalities), dtype=torch.bool)
    target = torch.randint(0, 2, (batch,))
    optimizer = torch.optim.SGD(host.parameters(), lr=1e-3, momentum=0.9)

    def with_threads(count: int) -> Callable[[], None]:
        def call() -> None:
            torch.set_num_threads(count)
            train_step(host, inputs, present, target, optimizer)

        return call

    counts = list(dict.fromkeys(threads))
    try:
        timed = interleave(
            {str(n): with_threads(n) for n in counts}, rounds=rounds, warmup=warmup, steps=steps, clock=clock
        )
    finally:
        torch.set_num_threads(previous)
    entries = timed["variants"]
    summary = {
        name: {
            "median_s": e["median_ms"] / 1e3,
            "min_s": e["min_ms"] / 1e3,
            "max_s": e["max_ms"] / 1e3,
            "q1_s": e["q1_ms"] / 1e3,
            "q3_s": e["q3_ms"] / 1e3,
            "rounds": [round(t / 1e3, 4) for t in e["times_ms"]],
        }
        for name, e in entries.items()
    }
    fastest = min(counts, key=lambda n: entries[str(n)]["median_ms"])
    base = entries[str(counts[0])]["median_ms"]
    return {
        "benchmark": "threads",
        "host": host_name,
        "cpu": cpu_model(),
        "torch_default_threads": previous,
        "batch": batch,
        "size": size,
        "steps_per_round": steps,
        "measurement": timed["measurement"],
        "warmup_rounds": warmup,
        "timed_rounds": rounds,
        "threads": summary,
        "median_ratio_to_first": {name: e["median_ms"] / base for name, e in entries.items()},
        "paired_ratio_to_first": {name: e["paired_ratio"] for name, e in entries.items()},
        "fastest": fastest,
    }
