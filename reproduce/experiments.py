"""Run what a table needs and render it: ``python -m reproduce table N`` (and single columns for ``scripts/``).

``plan_table`` turns a table spec, a preset and seeds into the plan of runs (dependencies first); ``run_table``
trains what the registry lacks and renders the table; ``describe_plan`` is ``--dry-run``: every run's key, whether
it is finished, its resolved configuration and its learning rate per epoch -- without training or loading torch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.engine.plan import PlannedRun, plan_runs
from reproduce.paths import results_root, results_root_set_to
from reproduce.runs.config import ConfigError, RunConfig, scratch_synthetic
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.runs.schedules import lr_per_epoch
from reproduce.tables.specs import ABLATION_TABLES, table_runs

log = logging.getLogger(__name__)
DATA_ROOT_VARIABLE = "MWAM_DATA_ROOT"


@dataclass
class TablePlan:
    """The runs of a table (or figure: ``kind``) under a preset: the plan (dependencies first) and its own runs."""

    number: int
    preset: Any
    plan: list[PlannedRun]
    requested: list[tuple[RunConfig, Runtime]]
    data_root: str | None
    kind: str = "Table"


def resolve_data_root(spec: Any, preset: Any, data_root: str | None, required: bool = True) -> str | None:
    """The real data root of the paper preset (``--data-root`` or ``$MWAM_DATA_ROOT``); None for synthetic presets
    (their runs name the preset's synthetic set) and, when not ``required``, for a paper preset without data."""
    if preset.synthetic:
        if data_root:
            raise ValueError(f"--preset {preset.name} uses synthetic data; drop --data-root or use --preset paper")
        return None
    root = data_root or os.environ.get(DATA_ROOT_VARIABLE)
    if not root:
        if required:
            raise ValueError(spec.missing_data_message())
        return None
    if not Path(root).is_dir():
        raise ValueError(f"data root {root} is not a directory")
    return str(root)


def plan_table(
    number: int,
    preset_name: str = "paper",
    data_root: str | None = None,
    seeds: Sequence[int] = (0,),
    columns: Sequence[str] | None = None,
    extensions: Sequence[str] = (),
    runtime: Runtime | None = None,
    require_data: bool = True,
    pretrained: str | None = None,
    nproc: int = 1,
) -> TablePlan:
    """The plan of Table ``number`` (or of its ``columns``) for every seed; ``pretrained``: an ImageNet checkpoint
    for the hosts that take one (``TableRuns.configs``); ``nproc``: the processes per run (their count is part of a
    run whose BatchNorm is not synchronised, ``train.batchnorm_shards``)."""
    from mwam_harness.datasets import dataset_spec

    spec = table_runs(number)
    dataset = dataset_spec(spec.dataset)
    preset = dataset.preset(preset_name)
    root = resolve_data_root(dataset, preset, data_root, required=require_data)
    names = list(columns) if columns is not None else None
    requested = [
        _for_processes(pair, nproc)
        for seed in seeds
        for pair in spec.configs(root, preset, seed, names, tuple(extensions), runtime, pretrained=pretrained)
    ]
    table_layout(number, requested)  # a column that cannot be drawn is an error before anything trains
    return TablePlan(number, preset, plan_runs(requested), requested, root)


def _for_processes(pair: tuple[RunConfig, Runtime], nproc: int) -> tuple[RunConfig, Runtime]:
    """A requested run as trained in ``nproc`` processes (``reproduce.runs.runtime.config_for_processes``)."""
    from reproduce.runs.runtime import config_for_processes

    config, runtime = pair
    return (config_for_processes(config, runtime, nproc) if nproc > 1 else config), runtime


def table_layout(number: int, requested: Sequence[tuple[RunConfig, Runtime]]) -> Any:
    """The paper's Table ``number`` laid out for the ``requested`` runs: this repository's extension columns added
    (in a block of their own modalities when they use fewer than the data set's), every paper column checked to be
    trained on its block's modalities (ValueError otherwise). Reads only the configurations (torch-free)."""
    from reproduce.tables.paper_data import check_column_modalities, load_paper_table, with_extension_columns

    spec = table_runs(number)
    paper = load_paper_table(number)
    if paper.kind != "subsets":
        return paper
    used = {runtime.column: config.data.modalities for config, runtime in requested}
    extensions = {c.column for c in spec.columns if c.extension}
    for column, modalities in used.items():
        if column not in extensions:
            check_column_modalities(paper, spec.column(column).fills, modalities)
    extra = {c.column: used[c.column] for c in spec.columns if c.extension and c.column in used}
    return with_extension_columns(paper, extra) if extra else paper


def run_table(
    number: int,
    preset_name: str = "paper",
    data_root: str | None = None,
    seeds: tuple[int, ...] = (0,),
    force: bool = False,
    resume: bool = False,
    runtime: Runtime | None = None,
    output_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    columns: Sequence[str] | None = None,
    stem: str | None = None,
    extensions: Sequence[str] = (),
    nproc: int = 1,
    pretrained: str | None = None,
) -> list[Path]:
    """Train the runs of Table ``number`` (or only its ``columns``) that the registry lacks -- dependencies first,
    in ``nproc`` processes each when > 1 -- then write ``<stem>.{md,csv,tex}`` (this repository's results in the
    paper's layout) and ``<stem>_vs_paper.{md,csv,tex}`` (side by side with the paper's numbers); ``stem``
    defaults to ``tableN``, ``output_dir`` to the results root (``<results>/<preset>/`` for synthetic presets).
    ``extensions`` (e.g. ``("sde",)``) adds this repository's extra columns of the table (no paper numbers)."""
    from reproduce.engine.runner import execute

    with results_root_set_to(results_dir):
        table = plan_table(
            number, preset_name, data_root, seeds, columns, extensions, runtime, pretrained=pretrained, nproc=nproc
        )
        registry = Registry()
        execute(table.plan, registry, resume=resume, force=force, nproc=nproc)
        output = Path(output_dir) if output_dir is not None else default_output_dir(table.preset)
        return render_table(number, table.requested, registry, output, stem or f"table{number}")


def default_output_dir(preset: Any, sub: str = "") -> Path:
    """``<results>/`` for the paper preset, ``<results>/<preset>/`` for synthetic ones (then ``sub``)."""
    base = results_root() if not preset.synthetic else results_root() / preset.name
    return base / sub if sub else base


def render_table(
    number: int, requested: Sequence[tuple[RunConfig, Runtime]], registry: Registry, output_dir: Path, stem: str
) -> list[Path]:
    """Write the table of the finished ``requested`` runs (and beside the paper's numbers) in every format."""
    from reproduce.io import write_text_atomic
    from reproduce.tables.model import from_paper, from_records
    from reproduce.tables.render import FORMATS, render, render_side_by_side

    spec = table_runs(number)
    records = [r for config, runtime in requested for r in column_records(spec, config, runtime, registry)]
    if spec.computed is not None:
        from mwam_harness.datasets.registry import load_object

        records.extend(load_object(spec.computed)(requested))
    paper = table_layout(number, requested)
    ours, theirs = from_records(paper, records), from_paper(paper)
    written = []
    for fmt in FORMATS:
        written.append(write_text_atomic(output_dir / f"{stem}.{fmt}", render(ours, fmt)))
        written.append(write_text_atomic(output_dir / f"{stem}_vs_paper.{fmt}", render_side_by_side(ours, theirs, fmt)))
    if spec.figures is not None:
        from mwam_harness.datasets.registry import load_object

        written.extend(load_object(spec.figures)(requested, registry, output_dir, stem))
    if requested:
        from reproduce.tables.wandb_table import log_table

        keys = [config.key for config, _ in requested]
        log_table(stem, ours, theirs, requested[0][1], registry.root.parent, keys)
    return written


def plan_figure(
    number: int,
    preset_name: str = "paper",
    data_root: str | None = None,
    seeds: Sequence[int] = (0,),
    runtime: Runtime | None = None,
    require_data: bool = True,
    nproc: int = 1,
) -> TablePlan:
    """The runs of Fig. ``number`` (``FIGURE_RUNS``) for every seed, trained in ``nproc`` processes each."""
    from mwam_harness.datasets import dataset_spec
    from reproduce.tables.specs import FIGURE_RUNS

    if number not in FIGURE_RUNS:
        raise ValueError(f"this repository trains the runs of Figs. {sorted(FIGURE_RUNS)}, not Fig. {number}")
    spec = FIGURE_RUNS[number]
    dataset = dataset_spec(spec.dataset)
    preset = dataset.preset(preset_name)
    root = resolve_data_root(dataset, preset, data_root, required=require_data)
    pairs = [pair for seed in seeds for pair in spec.configs(root, preset, seed, runtime=runtime)]
    requested = [_for_processes(pair, nproc) for pair in pairs]
    return TablePlan(number, preset, plan_runs(requested), requested, root, kind="Fig.")


def run_figure(
    number: int,
    preset_name: str = "paper",
    data_root: str | None = None,
    seeds: tuple[int, ...] = (0,),
    force: bool = False,
    resume: bool = False,
    runtime: Runtime | None = None,
    output_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    nproc: int = 1,
) -> list[Path]:
    """Train the runs of Fig. ``number`` that the registry lacks, then draw it (Fig. 1: the training loss,
    validation loss and validation accuracy per epoch of each filtered data set, seed 0's runs; with it Fig. 5, the
    filters on one training image per modality) into ``output_dir``."""
    from reproduce.engine.runner import execute
    from reproduce.figures_frequency import figure1

    with results_root_set_to(results_dir):
        plan = plan_figure(number, preset_name, data_root, seeds, runtime, nproc=nproc)
        registry = Registry()
        execute(plan.plan, registry, resume=resume, force=force, nproc=nproc)
        output = Path(output_dir) if output_dir is not None else default_output_dir(plan.preset)
        first = [(config, rt) for config, rt in plan.requested if config.seed == seeds[0]]
        histories = {rt.column: registry.load(config)["history"] for config, rt in first}
        synthetic = any(bool(registry.load(config)["synthetic"]) for config, _ in first)
        written = [figure1(histories, output / f"figure{number}.png", synthetic=synthetic)]
        written.append(_figure5(first[0][0], output / "figure5.png", synthetic))
        return written


def _figure5(config: RunConfig, path: Path, synthetic: bool) -> Path:
    """Fig. 5: the first training image of each modality, raw and under each filter of Fig. 1."""
    from mwam_harness.datasets import dataset_spec
    from reproduce.figures_frequency import figure5
    from reproduce.tables.specs import FIGURE1_WINDOWS, figure1_filter

    spec = dataset_spec(config.data.dataset)
    options = {k: v for k, v in config.data.options.items() if k != "filter"}
    dataset = spec.build_dataset(str(config.data.locate()), "train", train=False, seed=config.seed, **options)
    images = dataset.resized(0)
    filters = [figure1_filter(kind, size) for kind in ("high", "low") for size in FIGURE1_WINDOWS]
    return figure5(images, filters, path, synthetic=synthetic)


def column_records(spec: Any, config: RunConfig, runtime: Runtime, registry: Registry) -> list[Any]:
    """The records a finished run gives its table: all of its subsets under its column, or, for a run that fills a
    part of a paper column (``ColumnRun.part_of``), only its ``rows`` under that column."""
    import dataclasses

    from reproduce.subsets import subset_key

    column = spec.column(runtime.column) if runtime.column else None
    records = registry.records(config, runtime)
    if column is None or column.part_of is None:
        return records
    rows = {subset_key(r) for r in column.rows}
    return [dataclasses.replace(r, column=column.part_of) for r in records if r.subset in rows]


def run_ablations(
    preset_name: str = "smoke", tables: Sequence[int] = ABLATION_TABLES, output_dir: str | Path | None = None, **options
) -> list[Path]:
    """Every CASIA-SURF ablation table (5, 7, 8, 9, 10, 16) under one preset; shared runs are trained once."""
    written = []
    for number in tables:
        written += run_table(number, preset_name, output_dir=output_dir, **options)
    return written


# ---------------------------------------------------------------------------------------------- --dry-run
def _status(registry: Registry, key: str | None) -> str:
    if key is None:
        return "unknown (no data)"
    if registry.has(key):
        return "finished"
    if (registry.run_dir(key) / "last.pt").exists():
        return "interrupted (checkpoint; --resume continues it)"
    return "to train"


def _iterations(config: RunConfig) -> int | None:
    """Scheduler steps per epoch for per-iteration schedules: the fixed count, or the listed training samples over
    the batch (None when the data are not at hand)."""
    if config.train.iterations_per_epoch is not None:
        return config.train.iterations_per_epoch
    try:
        root = config.data.locate(generate=False)
        if config.data.root is None and not config.data.spec.is_synthetic(root):  # not generated: a scratch count
            return scratch_synthetic(config.data.dataset, config.data.synthetic)[1]["train"] // config.train.batch_size
        return config.data.spec.listed_samples(root, "train") // config.train.batch_size
    except (OSError, ConfigError):
        return None


def describe_run(planned: PlannedRun, registry: Registry) -> dict[str, Any]:
    """What ``--dry-run`` says of one planned run."""
    config = planned.config
    key = None if planned.key.startswith("?") else planned.key
    method_options = config.method.resolved_options()
    if hasattr(method_options, "lr_per_epoch"):  # a method with its own schedule (ultralytics')
        lrs = method_options.lr_per_epoch(config.optim.lr, config.train.epochs)
    else:
        iterations = _iterations(config) if config.schedule.interval == "iteration" else 1
        lrs = lr_per_epoch(config.schedule, config.optim.lr, config.train.epochs, iterations) if iterations else None
    return {
        "table": planned.runtime.table,
        "column": planned.runtime.column,
        "seed": config.seed,
        "key": key,
        "status": _status(registry, key),
        "role": "column" if planned.requested else "dependency",
        "dependencies": {role: None if k.startswith("?") else k for role, k in planned.dependencies.items()},
        "lr_per_epoch": lrs,
        "schedule": config.schedule.used_fields(),
        "method_options": resolved_method_options(config),
        "config": config.to_dict(),
    }


def resolved_method_options(config: RunConfig) -> dict[str, Any]:
    """Every option of the run's training method, defaults included (``config`` keeps only the changed ones)."""
    from reproduce.runs.options import plain

    options = config.method.resolved_options()
    return {} if options is None else plain(options)


def describe_plan(table: TablePlan, registry: Registry) -> list[dict[str, Any]]:
    return [describe_run(planned, registry) for planned in table.plan]


def lr_segments(lrs: Sequence[float | None], limit: int = 8) -> str:
    """``0: skipped, 1: 0, 2: 0.0002, ..., 6-21: 0.001, ...``: runs of equal learning rates, compactly (a skipped
    epoch trains no batch)."""
    segments: list[tuple[int, int, float | None]] = []
    for epoch, lr in enumerate(lrs):
        if segments and segments[-1][2] == lr:
            segments[-1] = (segments[-1][0], epoch, lr)
        else:
            segments.append((epoch, epoch, lr))

    def text(lr: float | None) -> str:
        return "skipped" if lr is None else f"{lr:.4g}"

    parts = [f"{a}-{b}: {text(lr)}" if a != b else f"{a}: {text(lr)}" for a, b, lr in segments]
    if len(parts) > limit:
        parts = [
            *parts[: limit // 2],
            f"... ({len(segments)} values, --json lists every epoch) ...",
            *parts[-limit // 2 :],
        ]
    return ", ".join(parts)


def format_plan(table: TablePlan, descriptions: list[dict[str, Any]]) -> str:
    """The text ``--dry-run`` prints."""
    import yaml

    todo = sum(d["status"] == "to train" for d in descriptions)
    finished = sum(d["status"] == "finished" for d in descriptions)
    data = " (SYNTHETIC data)" if table.preset.synthetic else f", data {table.data_root or 'not given'}"
    lines = [
        f"{table.kind} {table.number}, preset {table.preset.name}{data}: {len(descriptions)} runs, "
        f"{finished} finished, {todo} to train",
        "",
    ]
    for d in descriptions:
        role = "" if d["role"] == "column" else " (dependency)"
        lines.append(f"{d['column']}{role}  seed {d['seed']}  key {d['key'] or '-'}  {d['status']}")
        if d["dependencies"]:
            lines.append("  needs: " + ", ".join(f"{role} {key or '-'}" for role, key in d["dependencies"].items()))
        lrs = d["lr_per_epoch"]
        lines.append("  lr per epoch: " + (lr_segments(lrs) if lrs else "unknown (per-iteration schedule, no data)"))
        if d["method_options"]:
            shown = {k: v for k, v in d["method_options"].items() if k != "teacher_run"}
            lines.append(
                f"  method {d['config']['method']['name']}: " + ", ".join(f"{k}={v}" for k, v in shown.items())
            )
        if d["config"]["schedule"].get("preset"):
            fields = ", ".join(f"{k}={v}" for k, v in d["schedule"].items() if k not in ("name", "preset"))
            lines.append(f"  schedule preset {d['config']['schedule']['preset']!r} for this host: {fields}")
        lines.append("  config:")
        lines += ["    " + line for line in yaml.safe_dump(d["config"], sort_keys=False).splitlines()]
        lines.append("")
    return "\n".join(lines)
