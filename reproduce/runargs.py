"""The command-line options every training entry point shares (``python -m reproduce table|ablations``,
``scripts/ablate_*.py``), and their translation into :func:`reproduce.experiments.run_table` arguments."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mwam_harness.datasets.registry import PRESETS
from reproduce.argtypes import positive
from reproduce.paths import results_root
from reproduce.runs.runtime import WANDB_MODES, Runtime


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """--results-dir, --wandb, --device, --workers, --threads, --no-progress, --checkpoint-every: how runs are
    executed (never their identity)."""
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="root of everything generated: registry, synthetic data, W&B, tables (default $MWAM_RESULTS_DIR, "
        "else ./results)",
    )
    parser.add_argument(
        "--wandb", choices=WANDB_MODES, default=None, help="W&B mode (default: $WANDB_MODE, else offline)"
    )
    parser.add_argument("--device", default=None, help="auto (default: cuda:LOCAL_RANK when available), cpu, cuda:N")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (default 0)")
    parser.add_argument(
        "--threads",
        type=positive,
        default=None,
        help="torch's CPU threads while training (default torch's: one per core; busy machine: 1, docs/training.md)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--verbose", action="store_true", help="ultralytics' own console output (YOLO runs; default: a line per epoch)"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="EPOCHS",
        help="write the resume checkpoint every EPOCHS epochs (default 1; 0: only when interrupted)",
    )


def runtime_from(args: argparse.Namespace, base: Runtime | None = None) -> Runtime:
    """``base`` (default: the defaults) with the runtime options given on the command line."""
    base = base or Runtime()
    changes: dict[str, Any] = {}
    if args.wandb is not None:
        changes["wandb"] = args.wandb
    if args.device is not None:
        changes["device"] = args.device
    if args.workers is not None:
        changes["workers"] = args.workers
    if getattr(args, "threads", None) is not None:
        changes["threads"] = args.threads
    if args.no_progress:
        changes["progress"] = False
    if getattr(args, "verbose", False):
        changes["verbose"] = True
    if getattr(args, "checkpoint_every", None) is not None:
        changes["checkpoint_every"] = args.checkpoint_every
    return base.replace(**changes)


def add_run_arguments(
    parser: argparse.ArgumentParser, default_output: str = "results/ (results/<preset>/ for synthetic)"
) -> None:
    """--preset, --data-root, --seeds, --force, --resume, --no-wait, --nproc, --output-dir and the runtime
    options."""
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="paper",
        help="paper: the paper's settings on the real data (needs --data-root or $MWAM_DATA_ROOT); smoke (seconds per "
        "run) / demo (minutes): synthetic data in the real layout, tables labelled SYNTHETIC",
    )
    parser.add_argument("--data-root", default=None, help="real data root (default: $MWAM_DATA_ROOT)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed; tables show mean ± std")
    parser.add_argument("--force", action="store_true", help="retrain runs that are already in the registry")
    parser.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    add_no_wait_argument(parser)
    parser.add_argument(
        "--nproc",
        type=positive,
        default=1,
        help="processes (GPUs) per run: each run is started by torchrun with DistributedDataParallel (default 1)",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=None, help=f"where tables are written (default {default_output})"
    )
    add_runtime_arguments(parser)


def add_no_wait_argument(parser: argparse.ArgumentParser) -> None:
    """--no-wait: fail at once (naming the holder) when another process trains a run this command needs."""
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="when another process is training a run this command needs (its lock results/runs/<key>.lock is held), "
        "exit with an error naming it instead of waiting for it and reusing its result",
    )


def output_dir(args: argparse.Namespace, sub: str = "") -> Path:
    """``--output-dir``, else the results root for the paper preset and ``<results>/<preset>/`` for synthetic ones."""
    if args.output_dir is not None:
        return Path(args.output_dir)
    base = results_root(args.results_dir)
    base = base if args.preset == "paper" else base / args.preset
    return base / sub if sub else base


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``run_table`` that the shared options set; ``--no-wait`` sets the run-lock policy of
    the process (:func:`reproduce.runs.lock.set_wait_default`)."""
    from reproduce.runs.lock import set_wait_default

    set_wait_default(not getattr(args, "no_wait", False))
    return {
        "preset_name": args.preset,
        "data_root": args.data_root,
        "seeds": tuple(args.seeds),
        "force": args.force,
        "resume": args.resume,
        "runtime": runtime_from(args),
        "results_dir": args.results_dir,
        "nproc": args.nproc,
    }
