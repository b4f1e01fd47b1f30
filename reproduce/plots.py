"""Figures from logged results: per-modality training-loss curves (Fig. 4) and metric vs filter size (Fig. 9/10).

Each figure is written as PNG and PDF. Inputs are long-format tables, so the same code draws the paper's
numbers and this repository's results; a figure from synthetic data says so in its title.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reproduce.io import atomic_write
from reproduce.tables.model import TableView

SYNTHETIC_NOTE = " (synthetic data, not a reproduction of the paper)"


@dataclass(frozen=True)
class CurvePoint:
    """One logged value: ``panel`` (e.g. the intervention), ``series`` (e.g. ``loss/rgb``), ``step``, ``value``."""

    panel: str
    series: str
    step: float
    value: float


@dataclass(frozen=True)
class FilterPoint:
    """Metric of ``method`` with a ``kind`` (``low-pass`` / ``high-pass``) filter of ``kernel`` pixels."""

    method: str
    kind: str
    kernel: int
    value: float


def read_curves(path: str | Path) -> list[CurvePoint]:
    """A CSV with the header ``panel,series,step,value``."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or set(reader.fieldnames) != {"panel", "series", "step", "value"}:
            raise ValueError(f"{path}: expected the header panel,series,step,value, got {reader.fieldnames}")
        points = []
        for number, row in enumerate(reader, start=2):
            try:
                points.append(CurvePoint(row["panel"], row["series"], float(row["step"]), float(row["value"])))
            except ValueError as error:
                raise ValueError(f"{path}:{number}: {error}") from None
    if not points:
        raise ValueError(f"{path}: no points")
    return points


def _save(figure, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        written.append(
            atomic_write(stem.with_suffix(suffix), lambda tmp: figure.savefig(tmp, dpi=150, bbox_inches="tight"))
        )
    return written


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(
    points: Iterable[CurvePoint], stem: str | Path, title: str = "Training losses per modality", synthetic: bool = False
) -> list[Path]:
    """Fig. 4: one panel per intervention, one line per loss series (fused and each modality)."""
    plt = _pyplot()
    panels: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        panels[p.panel][p.series].append((p.step, p.value))
    if not panels:
        raise ValueError("no curve points to plot")
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False, sharey=True)
    for ax, (panel, series) in zip(axes[0], panels.items(), strict=True):
        for name, xy in sorted(series.items()):
            xy.sort()
            ax.plot([x for x, _ in xy], [y for _, y in xy], label=name, linewidth=1.4)
        ax.set_title(panel)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("loss")
    axes[0][-1].legend(fontsize=8)
    figure.suptitle(title + (SYNTHETIC_NOTE if synthetic else ""))
    try:
        return _save(figure, Path(stem))
    finally:
        plt.close(figure)


def plot_metric_vs_filter(
    points: Iterable[FilterPoint],
    stem: str | Path,
    metric: str = "Average Acc",
    title: str = "Metric versus filter size",
    references: dict[str, float] | None = None,
    synthetic: bool = False,
) -> list[Path]:
    """Fig. 9 / 10: the metric against the kernel size, one line per (method, filter kind).

    ``references`` draws a dashed horizontal line per method (e.g. the unfiltered data set).
    """
    plt = _pyplot()
    lines: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for p in points:
        lines[(p.method, p.kind)].append((p.kernel, p.value))
    if not lines:
        raise ValueError("no filter points to plot")
    figure, ax = plt.subplots(figsize=(5.2, 3.6))
    for (method, kind), xy in sorted(lines.items()):
        xy.sort()
        style = "-o" if kind == "low-pass" else "--s"
        ax.plot([x for x, _ in xy], [y for _, y in xy], style, label=f"{method}, {kind}", markersize=4)
    for method, value in (references or {}).items():
        ax.axhline(value, color="grey", linestyle=":", linewidth=1)
        ax.text(
            0.99,
            value,
            f"{method}, no filter",
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="bottom",
            fontsize=7,
            color="grey",
        )
    ax.set_xscale("log", base=2)
    kernels = sorted({p[0] for xy in lines.values() for p in xy})
    ax.set_xticks(kernels, [f"{k}×{k}" for k in kernels], rotation=45, fontsize=7)
    ax.set_xlabel("kernel size")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title + (SYNTHETIC_NOTE if synthetic else ""), fontsize=9)
    try:
        return _save(figure, Path(stem))
    finally:
        plt.close(figure)


_KERNEL = re.compile(r"^(\d+)x(\d+)$")


def filter_points(views: Sequence[tuple[TableView, str]], method: str) -> tuple[list[FilterPoint], float | None]:
    """Average metric per kernel from per-subset tables whose columns are kernels (``3x3``) or ``w/o filter``.

    ``views`` pairs each table with its filter kind (Tables 18/19 low-pass, 20/21 high-pass). Returns the
    points and the unfiltered average (from a ``w/o filter`` column) if any.
    """
    points, reference = [], None
    for view, kind in views:
        for block in view.blocks:
            for column in block.columns:
                match = _KERNEL.match(column.name)
                if match and not math.isnan(column.average.mean):
                    points.append(FilterPoint(method, kind, int(match.group(1)), column.average.mean))
                elif column.name == "w/o filter":
                    reference = column.average.mean
    return points, reference
