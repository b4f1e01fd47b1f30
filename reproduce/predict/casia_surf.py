"""CASIA-SURF predictor: the live (bona fide) probability of face images, RGB / Depth / IR, any subset of them.

``--input`` is one of:

- a **list file** in CASIA-SURF's own format: each non-empty line ``rgb depth ir [label]``, paths relative to the
  list file's folder (or absolute), label 1 = real, 0 = attack (optional: written beside the prediction). A path
  written as ``-`` is a missing modality; a path that is written but does not exist is an error (a typo must not
  silently turn into a missing modality). Inputs are named ``<list file>:<line>``.
- a **folder** of images ``<name>_rgb.<ext>``, ``<name>_depth.<ext>``, ``<name>_ir.<ext>`` (ext jpg, jpeg or png,
  any case); a name may lack any of them (a missing modality). Other files are ignored. Inputs are named ``<name>``.
- **one image** of such a triple (``face_rgb.jpg``): that triple, its other files looked up beside it.

Images are read as the loader's test split reads them (``datasets/casia_surf/loader.py``): ``read_image`` (BGR,
3 channels), the run's ``filter`` option, a resize to the run's ``crop`` (112 unless the run's ``data.options`` say
otherwise, e.g. 40 for the smoke preset) and ``to_tensor``'s ``(x - 127.5) / 128``. A modality outside an input's
subset is not read: the host gets zeros there and masks it (``present``).

Writes ``scores.csv``: ``name, subset, live_score`` (softmax probability of class 1), ``predicted`` (``real`` /
``attack``: the argmax, as the evaluation's accuracy) and ``listed_label`` (the list file's label, else empty).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reproduce.predict.base import Prediction, PredictionError, Predictor, choose_subset, register_predictor
from reproduce.predict.trained import TrainedRun, load_host

if TYPE_CHECKING:
    import torch

SCORES = "scores.csv"
MISSING = "-"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DATASET_MODALITIES = ("rgb", "depth", "ir")
NAMES = {1: "real", 0: "attack"}


@dataclass(frozen=True)
class SurfInput:
    """One input: its name, the files of the modalities it has, and its listed label (1 real, 0 attack) if any."""

    name: str
    paths: dict[str, Path]
    label: int | None = None


def read_inputs(path: Path) -> list[SurfInput]:
    """The inputs ``--input`` names: a folder of triples, one image of a triple, or a list file (module docstring)."""
    if path.is_dir():
        inputs = folder_inputs(path)
        if not inputs:
            raise PredictionError(
                f"{path}: no images named <name>_rgb / _depth / _ir with extension {', '.join(IMAGE_SUFFIXES)}"
            )
        return inputs
    if path.suffix.lower() in IMAGE_SUFFIXES:
        name, modality = split_image_name(path)
        if modality is None:
            raise PredictionError(
                f"{path}: an image input must be named <name>_rgb, <name>_depth or <name>_ir (one of a triple)"
            )
        return folder_inputs(path.parent, only=name)
    return list_inputs(path)


def split_image_name(path: Path) -> tuple[str, str | None]:
    """``face_rgb.jpg`` -> ("face", "rgb"); (stem, None) when the name ends in no modality."""
    name, _, suffix = path.stem.rpartition("_")
    modality = suffix.lower()
    return (name, modality) if name and modality in DATASET_MODALITIES else (path.stem, None)


def folder_inputs(folder: Path, only: str | None = None) -> list[SurfInput]:
    """The triples of ``folder`` (not its subfolders), sorted by name; ``only``: that name's triple alone."""
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        name, modality = split_image_name(path)
        if modality is None or (only is not None and name != only):
            continue
        paths = found.setdefault(name, {})
        if modality in paths:
            raise PredictionError(f"{name}: two {modality} images, {paths[modality].name} and {path.name}; keep one")
        paths[modality] = path
    return [SurfInput(name, paths) for name, paths in sorted(found.items())]


def list_inputs(path: Path) -> list[SurfInput]:
    """The lines of a CASIA-SURF list file ``rgb depth ir [label]`` (``-``: a missing modality)."""
    from mwam_harness.datasets.checking import ListFileError, read_list_text

    try:
        text = read_list_text(path)
    except ListFileError as error:
        raise PredictionError(str(error)) from None
    root = path.parent
    inputs = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}, line {number}"
        if len(fields) not in (3, 4):
            raise PredictionError(f"{where}: expected 'rgb depth ir [label]' ('-' for a missing image), got {line!r}")
        label = None
        if len(fields) == 4:
            if fields[3] not in ("0", "1"):
                raise PredictionError(f"{where}: unknown label {fields[3]!r} (1 = real, 0 = attack)")
            label = int(fields[3])
        paths = {}
        for modality, field in zip(DATASET_MODALITIES, fields[:3], strict=True):
            if field == MISSING:
                continue
            image = root / field
            if not image.is_file():
                raise PredictionError(f"{where}: {modality} image {image} not found (write '-' for a missing image)")
            paths[modality] = image
        inputs.append(SurfInput(f"{path.name}:{number}", paths, label))
    if not inputs:
        raise PredictionError(f"{path}: empty list (expected lines 'rgb depth ir [label]')")
    return inputs


def image_tensor(path: Path, side: int, frequency_filter: Any, name: str) -> torch.Tensor:
    """The loader's test-split tensor of one image: read, filtered (the run's option), resized, normalised."""
    import cv2

    from mwam_harness.datasets.casia_surf import loader

    try:
        image = loader.read_image(path)
    except loader.CasiaSurfError as error:
        raise PredictionError(f"{name}: {error}") from None
    if frequency_filter is not None:
        image = frequency_filter(image)
    return loader.to_tensor(cv2.resize(image, (side, side)))


@register_predictor("casia_surf")
class CasiaSurfPredictor(Predictor):
    """Live probability per input, in ``scores.csv``."""

    input_help = "a list file 'rgb depth ir [label]' ('-': missing), a folder of <name>_rgb/_depth/_ir images, or one"

    def predict(
        self, run: TrainedRun, inputs: Path, output: Path, subset: tuple[str, ...] | None, device: Any
    ) -> list[Prediction]:
        """Score every input with the subset it has (or ``subset``), batched by subset, and write ``scores.csv``."""
        import torch

        from mwam_harness.datasets.casia_surf.loader import CROP
        from mwam_harness.datasets.frequency_filter import FrequencyFilter
        from reproduce.predict.base import present_mask

        items = read_inputs(Path(inputs))
        modalities = tuple(run.config.modalities)
        chosen = [choose_subset(modalities, {m: m in i.paths for m in modalities}, subset, i.name) for i in items]
        options = dict(run.config.data.options or {})
        side = int(options.get("crop", CROP))
        frequency_filter = FrequencyFilter.from_option(options.get("filter"))
        host, task = load_host(run, device)
        device = next(host.parameters()).device
        batch_size = max(1, int(run.config.eval.batch_size))
        groups: dict[tuple[str, ...], list[int]] = {}
        for index, used in enumerate(chosen):
            groups.setdefault(used, []).append(index)
        scores: dict[int, tuple[float, int]] = {}
        with torch.no_grad():
            for used, indices in groups.items():
                for start in range(0, len(indices), batch_size):
                    chunk = indices[start : start + batch_size]
                    batch = {
                        m: torch.stack(
                            [
                                image_tensor(items[i].paths[m], side, frequency_filter, items[i].name)
                                if m in used
                                else torch.zeros(3, side, side)
                                for i in chunk
                            ]
                        ).to(device)
                        for m in modalities
                    }
                    logits = task.predict(host, batch, present_mask(modalities, used, len(chunk)).to(device)).logits
                    live = torch.softmax(logits.float(), dim=1)[:, 1].cpu().tolist()
                    predicted = logits.argmax(dim=1).cpu().tolist()
                    scores.update({i: (p, int(y)) for i, p, y in zip(chunk, live, predicted, strict=True)})
        predictions = []
        output.mkdir(parents=True, exist_ok=True)
        with (output / SCORES).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["name", "subset", "live_score", "predicted", "listed_label"])
            for index, item in enumerate(items):
                live, label = scores[index]
                listed = NAMES[item.label] if item.label is not None else ""
                writer.writerow([item.name, "+".join(chosen[index]), f"{live:.6f}", NAMES[label], listed])
                values: dict[str, Any] = {"live_score": live, "label": NAMES[label]}
                if item.label is not None:
                    values["listed_label"] = listed
                predictions.append(Prediction(item.name, chosen[index], [SCORES], values))
        return predictions
