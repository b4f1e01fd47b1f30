"""Command line of the harness: ``python -m reproduce <command> ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from reproduce.io import write_text_atomic
from reproduce.subsets import DATASETS, dataset, display_names, marks, subset_key, subsets
from reproduce.tables.model import from_paper, from_records
from reproduce.tables.paper_data import PaperDataError, available_tables, load_paper_table
from reproduce.tables.records import RecordError, read_records
from reproduce.tables.render import FORMATS, render, render_side_by_side

SUFFIX = {"md": "md", "csv": "csv", "tex": "tex"}


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(output, text)
        print(f"wrote {output}", file=sys.stderr)


def cmd_paper(args: argparse.Namespace) -> int:
    numbers = available_tables() if args.table == "all" else [int(args.table)]
    if args.table == "all" and args.output_dir is None:
        raise SystemExit("paper all: give --output-dir (tables are written there as tableNN.{md,csv,tex})")
    for number in numbers:
        view = from_paper(load_paper_table(number))
        if args.output_dir is not None:
            formats = FORMATS if args.format is None else (args.format,)
            for fmt in formats:
                _emit(render(view, fmt), Path(args.output_dir) / f"table{number:02d}.{SUFFIX[fmt]}")
        else:
            _emit(render(view, args.format or "md"), args.output)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    table = load_paper_table(args.table)
    records = [r for path in args.records for r in read_records(path)]
    ours = from_records(table, records)
    text = render_side_by_side(ours, from_paper(table), args.format) if args.side_by_side else render(ours, args.format)
    _emit(text, args.output)
    return 0


def cmd_subsets(args: argparse.Namespace) -> int:
    info = dataset(args.dataset)
    print(f"{info.name}: modalities {', '.join(info.modalities)} (paper row order below)")
    print("  " + "  ".join(display_names(info.name)))
    for s in subsets(info.name):
        print(
            "  "
            + "  ".join(f"{m:^{len(d)}}" for m, d in zip(marks(info.name, s), display_names(info.name), strict=True))
            + f"   {subset_key(s)}"
        )
    print(f"evidence: {info.evidence}")
    return 0


def _report(written: list[Path], preset_name: str) -> None:
    from reproduce.presets import preset

    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    if preset(preset_name).synthetic:
        print(
            "these tables come from SYNTHETIC data: they test the pipeline, they do not reproduce the paper",
            file=sys.stderr,
        )


def cmd_table(args: argparse.Namespace) -> int:
    from reproduce.experiments import run_table
    from reproduce.runargs import output_dir, run_options

    written = run_table(args.table, output_dir=output_dir(args), extensions=tuple(args.with_), **run_options(args))
    _report(written, args.preset)
    return 0


def cmd_ablations(args: argparse.Namespace) -> int:
    from reproduce.experiments import run_ablations
    from reproduce.runargs import output_dir, run_options

    written = run_ablations(tables=tuple(args.tables), output_dir=output_dir(args), **run_options(args))
    _report(written, args.preset)
    return 0


FILTER_TABLES = ((18, "low-pass"), (19, "low-pass"), (20, "high-pass"), (21, "high-pass"))


def cmd_plot(args: argparse.Namespace) -> int:
    from reproduce import plots

    if args.figure == "losses":
        if args.curves is None:
            raise ValueError("plot losses needs --curves FILE.csv (header panel,series,step,value)")
        written = plots.plot_loss_curves(plots.read_curves(args.curves), args.output, synthetic=args.synthetic)
    elif args.records:
        records = [r for path in args.records for r in read_records(path)]
        views = [
            (from_records(load_paper_table(n), records), kind)
            for n, kind in FILTER_TABLES
            if any(r.table == n for r in records)
        ]
        if not views:
            raise ValueError(f"no records for Tables {[n for n, _ in FILTER_TABLES]}")
        points, reference = plots.filter_points(views, args.method)
        synthetic = any(v.synthetic for v, _ in views)
        written = plots.plot_metric_vs_filter(
            points,
            args.output,
            title="Metric versus filter size",
            references={args.method: reference} if reference else None,
            synthetic=synthetic,
        )
    else:
        views = [(from_paper(load_paper_table(n)), kind) for n, kind in FILTER_TABLES]
        points, reference = plots.filter_points(views, "ResNet18 (paper)")
        written = plots.plot_metric_vs_filter(
            points,
            args.output,
            title="Fig. 9 redrawn from the paper's Tables 18-21 (FGVC-Aircraft)",
            references={"ResNet18 (paper)": reference} if reference else None,
        )
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reproduce", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    paper = commands.add_parser("paper", help="render a paper table from the paper's own numbers (PCR computed)")
    paper.add_argument("table", help=f"table number ({', '.join(map(str, available_tables()))}) or 'all'")
    paper.add_argument("--format", choices=FORMATS, default=None, help="md (default), csv (long format) or tex")
    paper.add_argument("--output", type=Path, default=None, help="write to this file instead of stdout")
    paper.add_argument("--output-dir", type=Path, default=None, help="write tableNN.<format> files here")
    paper.set_defaults(run=cmd_paper)

    results = commands.add_parser("render", help="render this repository's results in a paper table's layout")
    results.add_argument("table", type=int, help="paper table number whose layout and columns to use")
    results.add_argument("--records", type=Path, nargs="+", required=True, help="result records (.jsonl or .csv)")
    results.add_argument("--format", choices=FORMATS, default="md")
    results.add_argument("--side-by-side", action="store_true", help="ours | paper | Δ per column")
    results.add_argument("--output", type=Path, default=None)
    results.set_defaults(run=cmd_render)

    sub = commands.add_parser("subsets", help="list a data set's missing-modality subsets in paper order")
    sub.add_argument("dataset", choices=sorted(DATASETS))
    sub.set_defaults(run=cmd_subsets)

    from reproduce.runargs import add_run_arguments
    from reproduce.tables.specs import ABLATION_TABLES, TABLE_RUNS

    trainable = ", ".join(map(str, sorted(TABLE_RUNS)))
    table = commands.add_parser("table", help="train the runs a paper table needs (if missing) and render it")
    table.add_argument("table", type=int, help=f"paper table number ({trainable})")
    table.add_argument(
        "--with",
        dest="with_",
        nargs="+",
        default=[],
        metavar="EXTENSION",
        help="also train this repository's extra columns of the table (Table 4: 'sde' adds SF-MD +SDE and "
        "SF-MD +MWAM +SDE; no paper numbers)",
    )
    add_run_arguments(table)
    table.set_defaults(run=cmd_table)

    ablations = commands.add_parser(
        "ablations", help="every CASIA-SURF ablation table (5, 7, 8, 9, 10, 16); shared runs are trained once"
    )
    ablations.add_argument(
        "--tables", type=int, nargs="+", choices=ABLATION_TABLES, default=list(ABLATION_TABLES), help="a subset"
    )
    add_run_arguments(ablations)
    ablations.set_defaults(run=cmd_ablations)

    plot = commands.add_parser("plot", help="figures: per-modality loss curves (Fig. 4), metric vs filter (Fig. 9/10)")
    plot.add_argument("figure", choices=("losses", "filter"))
    plot.add_argument("--output", type=Path, required=True, help="output stem; writes STEM.png and STEM.pdf")
    plot.add_argument("--curves", type=Path, help="losses: CSV with panel,series,step,value")
    plot.add_argument("--synthetic", action="store_true", help="losses: the curves come from synthetic data")
    plot.add_argument(
        "--records",
        type=Path,
        nargs="+",
        help="filter: result records for Tables 18-21 (without: redraw Fig. 9 from the paper's numbers)",
    )
    plot.add_argument("--method", default="this repository", help="filter: legend name of the results")
    plot.set_defaults(run=cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    from reproduce.engine.trainer import TrainingInterruptedError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except TrainingInterruptedError as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return 130
    except (PaperDataError, RecordError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
