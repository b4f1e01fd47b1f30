"""Fig. 1 (learning curves on frequency-filtered data) and Fig. 5 (what the filters do to an image) of the paper.

- :func:`figure1` -- Fig. 1 (Sec. 3.1): three panels per epoch, (a) the training loss (``entry["loss"]``), (b) the
  validation loss (``entry["val_loss"]``, the ``validation_loss`` plug-in) and (c) the validation accuracy of the
  full modality set (``entry["val"][<full subset key>]["acc"]``, e.g. ``"rgb+depth+ir"``; the engine's per-epoch
  validation), one line per label (``raw``, ``low-15``, ``high-30`` ...), from the runs' histories.
- :func:`figure5` -- Fig. 5 (Appendix A.5): a grid with one row per modality and the columns: the raw image, its
  log-magnitude spectrum (``log(1 + |FFT|)``, DC at the centre; the paper's second column, ``spectrum=False`` drops
  it) and the image after each filter (``datasets.frequency_filter.FrequencyFilter``, as the loaders apply it).

Both draw with matplotlib's Agg back end in the house style of ``reproduce/plots.py`` and write one PNG atomically;
a figure of synthetic data (``synthetic=True``) carries a "SYNTHETIC" mark and the house note in its title.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reproduce.io import atomic_write
from reproduce.plots import SYNTHETIC_NOTE, _pyplot

#: Fig. 1's panels: (title, what it reads, y label).
PANELS = (
    ("(a) training loss", "loss", "loss"),
    ("(b) validation loss", "val_loss", "loss"),
    ("(c) validation accuracy", "acc", "accuracy (%)"),
)
RAW_LABEL = "raw"


def _png(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix.lower() == ".png" else path.with_name(path.name + ".png")


def _save_png(figure: Any, path: Path) -> Path:
    return atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=150, bbox_inches="tight", format="png"))


def _mark_synthetic(figure: Any) -> None:
    figure.text(0.5, 0.5, "SYNTHETIC", fontsize=40, color="grey", alpha=0.25, ha="center", va="center",
                rotation=20, transform=figure.transFigure)  # fmt: skip


def _full_key(val: Mapping[str, Any]) -> str:
    """The full modality set's key of an entry's validation: the key with the most members (the full set is last
    in the engine's order, and it is the only one with every modality)."""
    return max(val, key=lambda key: (len(key.split("+")), list(val).index(key)))


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} must be a number, got {value!r}")
    return float(value)


def curve_values(history: Sequence[Mapping[str, Any]], label: str, subset: str | None = None,
                 metric: str = "acc") -> dict[str, list[tuple[int, float]]]:  # fmt: skip
    """The three curves of one run: ``{"loss" | "val_loss" | "acc": [(epoch, value)]}`` from its history entries.
    Skipped epochs (no training) are left out of the training loss; an entry without ``val_loss`` / ``val`` is left
    out of that curve. ValueError when the history is empty, an entry lacks ``loss`` or a value is not a number."""
    if isinstance(history, str | bytes) or not isinstance(history, Sequence) or not history:
        raise ValueError(f"{label}: a history is a non-empty list of epoch entries, got {history!r}")
    curves: dict[str, list[tuple[int, float]]] = {"loss": [], "val_loss": [], "acc": []}
    for position, entry in enumerate(history):
        if not isinstance(entry, Mapping) or "loss" not in entry:
            raise ValueError(f"{label}: epoch entry {position} must be a mapping with 'loss', got {entry!r}")
        epoch = int(entry.get("epoch", position))
        where = f"{label}, epoch {epoch}"
        if not entry.get("skipped"):
            curves["loss"].append((epoch, _number(entry["loss"], f"{where}: loss")))
        if "val_loss" in entry:
            curves["val_loss"].append((epoch, _number(entry["val_loss"], f"{where}: val_loss")))
        val = entry.get("val")
        if val:
            if not isinstance(val, Mapping):
                raise ValueError(f"{where}: 'val' must map subsets to metrics, got {val!r}")
            key = subset or _full_key(val)
            if key not in val or metric not in val[key]:
                raise ValueError(f"{where}: no val[{key!r}][{metric!r}]; val has {sorted(val)}")
            curves["acc"].append((epoch, _number(val[key][metric], f"{where}: val[{key!r}][{metric!r}]")))
    return curves


def figure1(
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    synthetic: bool = False,
    title: str = "Learning on frequency-filtered data",
    subset: str | None = None,
    metric: str = "acc",
) -> Path:
    """Fig. 1: training loss, validation loss and validation accuracy per epoch, one line per label of
    ``histories`` (``{label: run history}``, e.g. ``{"raw": ..., "low-15": ..., "high-30": ...}``).

    ``subset``: the validation subset of panel (c) (default: the full set); ``metric``: its metric (``acc``).
    Writes a PNG at ``path`` (``.png`` appended when missing) and returns its path. ValueError for no histories,
    an empty history, a malformed entry, or no value at all for a panel.
    """
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("figure1 needs at least one labelled history: {label: [epoch entries]}")
    curves = {str(label): curve_values(history, str(label), subset, metric) for label, history in histories.items()}
    for _, what, _ in PANELS:
        if not any(c[what] for c in curves.values()):
            source = {"val_loss": "the validation_loss plug-in", "acc": "the engine's per-epoch validation"}
            raise ValueError(f"figure1: no run has {what!r} values ({source.get(what, 'the history')} records them)")
    plt = _pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(13.0, 3.6))
    ordered = sorted(curves, key=lambda label: (label != RAW_LABEL, list(curves).index(label)))
    for ax, (panel, what, ylabel) in zip(axes, PANELS, strict=True):
        for label in ordered:
            xy = sorted(curves[label][what])
            if not xy:
                continue
            style = {"color": "black", "linewidth": 1.8} if label == RAW_LABEL else {"linewidth": 1.3}
            ax.plot([x for x, _ in xy], [y for _, y in xy], label=label, **style)
        ax.set_title(panel if what != "acc" else f"{panel} ({subset or 'full set'})", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel if what != "acc" or metric == "acc" else metric)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8)
    figure.suptitle(("SYNTHETIC: " if synthetic else "") + title + (SYNTHETIC_NOTE if synthetic else ""), y=1.03)
    if synthetic:
        _mark_synthetic(figure)
    try:
        return _save_png(figure, _png(path))
    finally:
        plt.close(figure)


def _display(image: np.ndarray) -> np.ndarray:
    """A uint8 image for ``imshow``: grey (H x W, or three equal channels) as H x W, BGR (OpenCV's, as the loaders
    read) as RGB."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        if np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 0], image[:, :, 2]):
            return image[:, :, 0]
        return image[:, :, ::-1]
    return image


def figure5(
    images: Mapping[str, np.ndarray],
    filters: Sequence[Any],
    path: str | Path,
    *,
    synthetic: bool = False,
    spectrum: bool = True,
    title: str = "Frequency filters",
) -> Path:
    """Fig. 5: one row per modality of ``images`` (``{modality: H x W x C uint8}``, BGR as the loaders read them),
    columns: the raw image, its spectrum (``spectrum=True``) and the image after each of ``filters``
    (``FrequencyFilter`` or its fields as a mapping). Writes a PNG at ``path`` and returns its path; ValueError for
    no images, no filters, a bad filter or an image that is not uint8 H x W (x C)."""
    from mwam_harness.datasets.frequency_filter import FrequencyFilter, log_spectrum

    if not isinstance(images, Mapping) or not images:
        raise ValueError("figure5 needs at least one image: {modality: H x W x C uint8 array}")
    for modality, image in images.items():
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3) or not image.size:
            shape = getattr(image, "shape", None)
            dtype = getattr(image, "dtype", type(image).__name__)
            raise ValueError(f"figure5: images[{modality!r}] must be a uint8 H x W (x C) array, got {dtype} {shape}")
    if isinstance(filters, str | Mapping) or not isinstance(filters, Sequence) or not filters:
        raise ValueError("figure5 needs a non-empty list of filters, e.g. [{kind: high, size: 15}, ...]")
    chosen = [FrequencyFilter.from_option(f) for f in filters]
    if any(f is None for f in chosen):
        raise ValueError("figure5: a filter may not be None")
    columns = ["raw", *(["spectrum"] if spectrum else []), *(f.label for f in chosen)]
    plt = _pyplot()
    rows = len(images)
    figure, axes = plt.subplots(rows, len(columns), figsize=(1.9 * len(columns), 1.9 * rows + 0.5), squeeze=False)
    for r, (modality, image) in enumerate(images.items()):
        panels = [_display(image)]
        if spectrum:
            panels.append(log_spectrum(image))
        panels += [_display(f(image)) for f in chosen]
        for c, panel in enumerate(panels):
            ax = axes[r][c]
            grey = panel.ndim == 2
            is_spectrum = spectrum and c == 1
            ax.imshow(panel, cmap="gray" if grey else None, vmin=None if is_spectrum else 0,
                      vmax=None if is_spectrum else 255, interpolation="nearest")  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(modality, fontsize=9)
    figure.suptitle(("SYNTHETIC: " if synthetic else "") + title + (SYNTHETIC_NOTE if synthetic else ""),
                    fontsize=10)  # fmt: skip
    if synthetic:
        _mark_synthetic(figure)
    try:
        return _save_png(figure, _png(path))
    finally:
        plt.close(figure)


__all__ = ["PANELS", "RAW_LABEL", "curve_values", "figure1", "figure5"]
