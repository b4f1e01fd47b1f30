"""Run what a table needs and render it: ``python -m reproduce table N``."""

from __future__ import annotations

import logging
from pathlib import Path

from reproduce.engine.trainer import Trainer
from reproduce.io import write_text_atomic
from reproduce.presets import preset, resolve_data_root
from reproduce.runs.registry import Registry
from reproduce.tables.model import from_paper, from_records
from reproduce.tables.paper_data import load_paper_table
from reproduce.tables.render import FORMATS, render, render_side_by_side
from reproduce.tables.specs import table_runs

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
) -> list[Path]:
    """Train the runs of Table ``number`` that the registry lacks, then write ``tableN.{md,csv,tex}`` (this
    repository's results in the paper's layout) and ``tableN_vs_paper.{md,csv,tex}`` (side by side)."""
    spec = table_runs(number)
    chosen = preset(preset_name)
    root = resolve_data_root(spec.dataset, chosen, data_root)
    registry = Registry(registry_root) if registry_root is not None else Registry()
    configs = [c for seed in seeds for c in spec.configs(root, chosen.synthetic, dict(chosen.run), seed)]
    for config in configs:
        Trainer(config, registry, wandb_mode=wandb_mode).run(resume=resume, force=force)
    records = [r for c in configs for r in registry.records(c)]
    paper = load_paper_table(number)
    ours, theirs = from_records(paper, records), from_paper(paper)
    output_dir = Path(output_dir)
    written = []
    for fmt in FORMATS:
        written.append(write_text_atomic(output_dir / f"table{number}.{fmt}", render(ours, fmt)))
        written.append(
            write_text_atomic(output_dir / f"table{number}_vs_paper.{fmt}", render_side_by_side(ours, theirs, fmt))
        )
    return written
