"""Time the UCF-101 video host's training step with and without MWAM (gradient editing), interleaved.

Run: ``python scripts/bench_video.py [--device cpu|cuda|all] [--batch 4] [--frames 3] [--size 112] [--rounds 5]``
(defaults per device: CPU batch 4 at 112 x 112, CUDA batch 32 at 224 x 224, 3 frames). Prints exactly one JSON line
on stdout; ``--output PATH`` also writes it to a file (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce.argtypes import add_device_argument, devices_from, non_negative, positive
from reproduce.benchmarks.video_step import run_benchmark
from reproduce.io import emit_json_line


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark, print (and optionally write) one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--batch", type=positive, default=None, help="clips per batch (default: 4 CPU, 32 CUDA)")
    parser.add_argument("--frames", type=positive, default=None, help="frames per clip T (default 3)")
    parser.add_argument("--size", type=positive, default=None, help="frame height = width (default: 112 CPU, 224 CUDA)")
    parser.add_argument("--rounds", type=positive, default=None, help="timed rounds (default: 5 CPU, 10 CUDA)")
    parser.add_argument("--warmup", type=non_negative, default=None, help="discarded rounds (default: 1 CPU, 3 CUDA)")
    parser.add_argument("--steps", type=positive, default=None, help="steps per timing (default: 1 CPU, 5 CUDA)")
    parser.add_argument("--threads", type=positive, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    if args.size is not None and args.size < 32:
        parser.error(f"--size must be >= 32 (ResNet-18 downsamples by 32), got {args.size}")
    devices = devices_from(parser, args.device)
    report = run_benchmark(
        devices=devices,
        batch=args.batch,
        frames=args.frames,
        size=args.size,
        rounds=args.rounds,
        warmup=args.warmup,
        steps=args.steps,
        threads=args.threads,
    )
    emit_json_line(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
