"""Interleaved timing of benchmark variants: every round times each variant once, in one process, warm-up discarded.

Timing variant A to the end and then variant B (sequentially) puts every drift of the machine -- another job
starting, clock changes, caches and allocators warming up -- into the difference between A and B: on this
project's shared CPU a sequential run once showed a 24 % MWAM overhead that did not exist. :func:`interleave`
instead runs ``warmup`` untimed rounds, then ``rounds`` timed ones; each round calls every variant in turn, and
the order **rotates by one each round** (round ``r``, counting the warm-up rounds, starts with variant
``r mod n``: A B C, B C A, C A B, ...; with two variants A B, B A, A B, ...), so no variant always runs first.
A change of load during the measurement then touches all variants alike.

Each timing is ``steps`` back-to-back calls between two synchronisations (``sync``: CUDA's synchronize, or
nothing on the CPU), divided by ``steps``; with ``steps > 1`` on CUDA that is the pipelined time a training loop
sees. Reported per variant: median, min, max and quartiles in ms and the raw round times; and its **paired
ratio** to a baseline -- the variant's time over the baseline's time *in the same round* -- whose median, min
and max cancel slow drift that the medians alone still carry.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch

ORDER = "rotated: round r (warm-up rounds counted) starts with variant r mod n, then the others in their order"


def rotation(names: Sequence[str], index: int) -> list[str]:
    """The order of round ``index``: ``names`` rotated left by ``index`` (mod their count)."""
    if not names:
        return []
    shift = index % len(names)
    return [*names[shift:], *names[:shift]]


def summarise(times: Sequence[float]) -> dict[str, Any]:
    """Median, min, max, quartiles and mean (ms) of ``times`` (ms), their count and the raw times (rounded)."""
    if not times:
        raise ValueError("no times to summarise")
    ordered = sorted(times)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median_ms": statistics.median(ordered),
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "q1_ms": q1,
        "q3_ms": q3,
        "mean_ms": statistics.fmean(ordered),
        "n": len(ordered),
        "times_ms": [round(t, 3) for t in times],
    }


def paired_ratio(times: Sequence[float], baseline: Sequence[float]) -> dict[str, float]:
    """Median, min and max over the rounds of ``times[i] / baseline[i]`` (the same round's times)."""
    if len(times) != len(baseline) or not times:
        raise ValueError(f"need as many times as baseline times (> 0), got {len(times)} and {len(baseline)}")
    ratios = [t / b if b > 0 else float("inf") for t, b in zip(times, baseline, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def synchroniser(device: torch.device | str) -> Callable[[], None]:
    """``torch.cuda.synchronize(device)`` on a CUDA device, else a no-op."""
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def describe(rounds: int, warmup: int, steps: int = 1, baseline: str | None = None) -> str:
    """The one-line statement of how the variants were measured, for a report."""
    calls = f"{steps} back-to-back call{'s' if steps != 1 else ''} per timing"
    plural = "s" if rounds != 1 else ""
    text = (
        f"interleaved, {rounds} round{plural} (order rotated each round), warm-up {warmup} discarded, {calls}; "
        "median and [min, max] / quartiles"
    )
    return text + (f"; paired ratio to {baseline} per round" if baseline is not None else "")


def interleave(
    variants: Mapping[str, Callable[[], Any]],
    *,
    rounds: int,
    warmup: int = 1,
    steps: int = 1,
    baseline: str | None = None,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    contexts: Mapping[str, Callable[[], AbstractContextManager[Any]]] | None = None,
    after_round: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Time the zero-argument callables ``variants`` interleaved; one JSON-ready dict.

    ``warmup`` untimed rounds, then ``rounds`` timed ones, each calling every variant (order: :data:`ORDER`);
    one timing is ``steps`` calls between ``sync()`` calls, read with ``clock`` (seconds), divided by ``steps``.
    ``baseline`` (default: the first variant) is the denominator of the paired ratios. ``contexts[name]()``, if
    given, is entered before and left after each of that variant's timings, outside the timed window (e.g. to
    attach and remove hooks that other variants must not run). ``after_round(i)`` runs after timed round ``i``
    (0-based), untimed. Returns ``{"measurement", "order", "rounds", "warmup_rounds", "steps_per_timing",
    "baseline", "variants": {name: {median_ms, min_ms, max_ms, q1_ms, q3_ms, mean_ms, n, times_ms,
    paired_ratio: {median, min, max}}}}``.
    """
    names = list(variants)
    if not names:
        raise ValueError("no variants to time")
    if rounds < 1 or warmup < 0 or steps < 1:
        raise ValueError(f"need rounds >= 1, warmup >= 0 and steps >= 1, got {rounds}, {warmup}, {steps}")
    baseline = names[0] if baseline is None else baseline
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not among the variants {names}")
    contexts = dict(contexts or {})
    unknown = sorted(set(contexts) - set(names))
    if unknown:
        raise ValueError(f"contexts for unknown variants {unknown}; variants: {names}")
    sync = sync or (lambda: None)

    def timed(name: str) -> float:
        fn = variants[name]
        context = contexts.get(name)
        with context() if context is not None else nullcontext():
            sync()
            begin = clock()
            for _ in range(steps):
                fn()
            sync()
            end = clock()
        return (end - begin) * 1e3 / steps

    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        for name in rotation(names, index):
            elapsed = timed(name)
            if index >= warmup:
                times[name].append(elapsed)
        if index >= warmup and after_round is not None:
            after_round(index - warmup)
    out: dict[str, Any] = {}
    for name in names:
        entry = summarise(times[name])
        entry["paired_ratio"] = paired_ratio(times[name], times[baseline])
        out[name] = entry
    return {
        "measurement": describe(rounds, warmup, steps, baseline),
        "order": ORDER,
        "rounds": rounds,
        "warmup_rounds": warmup,
        "steps_per_timing": steps,
        "baseline": baseline,
        "variants": out,
    }


__all__ = ["ORDER", "describe", "interleave", "paired_ratio", "rotation", "summarise", "synchroniser"]


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` (None: unchanged) within the block, restored afterwards."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
