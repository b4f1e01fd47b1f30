"""Time the two-stream YOLOv8n's ultralytics training step with / without MWAM, images/s and MWAM's share.

Run: ``python scripts/bench_yolo.py [--device cpu|cuda|all] [--size 640] [--batch 16]`` (``make bench-yolo``).
Prints exactly one JSON line on stdout; ``--output PATH`` also writes it (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce.argtypes import add_device_argument, devices_from, non_negative, positive
from reproduce.benchmarks.yolo_step import run_benchmark
from reproduce.io import emit_json_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--size", type=positive, default=None, help="square image side, a multiple of 32 (640)")
    parser.add_argument("--batch", type=positive, default=None, help="batch size (default 16)")
    parser.add_argument(
        "--rounds", "--iters", dest="iters", type=positive, default=None, help="timed rounds (default: per device)"
    )
    parser.add_argument("--warmup", type=non_negative, default=None, help="discarded rounds first (interleaved)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    devices = devices_from(parser, args.device)
    emit_json_line(run_benchmark(devices, args.size, args.batch, args.iters, args.warmup), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
