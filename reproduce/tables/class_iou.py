"""Per-class IoU of a segmentation table's finished runs, per column and subset (beside Table 3).

MIoU hides *which* classes a subset loses: on NYUv2 an RGB-only model cannot tell a door from a cabinet in front of
the wall by depth, a depth-only model cannot tell a picture from the wall it hangs on. ``table3_class_iou`` (the
``figures`` hook of Table 3, :class:`reproduce.tables.specs.TableRuns`) writes ``<stem>_classes.md`` and
``<stem>_classes.csv``: one row per class that occurs in the runs (``iou_<k>`` of :class:`MeanIoU`, data-set
label ``k``), one column per table column and subset, the mean over the column's seeds when it has several, and a
last row with the mean over the classes listed (on the synthetic scenes, which show 10 of the 40 classes, the
table's MIoU -- ESANet's mean over all 40 -- is at most 25). A table from synthetic data says so in its title.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from reproduce.runs.config import RunConfig
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.subsets import dataset as subset_info
from reproduce.subsets import subset_key, subsets


def class_iou_rows(
    requested: Sequence[tuple[RunConfig, Runtime]], registry: Registry, class_names: Sequence[str]
) -> tuple[list[str], list[list[str]], bool]:
    """``(header, rows, synthetic)``: per class (label ``k`` is named ``class_names[k]``, 0 being void) the IoU in
    percent of every (column, subset) of the finished ``requested`` runs, averaged over seeds; ``-`` where a class
    has no entry (zero union in every seed)."""
    by_column: dict[str, list[dict]] = {}
    for config, runtime in requested:
        if registry.has(config):
            by_column.setdefault(runtime.column or config.host.name, []).append(registry.load(config))
    if not by_column:
        return [], [], False
    dataset = requested[0][0].data.dataset
    printed = dict(subset_info(dataset).header)
    order = [(subset_key(s), "+".join(printed[m] for m in s)) for s in subsets(dataset)]
    labels = sorted(
        {int(name[4:]) for entries in by_column.values() for e in entries for values in e["subsets"].values()
         for name in values if name.startswith("iou_")}
    )  # fmt: skip
    header = ["class"] + [f"{column} {shown}" for column in by_column for _, shown in order]
    rows, numbers = [], []
    for label in labels:
        row, values_of_row = [class_names[label] if label < len(class_names) else str(label)], []
        for entries in by_column.values():
            for key, _ in order:
                values = [e["subsets"].get(key, {}).get(f"iou_{label}") for e in entries]
                values = [v for v in values if v is not None]
                values_of_row.append(sum(values) / len(values) if values else None)
                row.append(f"{values_of_row[-1]:.2f}" if values else "-")
        rows.append(row)
        numbers.append(values_of_row)
    if rows:  # the mean over the classes shown: MIoU restricted to them (ESANet's MIoU averages all C classes)
        mean = [f"mean of these {len(rows)} classes"]
        for column in zip(*numbers, strict=True):
            present = [v for v in column if v is not None]
            mean.append(f"{sum(present) / len(present):.2f}" if present else "-")
        rows.append(mean)
    synthetic = any(e.get("synthetic") for entries in by_column.values() for e in entries)
    return header, rows, synthetic


def write_class_iou(
    requested: Sequence[tuple[RunConfig, Runtime]],
    registry: Registry,
    output_dir: Path,
    stem: str,
    class_names: Sequence[str],
    title: str,
) -> list[Path]:
    """``<stem>_classes.md`` and ``.csv`` (see the module docstring); nothing when no run has finished."""
    from reproduce.io import write_text_atomic

    header, rows, synthetic = class_iou_rows(requested, registry, class_names)
    if not rows:
        return []
    seeds = sorted({config.seed for config, _ in requested})
    label = " (this repository, SYNTHETIC DATA, not a reproduction of the paper)" if synthetic else " (this repository)"
    lines = [
        f"**{title}{label}: IoU per class (%), per column and subset**",
        "",
        "| " + " | ".join(header) + " |",
        "| :-- | " + " | ".join("--:" for _ in header[1:]) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        f"Classes with a non-zero union in at least one run; {'mean over seeds ' + str(seeds) if len(seeds) > 1 else 'seed ' + str(seeds[0])}.",  # noqa: E501
        "The last row is the mean over the classes listed; the table's MIoU (ESANet's rule) averages all "
        f"{len(class_names) - 1} classes, an absent one counting 0.",
    ]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *rows])
    return [
        write_text_atomic(output_dir / f"{stem}_classes.md", "\n".join(lines) + "\n"),
        write_text_atomic(output_dir / f"{stem}_classes.csv", text.getvalue()),
    ]


def table3_class_iou(
    requested: Sequence[tuple[RunConfig, Runtime]], registry: Registry, output_dir: Path, stem: str
) -> list[Path]:
    """Table 3's per-class IoU (NYUv2's 40 class names)."""
    from mwam_harness.datasets.nyuv2 import CLASS_NAMES

    return write_class_iou(requested, registry, output_dir, stem, CLASS_NAMES, "Table 3")
