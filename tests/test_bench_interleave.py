"""The interleaved timing helper of the benchmarks, on fake callables and a fake clock (no machine timing)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from reproduce.benchmarks.interleave import describe, interleave, paired_ratio, rotation, summarise, synchroniser


class FakeClock:
    """A clock that only moves when a fake variant says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_variants(clock: FakeClock, costs: dict[str, list[float]], calls: list[str]) -> dict[str, object]:
    """Variants whose n-th call costs ``costs[name][n]`` seconds (the last one repeats) and records its name."""
    counts = dict.fromkeys(costs, 0)

    def make(name: str):
        def call() -> None:
            sequence = costs[name]
            clock.now += sequence[min(counts[name], len(sequence) - 1)]
            counts[name] += 1
            calls.append(name)

        return call

    return {name: make(name) for name in costs}


def test_rotation_starts_each_round_with_the_next_variant():
    assert rotation(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert rotation(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert rotation(["a", "b", "c"], 5) == ["c", "a", "b"]
    assert rotation(["a", "b"], 3) == ["b", "a"] and rotation([], 2) == []


def test_rounds_interleave_the_variants_and_rotate_their_order():
    clock, calls = FakeClock(), []
    variants = fake_variants(clock, {"a": [0.001], "b": [0.002], "c": [0.004]}, calls)
    result = interleave(variants, rounds=3, warmup=1, clock=clock)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]  # warm-up round first
    assert [result["variants"][n]["n"] for n in "abc"] == [3, 3, 3]
    assert result["rounds"] == 3 and result["warmup_rounds"] == 1 and result["steps_per_timing"] == 1
    assert result["baseline"] == "a" and "rotated" in result["order"]
    assert result["measurement"].startswith("interleaved, 3 rounds (order rotated each round), warm-up 1 discarded")


def test_two_variants_alternate_a_b_then_b_a():
    clock, calls = FakeClock(), []
    interleave(fake_variants(clock, {"a": [1.0], "b": [1.0]}, calls), rounds=3, warmup=1, clock=clock)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_warm_up_rounds_are_discarded():
    clock, calls = FakeClock(), []
    # the first two calls of each variant are slow (the warm-up rounds), then constant
    costs = {"a": [1.0, 1.0, 0.010], "b": [2.0, 2.0, 0.030]}
    result = interleave(fake_variants(clock, costs, calls), rounds=4, warmup=2, clock=clock)
    assert len(calls) == 12
    for name, ms in (("a", 10.0), ("b", 30.0)):
        entry = result["variants"][name]
        assert entry["times_ms"] == [pytest.approx(ms)] * 4
        assert entry["median_ms"] == pytest.approx(ms) and entry["max_ms"] == pytest.approx(ms)


def test_steps_per_timing_divide_and_sync_brackets_each_timing():
    clock, calls = FakeClock(), []
    variants = fake_variants(clock, {"a": [0.002], "b": [0.006]}, calls)
    result = interleave(variants, rounds=2, warmup=0, steps=3, clock=clock, sync=lambda: calls.append("sync"))
    assert calls[:10] == ["sync", "a", "a", "a", "sync", "sync", "b", "b", "b", "sync"]
    assert result["variants"]["a"]["median_ms"] == pytest.approx(2.0)
    assert result["variants"]["b"]["median_ms"] == pytest.approx(6.0)
    assert "3 back-to-back calls per timing" in result["measurement"]


def test_statistics_and_paired_ratios_of_known_costs():
    clock, calls = FakeClock(), []
    # per timed round (after one warm-up round): base 10, 20, 40, 10 ms; slow 20, 30, 80, 40 ms
    costs = {"base": [0.5, 0.010, 0.020, 0.040, 0.010], "slow": [0.5, 0.020, 0.030, 0.080, 0.040]}
    result = interleave(fake_variants(clock, costs, calls), rounds=4, warmup=1, baseline="base", clock=clock)
    slow = result["variants"]["slow"]
    assert slow["times_ms"] == pytest.approx([20.0, 30.0, 80.0, 40.0])
    assert (slow["min_ms"], slow["median_ms"], slow["max_ms"]) == pytest.approx((20.0, 35.0, 80.0))
    assert (slow["q1_ms"], slow["q3_ms"], slow["mean_ms"]) == pytest.approx((27.5, 50.0, 42.5))
    # round by round: 2.0, 1.5, 2.0, 4.0
    assert slow["paired_ratio"] == pytest.approx({"median": 2.0, "min": 1.5, "max": 4.0})
    assert result["variants"]["base"]["paired_ratio"] == {"median": 1.0, "min": 1.0, "max": 1.0}
    assert result["measurement"].endswith("paired ratio to base per round")


def test_paired_ratio_differs_from_the_ratio_of_medians_under_drift():
    # the machine slows down 10x halfway: the variant is always 1.2x its baseline of the same round
    base = [10.0, 10.0, 100.0, 100.0, 100.0]
    variant = [12.0, 12.0, 120.0, 120.0, 120.0]
    assert paired_ratio(variant, base) == pytest.approx({"median": 1.2, "min": 1.2, "max": 1.2})
    with pytest.raises(ValueError):
        paired_ratio([1.0], [1.0, 2.0])


def test_contexts_are_entered_around_a_variant_s_timing_outside_the_clock():
    clock, calls = FakeClock(), []

    @contextmanager
    def hooks():
        calls.append("enter")
        clock.now += 100.0  # must not count
        yield
        clock.now += 100.0
        calls.append("exit")

    variants = fake_variants(clock, {"a": [0.001], "b": [0.003]}, calls)
    result = interleave(variants, rounds=2, warmup=0, clock=clock, contexts={"b": hooks})
    assert calls == ["a", "enter", "b", "exit", "enter", "b", "exit", "a"]
    assert result["variants"]["b"]["median_ms"] == pytest.approx(3.0)


def test_after_round_runs_after_each_timed_round():
    clock, calls = FakeClock(), []
    variants = fake_variants(clock, {"a": [0.001], "b": [0.001]}, calls)
    interleave(variants, rounds=2, warmup=1, clock=clock, after_round=lambda i: calls.append(f"after {i}"))
    assert calls == ["a", "b", "b", "a", "after 0", "a", "b", "after 1"]


def test_summarise_one_time_and_errors():
    one = summarise([5.0])
    assert one["median_ms"] == one["q1_ms"] == one["q3_ms"] == one["min_ms"] == one["max_ms"] == 5.0
    assert one["n"] == 1 and one["times_ms"] == [5.0]
    with pytest.raises(ValueError):
        summarise([])
    with pytest.raises(ValueError, match="baseline"):
        interleave({"a": lambda: None}, rounds=1, baseline="b")
    with pytest.raises(ValueError):
        interleave({"a": lambda: None}, rounds=0)
    with pytest.raises(ValueError):
        interleave({}, rounds=1)
    with pytest.raises(ValueError, match="contexts"):
        interleave({"a": lambda: None}, rounds=1, contexts={"b": lambda: None})


def test_describe_and_cpu_synchroniser():
    assert describe(5, 2) == (
        "interleaved, 5 rounds (order rotated each round), warm-up 2 discarded, 1 back-to-back call per timing; "
        "median and [min, max] / quartiles"
    )
    assert synchroniser("cpu")() is None
