"""NYU-Depth V2 runs (ESANet-MD, MMANet-seg) applied to a user's RGB images and depth maps.

**Inputs.** ``--input`` is a folder (not searched recursively) or one file. An input ``<name>`` is its RGB image
``<name>.png`` / ``.jpg`` / ``.jpeg`` (8-bit colour) and its depth map ``<name>_depth.png`` beside it, in the
prepared layout's own format: a uint16 single-channel PNG in millimetres (``datasets/nyuv2/layout.py``). A depth map
without an RGB image is a depth-only input, an RGB image without a depth map an RGB-only one (an absent file is a
missing modality, :func:`~reproduce.predict.base.choose_subset`). One file names the input ``<name>``: the RGB image
or the depth map given and the other file of ``<name>`` beside it, when there (``--subset`` picks one). The
predictor's own outputs (``*_labels.png``, ``*_overlay.png``) in a folder are skipped. Only the files of the subset
used are read; every input is read and checked before the model is loaded.

**Preprocessing** is the loader's evaluation path (``datasets/nyuv2/loader.py``, ``transforms.py``), with its
functions and the run's ``data.options`` over the loader's defaults: ``read_rgb`` / ``read_depth``, ``rescale`` to
the run's ``height`` x ``width`` (RGB bilinear, depth nearest), ``normalise_rgb`` / ``normalise_depth`` (the run's
``depth_mean``, ``depth_std``, ``invalid_depth_zero``). An absent modality is fed as zeros under a mask that marks
it absent (the hosts zero its features; the prediction does not depend on it). One image at a time, float32.

**Outputs** per input, at the input's original resolution: the logits are upsampled bilinearly to it
(``align_corners=False``, as evaluation compares them with the original-size label) before the argmax;
``<name>_labels.png`` is a uint8 single-channel PNG in the data set's label numbering (``labels_40``): the host's
channel k is class k + 1, so values 1-40 (``CLASS_NAMES``; 0 = void is never predicted); ``<name>_overlay.png`` is
the RGB image (a depth-only input: its depth min-max normalised over the non-zero pixels, as grey) blended half and
half with :data:`PALETTE`, the fixed colours of the labels.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reproduce.predict.base import (
    Prediction,
    PredictionError,
    Predictor,
    choose_subset,
    present_mask,
    register_predictor,
)
from reproduce.predict.trained import TrainedRun

RGB_SUFFIXES = (".png", ".jpg", ".jpeg")
DEPTH_SUFFIX = "_depth"
OUTPUT_SUFFIXES = ("_labels", "_overlay")
#: The weight of the class colour in the overlay.
OVERLAY_ALPHA = 0.5
#: The loader options the evaluation path reads (the rest, e.g. ``hsv`` and ``scale``, are training-only).
EVAL_OPTIONS = ("height", "width", "depth_mean", "depth_std", "invalid_depth_zero")


def label_palette(count: int = 41) -> np.ndarray:
    """(count, 3) uint8 RGB colours of labels 0..count-1 (PASCAL VOC's bit-interleaved colour map: 0 = void is
    black, every label a distinct colour)."""
    palette = np.zeros((count, 3), dtype=np.uint8)
    for label in range(count):
        value, colour = label, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[label] = colour
    return palette


#: The overlay colour of each label value 0-40 (indexed by label, not by the host's channel).
PALETTE = label_palette()


@dataclass
class Nyuv2Input:
    """One input: its name and the files found for it (``{"rgb": path, "depth": path}``, absent ones left out)."""

    name: str
    files: dict[str, Path] = field(default_factory=dict)


def _kind(path: Path) -> tuple[str, str] | None:
    """``(modality, name)`` of an input file, None for a file that is not one (or is one of our outputs)."""
    suffix, stem = path.suffix.lower(), path.stem
    if suffix == ".png" and stem.endswith(DEPTH_SUFFIX) and len(stem) > len(DEPTH_SUFFIX):
        return "depth", stem[: -len(DEPTH_SUFFIX)]
    if suffix in RGB_SUFFIXES and not stem.endswith(OUTPUT_SUFFIXES):
        return "rgb", stem
    return None


def _rgb_beside(folder: Path, name: str) -> Path | None:
    """The one RGB image of ``name`` in ``folder`` (None when there is none; PredictionError when several)."""
    found = sorted(p for p in folder.iterdir() if p.is_file() and _kind(p) == ("rgb", name))
    if len(found) > 1:
        raise PredictionError(f"{name}: several RGB images ({', '.join(p.name for p in found)}); keep one")
    return found[0] if found else None


def find_inputs(path: Path) -> list[Nyuv2Input]:
    """The inputs of ``--input`` (a folder or one file; module docstring), in name order."""
    if path.is_dir():
        inputs: dict[str, Nyuv2Input] = {}
        for file in sorted(p for p in path.iterdir() if p.is_file()):
            kind = _kind(file)
            if kind is not None:
                modality, name = kind
                item = inputs.setdefault(name, Nyuv2Input(name))
                if modality in item.files:
                    raise PredictionError(
                        f"{name}: two {modality} files ({item.files[modality].name}, {file.name}); keep one"
                    )
                item.files[modality] = file
        if not inputs:
            raise PredictionError(
                f"{path}: no input images (RGB <name>.png/.jpg/.jpeg, depth <name>_depth.png as uint16 mm)"
            )
        return [inputs[name] for name in sorted(inputs)]
    kind = _kind(path)
    if kind is None:
        raise PredictionError(
            f"{path}: neither an RGB image (<name>.png/.jpg/.jpeg) nor a depth map (<name>_depth.png), nor a folder"
        )
    modality, name = kind
    item = Nyuv2Input(name, {modality: path})
    if modality == "rgb":
        depth = path.with_name(f"{name}{DEPTH_SUFFIX}.png")
        if depth.is_file():
            item.files["depth"] = depth
    elif (rgb := _rgb_beside(path.parent, name)) is not None:
        item.files["rgb"] = rgb
    return [item]


def eval_options(run: TrainedRun) -> dict[str, Any]:
    """The loader's evaluation options of ``run``: the loader's defaults, overridden by the run's ``data.options``."""
    from mwam_harness.datasets.nyuv2.loader import Nyuv2Dataset

    defaults = inspect.signature(Nyuv2Dataset.__init__).parameters
    options = {name: defaults[name].default for name in EVAL_OPTIONS}
    options.update({k: v for k, v in dict(run.config.data.options or {}).items() if k in EVAL_OPTIONS})
    return options


def read_input(item: Nyuv2Input, subset: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The stored images of ``subset`` (``read_rgb`` / ``read_depth``); PredictionError naming a bad file or sizes
    that differ."""
    from mwam_harness.datasets.nyuv2.loader import Nyuv2Error, read_depth, read_rgb

    readers = {"rgb": read_rgb, "depth": read_depth}
    try:
        images = {m: readers[m](item.files[m]) for m in subset}
    except Nyuv2Error as error:
        raise PredictionError(str(error)) from error
    sizes = {m: tuple(image.shape[:2]) for m, image in images.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{m} {h} x {w} ({item.files[m].name})" for m, (h, w) in sizes.items())
        raise PredictionError(f"{item.name}: the RGB image and the depth map differ in size: {shown}")
    return images


def network_inputs(images: dict[str, np.ndarray], options: dict[str, Any]) -> dict[str, Any]:
    """``{"rgb": (1, 3, h, w), "depth": (1, 1, h, w)}`` float32 tensors as the loader's evaluation path makes them
    (``rescale`` then the normalisations); an absent modality is zeros."""
    import torch

    from mwam_harness.datasets.nyuv2.transforms import normalise_depth, normalise_rgb, rescale

    height, width = int(options["height"]), int(options["width"])
    size = next(iter(images.values())).shape[:2]
    rgb = images.get("rgb", np.zeros((*size, 3), dtype=np.uint8))
    depth = images.get("depth", np.zeros(size, dtype=np.uint16))
    rgb, depth, _ = rescale(rgb, depth, None, height, width)
    arrays = {
        "rgb": normalise_rgb(rgb),
        "depth": normalise_depth(depth, options["depth_mean"], options["depth_std"], options["invalid_depth_zero"]),
    }
    return {
        m: torch.from_numpy(a)[None] if m in images else torch.zeros((1, *a.shape), dtype=torch.float32)
        for m, a in arrays.items()
    }


def labels_from_logits(logits: Any, size: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 labels 1-40 of (1, 40, h, w) ``logits``: bilinear upsampling to ``size`` (evaluation's), the
    argmax over the channels, + 1 (the host's channel k is label k + 1; 0 = void)."""
    import torch.nn.functional as F

    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)
    return (logits[0].argmax(dim=0) + 1).to("cpu").numpy().astype(np.uint8)


def depth_grey(depth: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 grey image of a depth map: min-max normalised over its non-zero pixels (0 stays black)."""
    valid = depth > 0
    grey = np.zeros(depth.shape, dtype=np.float32)
    if valid.any():
        low, high = float(depth[valid].min()), float(depth[valid].max())
        grey[valid] = 255.0 if high == low else (depth[valid].astype(np.float32) - low) / (high - low) * 255.0
    return np.repeat(np.round(grey).astype(np.uint8)[..., None], 3, axis=2)


def overlay(base: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB: ``base`` blended with the labels' :data:`PALETTE` colours (weight ``OVERLAY_ALPHA``)."""
    blended = (1.0 - OVERLAY_ALPHA) * base.astype(np.float32) + OVERLAY_ALPHA * PALETTE[labels].astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


@register_predictor("nyuv2")
class Nyuv2Predictor(Predictor):
    """Per-pixel classes of RGB images and depth maps (module docstring)."""

    input_help = (
        "an RGB image <name>.png/.jpg (its depth <name>_depth.png, uint16 mm, beside it), a depth map "
        "<name>_depth.png, or a folder of them"
    )

    def predict(
        self, run: TrainedRun, inputs: Path, output: Path, subset: tuple[str, ...] | None, device: Any
    ) -> list[Prediction]:
        """Check every input, load the run's host, write ``<name>_labels.png`` and ``<name>_overlay.png``."""
        import cv2
        import torch

        from mwam_harness.datasets.nyuv2 import CLASS_NAMES
        from reproduce.predict.trained import load_host

        modalities = tuple(run.config.modalities)
        items = find_inputs(Path(inputs))
        chosen = [choose_subset(modalities, {m: m in i.files for m in modalities}, subset, i.name) for i in items]
        for item, used in zip(items, chosen, strict=True):
            read_input(item, used)  # every input checked before the model is loaded
        options = eval_options(run)
        host, task = load_host(run, device)
        output.mkdir(parents=True, exist_ok=True)
        predictions = []
        for item, used in zip(items, chosen, strict=True):
            images = read_input(item, used)
            size = next(iter(images.values())).shape[:2]
            batch = {m: x.to(device) for m, x in network_inputs(images, options).items()}
            with torch.inference_mode():
                logits = task.predict(host, batch, present_mask(modalities, used).to(device)).logits
            labels = labels_from_logits(logits, size)
            base = images["rgb"] if "rgb" in images else depth_grey(images["depth"])
            files = [f"{item.name}_labels.png", f"{item.name}_overlay.png"]
            _write_png(output / files[0], labels)
            _write_png(output / files[1], cv2.cvtColor(overlay(base, labels), cv2.COLOR_RGB2BGR))
            present = sorted(int(v) for v in np.unique(labels))
            values = {"classes_present": present, "class_names": [CLASS_NAMES[v] for v in present]}
            predictions.append(Prediction(item.name, used, files, values))
        return predictions
