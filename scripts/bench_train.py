"""Time the SF-MD training step with and without MWAM, interleaved (CPU, and CUDA when present), and the loader.

Run: ``python scripts/bench_train.py [--device cpu|cuda|all] [--compile [MODE]]``.
Prints exactly one JSON line on stdout; ``--output PATH`` also writes it to a file (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce.argtypes import add_device_argument, devices_from, non_negative, positive
from reproduce.benchmarks.train_step import DEFAULT_BATCH, LOADER_BATCH, run_benchmark
from reproduce.io import emit_json_line


def worker_list(value: str) -> list[int]:
    """argparse type: comma-separated worker counts, e.g. ``0,2,8``."""
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None
    if not counts or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0, got {value!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark, print (and optionally write) one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    batches = ", ".join(f"{k} {v}" for k, v in DEFAULT_BATCH.items())
    parser.add_argument("--batch", type=positive, default=None, help=f"batch size (default per device: {batches})")
    parser.add_argument("--size", type=positive, default=112, help="image height = width (default 112)")
    parser.add_argument(
        "--rounds", "--iters", dest="rounds", type=positive, default=None, help="timed rounds (default: per device)"
    )
    parser.add_argument("--warmup", type=non_negative, default=None, help="discarded rounds (default: per device)")
    parser.add_argument("--steps", type=positive, default=None, help="steps per timing (default: 1 CPU, 10 CUDA)")
    parser.add_argument(
        "--compile",
        nargs="?",
        const="default",
        default=None,
        metavar="MODE",
        help="also time a torch.compile'd host on CUDA (MODE: default, reduce-overhead, max-autotune, ...)",
    )
    parser.add_argument("--no-loader", action="store_true", help="skip the data-loader measurement")
    parser.add_argument(
        "--loader-samples", type=positive, default=None, help="training images of the synthetic set (default 256+)"
    )
    parser.add_argument(
        "--loader-batch", type=positive, default=LOADER_BATCH, help=f"loader batch (default {LOADER_BATCH})"
    )
    parser.add_argument(
        "--loader-workers", type=worker_list, default=None, help="worker counts, e.g. 0,2 (default: 0, 2, all CPUs)"
    )
    parser.add_argument(
        "--threads", type=positive, default=None, help="torch intra-op threads (default: torch's; 1 on a busy machine)"
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON line to this file")
    args = parser.parse_args(argv)

    devices = devices_from(parser, args.device)
    report = run_benchmark(
        devices=devices,
        batch=args.batch,
        size=args.size,
        rounds=args.rounds,
        warmup=args.warmup,
        steps=args.steps,
        compile=args.compile if args.compile is not None else False,
        loader=not args.no_loader,
        loader_samples=args.loader_samples,
        loader_batch=args.loader_batch,
        loader_workers=args.loader_workers,
        threads=args.threads,
    )
    emit_json_line(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
