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


#: The quantities of a run's curves, each on its own axes with its own scale: (title, y label, log scale).
QUANTITIES: dict[str, tuple[str, str, bool]] = {
    "loss": ("losses", "loss", False),
    "K": ("MWAM weight K (Eq. 5-6)", "K", False),
    "frm": ("FRM (Eq. 4)", "FRM (log scale)", True),
    "other": ("other logged values", "value", False),
}


def quantity(series: str) -> str:
    """Which axes a series belongs on: ``loss``, ``K``, ``frm`` or ``other`` (``mwam/K/rgb`` -> ``K``; a series
    without a prefix, such as ``rgb`` in Fig. 4's CSV, is a loss, except the learning rate ``lr``)."""
    parts = series.split("/")
    if parts[0] == "loss" or (len(parts) == 1 and series != "lr"):
        return "loss"
    if parts[0] == "mwam" and len(parts) >= 2 and parts[1] in ("K", "frm"):
        return parts[1]
    return "other"


def plot_loss_curves(
    points: Iterable[CurvePoint], stem: str | Path, title: str = "Training losses per modality", synthetic: bool = False
) -> list[Path]:
    """Fig. 4: one row per panel (an intervention, a run), one column per quantity -- losses, MWAM's K, the FRMs
    (log scale), anything else logged -- each with its own y axis, one line per series (fused and each modality).
    ``synthetic`` comes from the runs' provenance (``read_run_curves``)."""
    plt = _pyplot()
    panels: dict[str, dict[str, dict[str, list[tuple[float, float]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for p in points:
        panels[p.panel][quantity(p.series)][p.series].append((p.step, p.value))
    if not panels:
        raise ValueError("no curve points to plot")
    kinds = [k for k in QUANTITIES if any(k in q for q in panels.values())]
    figure, axes = plt.subplots(len(panels), len(kinds), figsize=(4.4 * len(kinds), 3.2 * len(panels)), squeeze=False)
    for row, (panel, by_kind) in enumerate(panels.items()):
        for column, kind in enumerate(kinds):
            ax = axes[row][column]
            heading, label, log_scale = QUANTITIES[kind]
            ax.set_title(f"{panel}: {heading}", fontsize=9)
            if kind not in by_kind:
                ax.text(0.5, 0.5, "not logged", transform=ax.transAxes, ha="center", va="center", color="grey")
                ax.set_axis_off()
                continue
            for name, xy in sorted(by_kind[kind].items()):
                xy.sort()
                ax.plot([x for x, _ in xy], [y for _, y in xy], label=name, linewidth=1.4)
            if log_scale and all(y > 0 for xy in by_kind[kind].values() for _, y in xy):
                ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    figure.suptitle(title + (SYNTHETIC_NOTE if synthetic else ""))
    figure.tight_layout()
    try:
        return _save(figure, Path(stem))
    finally:
        plt.close(figure)


def read_run_curves(folder: str | Path) -> tuple[list[CurvePoint], bool | None]:
    """A run's logged curves (``<run folder>/curves.csv``) and whether it trained on synthetic data (its registry
    entry ``<key>.json`` beside the folder; None when there is none)."""
    import json

    folder = Path(folder)
    points = read_curves(folder / "curves.csv")
    entry = folder.parent / f"{folder.name}.json"
    synthetic = bool(json.loads(entry.read_text(encoding="utf-8")).get("synthetic")) if entry.is_file() else None
    return points, synthetic


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
