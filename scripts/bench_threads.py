"""Time one training step with each torch CPU thread count in turn (interleaved, median and spread).

Run: ``python scripts/bench_threads.py [--host sf_md] [--threads 1 2] [--batch 32] [--size 64] [--rounds 5]``.
Prints exactly one JSON line on stdout (docs/training.md has the measured numbers).
"""

from __future__ import annotations

import argparse

from reproduce.argtypes import non_negative, positive
from reproduce.benchmarks.threads import run_benchmark
from reproduce.io import emit_json_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="sf_md", help="a registered host (default sf_md)")
    parser.add_argument("--threads", type=positive, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    parser.add_argument("--batch", type=positive, default=32)
    parser.add_argument("--size", type=positive, default=64, help="image height = width (default 64)")
    parser.add_argument("--warmup", type=non_negative, default=1, help="untimed rounds (default 1)")
    parser.add_argument("--rounds", type=positive, default=5, help="timed rounds (default 5)")
    parser.add_argument("--steps", type=positive, default=2, help="training steps per round (default 2)")
    args = parser.parse_args(argv)
    report = run_benchmark(args.host, args.threads, args.batch, args.size, args.warmup, args.rounds, args.steps)
    emit_json_line(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
