"""Time one training step of each balancing plug-in beside MWAM's on the ResNet-18 concat host, interleaved.

Run: ``python scripts/bench_balancing.py [--device cpu|cuda|all] [--batch 16] [--size 64] [--rounds 10]``.
Prints exactly one JSON line on stdout; ``--output PATH`` also writes it to a file (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce.argtypes import add_device_argument, devices_from, non_negative, positive
from reproduce.benchmarks.balancing_step import DEFAULTS, VARIANTS, run_benchmark
from reproduce.io import emit_json_line


def variant_list(value: str) -> list[str]:
    """argparse type: comma-separated variant names, e.g. ``plain,mwam_grad,agm``."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected comma-separated variants of {', '.join(VARIANTS)}, got {value!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark, print (and optionally write) one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.set_defaults(device="cpu")
    parser.add_argument("--batch", type=positive, default=DEFAULTS["batch"], help="batch size (default 16)")
    parser.add_argument("--size", type=positive, default=DEFAULTS["size"], help="image height = width (default 64)")
    parser.add_argument("--warmup", type=non_negative, default=DEFAULTS["warmup"], help="untimed rounds (default 3)")
    parser.add_argument("--rounds", type=positive, default=DEFAULTS["rounds"], help="timed rounds (default 10)")
    parser.add_argument(
        "--epoch-rounds", type=non_negative, default=None, help="rounds that also time MSLR / MSES's epoch end (all)"
    )
    parser.add_argument(
        "--val-samples", type=positive, default=DEFAULTS["val_samples"], help="validation images (default 64)"
    )
    parser.add_argument("--variants", type=variant_list, default=None, help="a subset, e.g. plain,agm (default all)")
    parser.add_argument(
        "--threads", type=positive, default=DEFAULTS["threads"], help="torch intra-op threads (default 1)"
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON line to this file")
    args = parser.parse_args(argv)

    if args.val_samples < 8:
        parser.error(f"--val-samples must be >= 8 (LFM's held-out batch), got {args.val_samples}")
    devices = devices_from(parser, args.device)
    if devices is None:  # all: the CPU, plus CUDA when present
        import torch

        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    report = run_benchmark(
        devices=devices,
        batch=args.batch,
        size=args.size,
        warmup=args.warmup,
        rounds=args.rounds,
        epoch_rounds=args.epoch_rounds,
        val_samples=args.val_samples,
        threads=args.threads,
        variants=args.variants,
    )
    emit_json_line(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
