"""Run what a table needs and render it: ``python -m reproduce table N`` (and single columns for ``scripts/``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from reproduce.engine.trainers import build_trainer
from reproduce.io import write_text_atomic
from reproduce.presets import preset, resolve_data_root
from reproduce.runs.registry import Registry
from reproduce.tables.model import from_paper, from_records
from reproduce.tables.paper_data import load_paper_table, with_extension_columns
from reproduce.tables.render import FORMATS, render, render_side_by_side
from reproduce.tables.specs import ABLATION_TABLES, table_runs

log = logging.getLogger(__name__)


def run_table(
    number: int,
    preset_name: str = "paper",
    data_root: str | None = None,
    seeds: tuple[int, ...] = (0,),
    force: bool = False,
    resume: bool = False,
    wandb_mode: str | None = None,
    output_dir: str | Path = "results",
    registry_root: str | Path | None = None,
    columns: Sequence[str] | None = None,
    stem: str | None = None,
    extensions: Sequence[str] = (),
) -> list[Path]:
    """Train the runs of Table ``number`` (or only its ``columns``) that the registry lacks, then write
    ``<stem>.{md,csv,tex}`` (this repository's results in the paper's layout) and ``<stem>_vs_paper.{md,csv,tex}``
    (side by side with the paper's numbers); ``stem`` defaults to ``tableN``. ``extensions`` (e.g. ``("sde",)``)
    adds this repository's extra columns of the table (no paper numbers)."""
    spec = table_runs(number)
    chosen = preset(preset_name)
    root = resolve_data_root(spec.dataset, chosen, data_root)
    registry = Registry(registry_root) if registry_root is not None else Registry()
    names = list(columns) if columns is not None else None
    configs = [c for seed in seeds for c in spec.configs(root, chosen, seed, names, tuple(extensions))]
    for i, config in enumerate(configs, start=1):
        log.info("Table %d: run %d/%d, column %r [%s]", number, i, len(configs), config.column, config.key)
        build_trainer(config, registry, wandb_mode=wandb_mode).run(resume=resume, force=force)
    records = [r for c in configs for r in registry.records(c)]
    paper = load_paper_table(number)
    trained = {c.column for c in configs}
    extra = [c.column for c in spec.columns if c.extension and c.column in trained]
    if extra:
        paper = with_extension_columns(paper, extra)
    ours, theirs = from_records(paper, records), from_paper(paper)
    output_dir = Path(output_dir)
    stem = stem or f"table{number}"
    written = []
    for fmt in FORMATS:
        written.append(write_text_atomic(output_dir / f"{stem}.{fmt}", render(ours, fmt)))
        written.append(write_text_atomic(output_dir / f"{stem}_vs_paper.{fmt}", render_side_by_side(ours, theirs, fmt)))
    return written


def run_ablations(
    preset_name: str = "smoke",
    tables: Sequence[int] = ABLATION_TABLES,
    output_dir: str | Path = "results/smoke",
    **options,
) -> list[Path]:
    """Every CASIA-SURF ablation table (5, 7, 8, 9, 10, 16) under one preset; shared runs are trained once."""
    written = []
    for number in tables:
        written += run_table(number, preset_name, output_dir=output_dir, **options)
    return written
