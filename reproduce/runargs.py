"""The command-line options every training entry point shares (``python -m reproduce table|ablations``,
``scripts/ablate_*.py``), and their translation into :func:`reproduce.experiments.run_table` arguments."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reproduce.presets import PRESETS


def add_run_arguments(
    parser: argparse.ArgumentParser, default_output: str = "results/ (results/<preset>/ for synthetic)"
) -> None:
    """--preset, --data-root, --seeds, --force, --resume, --wandb, --output-dir."""
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
    parser.add_argument(
        "--wandb",
        choices=("offline", "online", "disabled"),
        default=None,
        help="W&B mode (default: $WANDB_MODE, else offline; runs are grouped per table)",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=None, help=f"where tables are written (default {default_output})"
    )


def output_dir(args: argparse.Namespace, sub: str = "") -> Path:
    """``--output-dir``, else ``results/`` for the paper preset and ``results/<preset>/`` for synthetic ones."""
    if args.output_dir is not None:
        return Path(args.output_dir)
    base = Path("results") if args.preset == "paper" else Path("results") / args.preset
    return base / sub if sub else base


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``run_table`` that the shared options set."""
    return {
        "preset_name": args.preset,
        "data_root": args.data_root,
        "seeds": tuple(args.seeds),
        "force": args.force,
        "resume": args.resume,
        "wandb_mode": args.wandb,
    }
