"""Table 12's figures from finished runs: the precision-recall curves at IoU 0.5 per subset (Fig. 7) and a panel
of detections on the same test images for the RGB, IR and RGB+IR subsets (Fig. 6).

They read what :mod:`reproduce.yolo.evaluation` wrote into each run's ``eval/<subset>/`` (``pr_curve.json``,
``detections.json``) and are saved beside the table (``<stem>_pr_curves.{png,pdf}``,
``<stem>_detections.{png,pdf}``). A figure from synthetic data says so in its title, with the device the runs
trained on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reproduce.plots import SYNTHETIC_NOTE, _pyplot, _save
from reproduce.runs.config import RunConfig
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.subsets import dataset as subset_info
from reproduce.subsets import subset_key, subsets

#: Detections drawn in Fig. 6: ultralytics' default prediction confidence.
DRAW_CONFIDENCE = 0.25
CLASS_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple")


def _columns(requested: Sequence[tuple[RunConfig, Runtime]], registry: Registry) -> list[tuple[str, Path, dict]]:
    out = []
    for config, runtime in requested:
        if registry.has(config):
            out.append((runtime.column or config.host.name, registry.run_dir(config), registry.load(config)))
    return out


def subset_names(dataset: str) -> list[str]:
    """``RGB``, ``IR``, ``RGB+IR``: each subset of ``dataset`` in its printed modality names, in the paper's order."""
    printed = dict(subset_info(dataset).header)
    return ["+".join(printed[m] for m in subset) for subset in subsets(dataset)]


def _title(base: str, entries: Sequence[dict]) -> str:
    devices = sorted({e.get("device", "?") for e in entries})
    synthetic = any(e.get("synthetic") for e in entries)
    return f"{base}{SYNTHETIC_NOTE if synthetic else ''}\ntrained on {', '.join(devices)}"


def plot_pr_curves(columns: Sequence[tuple[str, Path, dict]], dataset: str, stem: Path) -> list[Path]:
    """One panel per subset: each column's class-mean precision over recall, its mAP50 in the legend."""
    plt = _pyplot()
    keys = [subset_key(s) for s in subsets(dataset)]
    names = subset_names(dataset)
    figure, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.8), squeeze=False)
    for ax, key, name in zip(axes[0], keys, names, strict=True):
        empty = []  # columns without a curve at this subset: said on the panel, never a silent blank
        for column, run_dir, entry in columns:
            path = run_dir / "eval" / key / "pr_curve.json"
            if not path.is_file():
                empty.append(f"{column}: not evaluated")
                continue
            curve = json.loads(path.read_text(encoding="utf-8"))
            if not curve["precision"]:
                empty.append(f"{column}: no detections (mAP50 {entry['subsets'][key]['map50']:.3f})")
                continue
            mean = np.mean(np.asarray(list(curve["precision"].values()), dtype=float), axis=0)
            label = f"{column} (mAP50 {entry['subsets'][key]['map50']:.3f})"
            ax.plot(curve["recall"], mean, label=label)
        ax.set(title=name, xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        if empty:
            ax.text(0.5, 0.55, "no curve:\n" + "\n".join(empty), transform=ax.transAxes, ha="center", va="center",
                    fontsize=7, color="dimgrey")  # fmt: skip
        if ax.get_lines():
            ax.legend(fontsize=7, loc="lower left")
    figure.suptitle(_title("Precision-recall at IoU 0.5 (Fig. 7)", [c[2] for c in columns]), fontsize=9)
    figure.tight_layout()
    written = _save(figure, stem)
    plt.close(figure)
    return written


def _image(path: str, modality: str) -> np.ndarray:
    import cv2

    from mwam_harness.datasets.dronevehicle.layout import ir_path

    source = str(ir_path(path)) if modality == "ir" else path
    image = cv2.imread(source, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {source} for the detection panel")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def plot_detections(
    columns: Sequence[tuple[str, Path, dict]], dataset: str, stem: Path, class_names: Sequence[str], images: int = 2
) -> list[Path]:
    """Rows: ``images`` test images x the subsets (the image shown is the modality the model saw: RGB, IR, and RGB
    for RGB+IR); columns: the table's columns. Detections with confidence >= 0.25 in class colours, targets dashed
    white."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    keys = [subset_key(s) for s in subsets(dataset)]
    names = subset_names(dataset)
    kept = {
        (column, key): json.loads((run_dir / "eval" / key / "detections.json").read_text(encoding="utf-8"))
        for column, run_dir, _ in columns
        for key in keys
        if (run_dir / "eval" / key / "detections.json").is_file()
    }
    available = min((len(v) for v in kept.values()), default=0)
    images = min(images, available)
    if images == 0:
        return []
    rows = [(i, key, name) for i in range(images) for key, name in zip(keys, names, strict=True)]
    figure, axes = plt.subplots(len(rows), len(columns), figsize=(3.6 * len(columns), 2.9 * len(rows)), squeeze=False)
    for r, (i, key, name) in enumerate(rows):
        for c, (column, _, _) in enumerate(columns):
            ax = axes[r][c]
            ax.axis("off")
            record = kept.get((column, key))
            if record is None:
                continue
            item = record[i]
            shown = "ir" if key == "ir" else "rgb"
            ax.imshow(_image(item["im_file"], shown))
            for x1, y1, x2, y2 in item["gt_boxes"]:
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", lw=0.8, ls="--"))
            for (x1, y1, x2, y2), score, label in zip(item["boxes"], item["scores"], item["labels"], strict=True):
                if score < DRAW_CONFIDENCE:
                    continue
                colour = CLASS_COLOURS[label % len(CLASS_COLOURS)]
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.2))
                ax.text(x1, y1, f"{class_names[label]} {score:.2f}", color=colour, fontsize=5, va="bottom")
            ax.set_title(f"{column} | {name} | {Path(item['im_file']).name}", fontsize=7)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=CLASS_COLOURS[k % len(CLASS_COLOURS)], lw=2, label=n) for k, n in
               enumerate(class_names)]  # fmt: skip
    handles.append(Line2D([], [], color="grey", lw=1, ls="--", label="ground truth"))
    title = f"predictions (confidence >= {DRAW_CONFIDENCE}) by class; ground truth dashed"
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False, title=title,
                  title_fontsize=7)  # fmt: skip
    figure.suptitle(_title("Detections per subset (Fig. 6)", [c[2] for c in columns]), fontsize=9)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    written = _save(figure, stem)
    plt.close(figure)
    return written


def table12_figures(
    requested: Sequence[tuple[RunConfig, Runtime]], registry: Registry, output_dir: Path, stem: str
) -> list[Path]:
    """Fig. 7 and Fig. 6 of the finished runs of Table 12, beside the table."""
    from mwam_harness.datasets.dronevehicle import CLASS_NAMES

    columns = _columns(requested, registry)
    if not columns:
        return []
    dataset = requested[0][0].data.dataset
    written = plot_pr_curves(columns, dataset, output_dir / f"{stem}_pr_curves")
    written += plot_detections(columns, dataset, output_dir / f"{stem}_detections", CLASS_NAMES)
    return written
