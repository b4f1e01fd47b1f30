"""Command line of the harness: ``python -m reproduce <command> ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reproduce.io import write_text_atomic
from reproduce.runs.records import RecordError, read_records
from reproduce.subsets import dataset, dataset_names, display_names, marks, subset_key, subsets
from reproduce.tables.model import from_paper, from_records
from reproduce.tables.paper_data import PaperDataError, available_tables, load_paper_table
from reproduce.tables.render import FORMATS, render, render_side_by_side

if TYPE_CHECKING:
    from reproduce.tables.specs import TableRuns

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


def cmd_cost(args: argparse.Namespace) -> int:
    """Table 6 computed from the models (parameters, FLOPs, MWAM's time per step) beside the paper's."""
    import json

    import torch

    from reproduce.benchmarks.model_cost import run_cost
    from reproduce.tables.cost_table import render_cost_csv, render_cost_markdown

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch.cuda.is_available() is False")
    report = run_cost(device, tuple(args.models) if args.models else None, args.iters, args.warmup)
    out = Path(args.output_dir)
    _emit(render_cost_markdown(report), out / "table6.md")
    _emit(render_cost_csv(report), out / "table6.csv")
    _emit(json.dumps(report, indent=1) + "\n", out / "table6.json")
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
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    if preset_name != "paper":
        print(
            "these tables come from SYNTHETIC data: they test the pipeline, they do not reproduce the paper",
            file=sys.stderr,
        )


def cmd_table(args: argparse.Namespace) -> int:
    from reproduce.runargs import output_dir, run_options, runtime_from

    if args.dry_run:
        import json

        from reproduce.experiments import describe_plan, format_plan, plan_table
        from reproduce.paths import results_root_set_to
        from reproduce.runs.config import synthetic_data_not_kept
        from reproduce.runs.registry import Registry

        with results_root_set_to(args.results_dir), synthetic_data_not_kept():
            table = plan_table(
                args.table,
                args.preset,
                args.data_root,
                tuple(args.seeds),
                args.columns,
                extensions=tuple(args.with_),
                runtime=runtime_from(args),
                require_data=False,
                pretrained=args.pretrained,
                nproc=args.nproc,
            )
            descriptions = describe_plan(table, Registry())
        sys.stdout.write(json.dumps(descriptions, indent=2) + "\n" if args.json else format_plan(table, descriptions))
        return 0
    from reproduce.experiments import run_table

    written = run_table(
        args.table,
        output_dir=output_dir(args),
        columns=args.columns,
        extensions=tuple(args.with_),
        pretrained=args.pretrained,
        **run_options(args),
    )
    _report(written, args.preset)
    return 0


def cmd_figure(args: argparse.Namespace) -> int:
    from reproduce.runargs import output_dir, run_options, runtime_from

    if args.dry_run:
        from reproduce.experiments import describe_plan, format_plan, plan_figure
        from reproduce.paths import results_root_set_to
        from reproduce.runs.config import synthetic_data_not_kept
        from reproduce.runs.registry import Registry

        with results_root_set_to(args.results_dir), synthetic_data_not_kept():
            plan = plan_figure(
                args.figure, args.preset, args.data_root, tuple(args.seeds), runtime_from(args), require_data=False,
                nproc=args.nproc,
            )
            sys.stdout.write(format_plan(plan, describe_plan(plan, Registry())))
        return 0
    from reproduce.experiments import run_figure

    _report(run_figure(args.figure, output_dir=output_dir(args), **run_options(args)), args.preset)
    return 0


def cmd_ablations(args: argparse.Namespace) -> int:
    from reproduce.experiments import run_ablations
    from reproduce.runargs import output_dir, run_options

    written = run_ablations(tables=tuple(args.tables), output_dir=output_dir(args), **run_options(args))
    _report(written, args.preset)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """One run from a configuration file (under torchrun: in every process), its dependencies first."""
    from reproduce.engine import distributed
    from reproduce.engine.plan import plan_runs
    from reproduce.engine.runner import execute
    from reproduce.paths import results_root_set_to
    from reproduce.runargs import runtime_from
    from reproduce.runs.config import RunConfig
    from reproduce.runs.overrides import deep_merge, parse_assignments
    from reproduce.runs.registry import Registry
    from reproduce.runs.runtime import Runtime, config_for_processes

    with results_root_set_to(args.results_dir):
        config = RunConfig.from_yaml(args.config)
        overrides = parse_assignments(args.set or [])
        if args.data_root is not None:
            overrides = deep_merge(overrides, {"data": {"root": args.data_root, "synthetic": None}})
        if overrides:
            config = config.with_overrides(overrides, source=f"{args.config} with --set")
        runtime = runtime_from(args, Runtime.from_yaml(args.config))
        if args.table is not None or args.column is not None:
            runtime = runtime.replace(table=args.table, column=args.column or "")
        process = distributed.initialise()
        # Under torchrun without synchronised BatchNorm the process count is part of the run (train.batchnorm_shards)
        config = config_for_processes(config, runtime, process.world_size)
        try:
            registry = Registry()
            plan = plan_runs([(config, runtime)])
            results = execute(plan, registry, resume=args.resume, force=args.force, wait=not args.no_wait)
        finally:
            distributed.shutdown()
        result = results[config.key]
        if process.is_main:
            print(f"run {config.key}: {registry.path(config)}", file=sys.stderr)
            primary = result["primary"]
            for subset, values in result["subsets"].items():
                print(f"  {subset:<24} {result['metric']} {values[primary]:.2f}")
            if result["synthetic"]:
                print(
                    "SYNTHETIC data: these numbers test the pipeline, they do not reproduce the paper", file=sys.stderr
                )
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    from mwam_harness.datasets import dataset_spec

    spec = dataset_spec(args.dataset)
    problems = spec.check(args.root, progress=not args.no_progress, workers=args.workers)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{spec.title} at {args.root}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    try:
        counts = ", ".join(f"{split} {spec.listed_samples(args.root, split)}" for split in spec.splits)
    except OSError:  # a download layout without split lists (e.g. raw BraTS2020, before `prepare`)
        print(f"{spec.title} at {args.root}: every file reads and decodes (no split lists: not prepared yet)")
        return 0
    print(f"{spec.title} at {args.root}: every listed file reads and decodes ({counts} samples)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import torch

    from reproduce.paths import runs_dir
    from reproduce.predict.base import parse_subset, predictor_for, write_manifest
    from reproduce.predict.trained import find_trained_run

    run = find_trained_run(args.reference, runs_dir(args.results_dir))
    predictor = predictor_for(run.dataset)
    subset = parse_subset(args.subset, run.config.modalities)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if not args.input.exists():
        raise FileNotFoundError(f"no input at {args.input} ({run.dataset} runs take {predictor.input_help})")
    args.output.mkdir(parents=True, exist_ok=True)
    predictions = predictor.predict(run, args.input, args.output, subset, device)
    rule = f"--subset {'+'.join(subset)}" if subset else "the modalities whose files are present"
    manifest = write_manifest(args.output, run, predictions, rule)
    used = sorted({"+".join(p.subset) for p in predictions})
    synthetic = " (the model trained on SYNTHETIC data)" if run.synthetic else ""
    print(f"{len(predictions)} prediction(s) of run {run.key} ({run.config.host.name}){synthetic}, "
          f"subsets {', '.join(used)} -> {args.output} ({manifest.name})")  # fmt: skip
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from mwam_harness.datasets import dataset_spec

    spec = dataset_spec(args.dataset)
    options = {"progress": not args.no_progress, "workers": args.workers, "seed": args.seed}
    if args.split_files:
        options["split_files"] = args.split_files
    if args.annotations:
        options["annotations"] = args.annotations
    if args.layout:
        options["layout"] = args.layout
    if args.flows:
        options["flows"] = args.flows
    try:
        out = spec.prepare(args.source, args.out, **options)
    except (ValueError, FileNotFoundError) as error:
        print(f"prepare {spec.name}: {error}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{split} {spec.listed_samples(out, split)}" for split in spec.splits)
    print(f"{spec.title} prepared at {out} ({counts}); runs read it with --data-root {out}")
    return 0


def _extensions_help(table_runs: Mapping[int, TableRuns]) -> str:
    """``--with``'s help: per trainable table with extensions, each extension and the columns it adds."""
    per_table = []
    for number, runs in sorted(table_runs.items()):
        added = [
            f"{name} adds {', '.join(repr(c.column) for c in runs.columns if c.extension == name)}"
            for name in runs.extensions
        ]
        if added:
            per_table.append(f"Table {number}: {'; '.join(added)}")
    listing = ". ".join(per_table) if per_table else "no table has any yet"
    text = f"also train this repository's extra columns of the table (no paper numbers; docs/training.md). {listing}"
    return text.replace("%", "%%")  # argparse formats help with %


def _preparable() -> list[str]:
    """The registered data sets with a prepare step (a ``preparer`` in their spec)."""
    from mwam_harness.datasets.registry import dataset_spec, list_datasets

    return [name for name in list_datasets() if dataset_spec(name).preparer is not None]


FILTER_TABLES = ((18, "low-pass"), (19, "low-pass"), (20, "high-pass"), (21, "high-pass"))


def cmd_plot(args: argparse.Namespace) -> int:
    from reproduce import plots

    if args.figure == "losses":
        if not args.runs and args.curves is None:
            raise ValueError("plot losses needs --run RUN (a run key or folder) or --curves FILE.csv")
        points, provenance = [], []
        for reference in args.runs or ():
            from reproduce.paths import runs_dir
            from reproduce.predict.trained import KEY

            folder = runs_dir(args.results_dir) / reference if KEY.match(reference) else Path(reference)
            run_points, synthetic = plots.read_run_curves(folder)
            points += run_points
            provenance.append(synthetic)
        if args.curves is not None:  # a CSV from elsewhere: synthetic only if it lies in a run folder that says so
            points += plots.read_curves(args.curves)
            entry = args.curves.parent.parent / f"{args.curves.parent.name}.json"
            provenance.append(plots.read_run_curves(args.curves.parent)[1] if entry.is_file() else None)
        written = plots.plot_loss_curves(points, args.output, synthetic=any(p is True for p in provenance))
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

    cost = commands.add_parser(
        "cost", help="Table 6 computed from the models: parameters, FLOPs and MWAM's time per step, beside the paper"
    )
    cost.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when present, else cpu")
    cost.add_argument("--models", nargs="+", default=None, metavar="MODEL", help="e.g. RFNet (default: every one)")
    cost.add_argument("--iters", type=int, default=20, help="timed MWAM steps (default 20)")
    cost.add_argument("--warmup", type=int, default=3, help="untimed MWAM steps first (default 3)")
    cost.add_argument("--output-dir", type=Path, default=Path("results/table6"), help="default results/table6")
    cost.set_defaults(run=cmd_cost)

    sub = commands.add_parser("subsets", help="list a data set's missing-modality subsets in paper order")
    sub.add_argument("dataset", choices=dataset_names())
    sub.set_defaults(run=cmd_subsets)

    from mwam_harness.datasets.registry import list_datasets
    from reproduce.runargs import add_no_wait_argument, add_run_arguments, add_runtime_arguments
    from reproduce.tables.specs import ABLATION_TABLES, TABLE_RUNS

    trainable = ", ".join(map(str, sorted(TABLE_RUNS)))
    table = commands.add_parser("table", help="train the runs a paper table needs (if missing) and render it")
    table.add_argument("table", type=int, help=f"paper table number ({trainable})")
    table.add_argument(
        "--with",
        dest="with_",
        nargs="+",
        action="extend",
        default=[],
        metavar="EXTENSION",
        help=_extensions_help(TABLE_RUNS),
    )
    table.add_argument(
        "--dry-run",
        action="store_true",
        help="train nothing: print every run (dependencies first) with its key, whether it is finished, its resolved "
        "configuration and its learning rate per epoch",
    )
    table.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")
    table.add_argument(
        "--pretrained",
        default=None,
        metavar="PATH",
        help="an ImageNet ResNet-50 state dict (torchvision's resnet50 file) for the hosts that start from one "
        "(ESANet-MD, MMANet-seg and its ESANet teacher, Table 3); recorded in each run's configuration",
    )
    table.add_argument(
        "--columns",
        nargs="+",
        default=None,
        metavar="COLUMN",
        help="train and render only these columns (e.g. --columns RFNet 'RFNet +MWAM'); default: all of them",
    )
    add_run_arguments(table)
    table.set_defaults(run=cmd_table)

    figure = commands.add_parser(
        "figure", help="train the runs a paper figure needs (if missing) and draw it (Fig. 1, with Fig. 5)"
    )
    figure.add_argument("figure", type=int, choices=(1,), help="paper figure number")
    figure.add_argument("--dry-run", action="store_true", help="train nothing: print every run with its key")
    add_run_arguments(figure, default_output="results/ (results/<preset>/ for synthetic)")
    figure.set_defaults(run=cmd_figure)

    run = commands.add_parser(
        "run",
        help="train one run from a configuration file (its dependencies first); under torchrun with DDP",
        description="Train and evaluate one run described by CONFIG.yaml (sections data, host, optim, schedule, "
        "train, eval, method, mwam, sde, seed; an optional runtime section). Multi-GPU: torchrun "
        "--nproc_per_node N -m reproduce run CONFIG.yaml",
    )
    run.add_argument("config", type=Path, help="a run configuration (e.g. results/runs/<key>/config.yaml)")
    run.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a setting, e.g. --set optim.lr=0.01"
    )
    run.add_argument("--data-root", default=None, help="the data root (replaces the file's data.root / synthetic)")
    run.add_argument("--force", action="store_true", help="retrain the run if it is already in the registry")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    add_no_wait_argument(run)
    run.add_argument("--table", type=int, default=None, help="label: the paper table the run belongs to")
    run.add_argument("--column", default=None, help="label: the table column the run fills")
    add_runtime_arguments(run)
    run.set_defaults(run=cmd_run)

    check = commands.add_parser(
        "check-data", help="read and decode every file a data set lists; report every problem (exit 1 if any)"
    )
    check.add_argument("dataset", choices=list_datasets())
    check.add_argument("root", type=Path)
    check.add_argument("--workers", type=int, default=4, help="decoding threads (default 4)")
    check.add_argument("--no-progress", action="store_true")
    check.set_defaults(run=cmd_check_data)

    predict = commands.add_parser(
        "predict",
        help="apply a trained run to your own files (any missing-modality subset)",
        description="Apply a finished run to your own files, in its data set's formats; writes the predictions "
        "and prediction.json (the run, and for every input the subset used) into --output. Without --subset an "
        "input uses the modalities whose files are present. README, 'Use your trained model'.",
    )
    predict.add_argument("reference", metavar="RUN", help="a run key, a run folder, or its model.pt")
    predict.add_argument("--input", type=Path, required=True, help="a file, a folder or a list file (per data set)")
    predict.add_argument("--output", type=Path, required=True, help="folder for the predictions (created)")
    predict.add_argument("--subset", default=None, help="modalities joined by '+', e.g. rgb+depth (default: present)")
    predict.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when present)")
    predict.add_argument("--results-dir", type=Path, default=None, help="the results root holding runs/")
    predict.set_defaults(run=cmd_predict)

    from reproduce.export import add_export_parser

    add_export_parser(commands)

    prepare = commands.add_parser(
        "prepare",
        help="turn a data set's download (e.g. raw BraTS2020 NIfTI) into the layout its runs read",
        description="Write the layout a data set's loader reads from its download, as its hosts' authors "
        "preprocess it (BraTS2020: modality order, brain crop, z-score, labels 4 -> 3, a seeded 219 / 50 / 100 "
        "split; NYU-Depth V2: PNGs from the .mat files, NYU's 795 / 654 split, median-frequency class weights). "
        "Idempotent (prepared subjects are skipped), atomic, reports every bad input file.",
    )
    prepare.add_argument("dataset", help=f"registered data set with a prepare step: {', '.join(_preparable())}")
    prepare.add_argument("source", type=Path, help="the download (raw folder or the authors' preprocessed one)")
    prepare.add_argument("out", type=Path, help="where to write the prepared root")
    prepare.add_argument("--split-files", nargs="+", type=Path, metavar="LIST",
                         help="the authors' split lists instead of a seeded split: TRAIN TEST [VAL]")  # fmt: skip
    prepare.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    prepare.add_argument("--workers", type=int, default=2, help="processes reading and writing subjects")
    prepare.add_argument("--layout", choices=("balancebenchmark", "dimml"), default=None,
                         help="ucf101: balancebenchmark (6 frames a video) or dimml (every frame)")  # fmt: skip
    prepare.add_argument("--flows", choices=("sampled", "all"), default=None,
                         help="ucf101 (balancebenchmark): the flow at each sampled frame or of every pair")  # fmt: skip
    prepare.add_argument("--annotations", choices=("ir", "rgb"), default=None,
                         help="DroneVehicle: the labels from the IR (default) or the RGB annotations")  # fmt: skip
    prepare.add_argument("--no-progress", action="store_true")
    prepare.set_defaults(run=cmd_prepare)

    ablations = commands.add_parser(
        "ablations", help="every CASIA-SURF ablation table (5, 7, 8, 9, 10, 16); shared runs are trained once"
    )
    ablations.add_argument(
        "--tables", type=int, nargs="+", choices=ABLATION_TABLES, default=list(ABLATION_TABLES), help="a subset"
    )
    add_run_arguments(ablations)
    ablations.set_defaults(run=cmd_ablations)

    commands.add_parser(
        "synthetic",
        help="write a data set's synthetic stand-in in the real on-disk layout (synthetic NAME OUT_DIR --help)",
        add_help=False,
    )  # parsed by mwam_harness.datasets.synthetic (main() hands it the rest of the command line)
    plot = commands.add_parser("plot", help="figures: per-modality loss curves (Fig. 4), metric vs filter (Fig. 9/10)")
    plot.add_argument("figure", choices=("losses", "filter"))
    plot.add_argument("--output", type=Path, required=True, help="output stem; writes STEM.png and STEM.pdf")
    plot.add_argument("--run", dest="runs", nargs="+", help="losses: run keys or run folders (their curves.csv)")
    plot.add_argument("--curves", type=Path, help="losses: a CSV with panel,series,step,value")
    plot.add_argument("--results-dir", type=Path, default=None, help="losses: the results root of --run keys")
    plot.add_argument(
        "--records",
        type=Path,
        nargs="+",
        help="filter: result records for Tables 18-21 (without: redraw Fig. 9 from the paper's numbers)",
    )
    plot.add_argument("--method", default="this repository", help="filter: legend name of the results")
    plot.set_defaults(run=cmd_plot)
    return parser


#: torch's messages when ``torch.save`` cannot write (a full disk gives no errno through its C++ writer).
TORCH_WRITE_FAILURES = ("unexpected pos", "file write failed", "PytorchStreamWriter failed writing")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _free_space(path: str | Path) -> str:
    """The free space of the file system holding ``path`` (its nearest existing folder), for messages."""
    import shutil

    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return f"{_size(shutil.disk_usage(folder).free)} free on the file system of {folder}"
    except OSError:
        return "free space unknown"


def _under(path: Path, root: Path) -> bool:
    try:
        path.absolute().relative_to(root.absolute())
    except ValueError:
        return False
    return True


def environment_error(error: BaseException) -> str | None:
    """One line saying what went wrong with the machine (not with the run) and what to do, or None: no space
    left (the path and the free space), a read-only or unwritable results root (named), a missing file or data
    root, any other ``OSError`` naming its file."""
    import errno

    from reproduce.paths import results_root

    root = results_root()
    if isinstance(error, RuntimeError) and any(text in str(error) for text in TORCH_WRITE_FAILURES):
        return (
            f"cannot write a checkpoint under {root} (torch: {str(error).strip().splitlines()[0]}); "
            f"{_free_space(root)}: a full disk gives this; free some space (or use --results-dir) and rerun "
            "with --resume"
        )
    if not isinstance(error, OSError):
        return None
    path = Path(error.filename) if error.filename else None
    where = f" ({path})" if path is not None else ""
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        target = path or root
        return (
            f"no space left on device writing {target}: {_free_space(target)}; free some space (or use "
            "--results-dir) and rerun with --resume"
        )
    if error.errno == errno.EROFS or (isinstance(error, PermissionError) and path is not None and _under(path, root)):
        kind = "read-only" if error.errno == errno.EROFS else "not writable"
        if path is None or _under(path, root):
            return (
                f"the results root {root} is {kind}{where}: make it writable, or choose another with --results-dir "
                "or $MWAM_RESULTS_DIR"
            )
        return f"{path} is on a read-only file system: make it writable or write elsewhere"
    if isinstance(error, FileNotFoundError):
        hint = " (set --data-root or the run's data.root to the data set's folder)" if "data root" in str(error) else ""
        return f"{error.strerror + ': ' + str(path) if path is not None and error.strerror else error}{hint}"
    if path is not None:
        return f"cannot access {path}: {error.strerror or error}"
    return None


def main(argv: list[str] | None = None) -> int:
    """The command line; exit status 0 done, 2 a bad command, configuration or data (the message says what),
    1 the machine (no space left, a read-only results root, a file that cannot be read or written), 130
    interrupted (``--resume`` continues). An error is one line on stderr; ``--debug`` (anywhere on the command
    line) shows its traceback instead."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if argv[:1] == ["synthetic"]:
        from mwam_harness.datasets.synthetic import main as write_synthetic

        return write_synthetic(argv[1:], prog="python -m reproduce synthetic")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except Exception as error:
        if debug:
            raise
        return _report_error(error)


def _report_error(error: Exception) -> int:
    """Print ``error`` as one line and return the exit status (``main``); re-raise what is not understood."""
    from reproduce.engine.trainer import DependencyError, NonFiniteLossError, TrainingInterruptedError

    if isinstance(error, NonFiniteLossError):  # the run's numbers (data, learning rate): nothing was recorded
        print(f"error: {error}", file=sys.stderr)
        return 2
    if isinstance(error, TrainingInterruptedError):
        print(f"interrupted: {error}", file=sys.stderr)
        return 130
    if isinstance(error, FileNotFoundError):  # a missing data root or file: the input, as a bad configuration
        print(f"error: {environment_error(error)}", file=sys.stderr)
        return 2
    if isinstance(error, PaperDataError | RecordError | ValueError | DependencyError):
        print(f"error: {error}", file=sys.stderr)
        return 2
    message = environment_error(error)
    if message is None:
        raise error
    print(f"error: {message}", file=sys.stderr)
    return 1
