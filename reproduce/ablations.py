"""The shared body of ``scripts/ablate_*.py``: one setting of one ablation table, trained (if the registry lacks
it) and rendered beside the paper's column as ``results[/<preset>]/ablations/<stem>{,_vs_paper}.{md,csv,tex}``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from reproduce.runargs import add_run_arguments, output_dir, run_options

#: A function from the parsed arguments to (the table's column names to run, the output file stem).
Selection = Callable[[argparse.Namespace], tuple[list[str], str]]


def ablation_main(
    argv: Sequence[str] | None,
    *,
    table: int,
    doc: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    select: Selection,
    baseline: str | None = "w/o MWAM",
) -> int:
    """Parse ``argv`` (setting options from ``add_arguments`` plus the shared run options), run the selected
    column(s) of Table ``table`` and write the tables. Returns the exit status (2 for a usage or data error)."""
    from reproduce.engine.trainer import DependencyError, TrainingInterruptedError
    from reproduce.experiments import run_table

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    if baseline is not None:
        parser.add_argument(
            "--baseline",
            action="store_true",
            help=f"also run the table's baseline column ({baseline!r}) so the table shows both",
        )
    add_run_arguments(parser, "<results>/ablations/ (<results>/<preset>/ablations/ for synthetic)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    columns, stem = select(args)
    if baseline is not None and args.baseline and baseline not in columns:
        columns = [baseline, *columns]
    try:
        written = run_table(
            table, columns=columns, stem=stem, output_dir=output_dir(args, "ablations"), **run_options(args)
        )
    except TrainingInterruptedError as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return 130
    except (ValueError, DependencyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    if args.preset != "paper":
        print("SYNTHETIC data: these numbers test the pipeline, they do not reproduce the paper", file=sys.stderr)
    side_by_side = next(p for p in written if p.name == f"{stem}_vs_paper.md")
    sys.stdout.write(side_by_side.read_text(encoding="utf-8"))
    return 0
