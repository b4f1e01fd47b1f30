"""Time the BraTS hosts: training step with / without MWAM, MWAM's share, FLOPs, memory, 15-subset evaluation.

Run: ``python scripts/bench_brats.py [--device cpu|cuda|all] [--hosts rfnet] [--size 80]`` (``make bench-brats``).
Prints exactly one JSON line on stdout; ``--output PATH`` also writes it to a file (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce.argtypes import add_device_argument, devices_from, non_negative, positive
from reproduce.benchmarks.brats_step import run_benchmark
from reproduce.io import emit_json_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--hosts", nargs="+", default=None, help="BraTS hosts (default: every registered one)")
    parser.add_argument(
        "--size", type=positive, default=None, help="window edge, a multiple of 16 (default: 32 CPU, 80 CUDA)"
    )
    parser.add_argument("--batch", type=positive, default=None, help="batch size (default 2)")
    parser.add_argument(
        "--rounds", "--iters", dest="iters", type=positive, default=None, help="timed rounds (default: per device)"
    )
    parser.add_argument("--warmup", type=non_negative, default=None, help="discarded rounds first (interleaved)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    devices = devices_from(parser, args.device)
    hosts = tuple(args.hosts) if args.hosts else None
    emit_json_line(run_benchmark(devices, hosts, args.size, args.batch, args.iters, args.warmup), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
