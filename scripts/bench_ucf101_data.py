"""Time UCF-101's data path: PyAV decoding and scikit-image TV-L1 per frame pair (``prepare``), and whether the
training loader keeps up with the video host's training step on this CPU.

Run: ``python scripts/bench_ucf101_data.py [--size 112] [--batch 4] [--workers 0] [--rounds 3]``. The step's clips/s
comes from one plain training step of ``reproduce.benchmarks.video_step`` at the same batch and size (CPU). Prints
exactly one JSON line on stdout; ``--output PATH`` also writes it to a file (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce.argtypes import non_negative, positive
from reproduce.benchmarks import ucf101_data, video_step
from reproduce.io import emit_json_line


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark, print (and optionally write) one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=positive, default=112, help="frame size of the loader and the step (112)")
    parser.add_argument("--batch", type=positive, default=4, help="clips per batch (4)")
    parser.add_argument("--workers", type=non_negative, default=0, help="loader worker processes (0)")
    parser.add_argument("--rounds", type=positive, default=3, help="timed rounds of the TV-L1 sizes (3)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    step = video_step.run_benchmark(devices=["cpu"], batch=args.batch, size=args.size, rounds=2, warmup=1)
    report = ucf101_data.run_benchmark(
        size=args.size,
        batch=args.batch,
        workers=args.workers,
        rounds=args.rounds,
        step_clips_per_s=step["cpu"]["clips_per_s"],
    )
    emit_json_line(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
