"""Time ESANet-MD: training step with / without MWAM, MWAM's share, images/s, memory, and the NYUv2 loader.

Run: ``python scripts/bench_nyuv2.py [--device cpu|cuda|all] [--height 480 --width 640] [--batch 8]``
(``make bench-nyuv2``). Prints exactly one JSON line on stdout; ``--output PATH`` also writes it (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce.argtypes import add_device_argument, devices_from, non_negative, positive
from reproduce.benchmarks.nyuv2_step import run_benchmark
from reproduce.io import emit_json_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--height", type=positive, default=None, help="image height, a multiple of 32 (CUDA: 480)")
    parser.add_argument("--width", type=positive, default=None, help="image width, a multiple of 32 (CUDA: 640)")
    parser.add_argument("--batch", type=positive, default=None, help="batch size (default: 2 CPU, 8 CUDA)")
    parser.add_argument(
        "--rounds", "--iters", dest="iters", type=positive, default=None, help="timed rounds (default: per device)"
    )
    parser.add_argument("--warmup", type=non_negative, default=None, help="discarded rounds first (interleaved)")
    parser.add_argument("--workers", type=non_negative, default=2, help="loader processes (default 2)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    devices = devices_from(parser, args.device)
    report = run_benchmark(devices, args.height, args.width, args.batch, args.iters, args.warmup, workers=args.workers)
    emit_json_line(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
