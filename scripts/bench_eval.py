"""Time the evaluation of SF-MD's 7 subsets, interleaved: encoders run once per batch vs one forward per subset.

Run: ``python scripts/bench_eval.py [--device cpu|cuda|all]`` (part of ``make bench``). Prints exactly one JSON
line on stdout; ``--output PATH`` also writes it to a file (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce.argtypes import add_device_argument, devices_from, non_negative, positive
from reproduce.benchmarks.eval_subsets import run_benchmark
from reproduce.io import emit_json_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--batch", type=positive, default=None, help="batch size (default: 16 CPU, 64 CUDA)")
    parser.add_argument("--size", type=positive, default=112, help="image height = width (default 112)")
    parser.add_argument(
        "--rounds", "--iters", dest="rounds", type=positive, default=None, help="timed rounds (default: per device)"
    )
    parser.add_argument("--warmup", type=non_negative, default=None, help="discarded rounds (default: per device)")
    parser.add_argument("--steps", type=positive, default=None, help="calls per timing (default: 1 CPU, 5 CUDA)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    devices = devices_from(parser, args.device)
    report = run_benchmark(devices, args.batch, args.size, args.rounds, args.warmup, args.steps)
    emit_json_line(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
