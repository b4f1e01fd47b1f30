"""Time one MWAM step (three modalities, FRM + bank + weights) against the straightforward version, interleaved.

Run: ``python scripts/bench_mwam.py [--device cpu|cuda|all]`` (``make bench-mwam``).
Prints exactly one JSON line on stdout; ``--output PATH`` also writes it to a file (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce.argtypes import add_device_argument, devices_from, non_negative, positive
from reproduce.benchmarks.mwam_step import run_benchmark
from reproduce.io import emit_json_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--batch", type=positive, default=64, help="batch size (default 64)")
    parser.add_argument("--size", type=positive, default=112, help="image height = width (default 112)")
    parser.add_argument(
        "--rounds", "--iters", dest="rounds", type=positive, default=None, help="timed rounds (default: per device)"
    )
    parser.add_argument("--warmup", type=non_negative, default=None, help="discarded rounds (default: per device)")
    parser.add_argument("--steps", type=positive, default=None, help="calls per timing (default: 1 CPU, 10 CUDA)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON line to this file")
    args = parser.parse_args(argv)

    devices = devices_from(parser, args.device)
    report = run_benchmark(
        devices=devices, batch=args.batch, size=args.size, iters=args.rounds, warmup=args.warmup, steps=args.steps
    )
    emit_json_line(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
