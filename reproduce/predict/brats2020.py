"""BraTS2020's predictor: a trained RFNet / mmFormer / GSS run on your own MRI cases, the label map written back
into each scan's own geometry.

**Input.** ``--input`` is one case folder or a folder of case folders (searched recursively): every file named
``<case>_<modality>.nii.gz`` or ``.nii`` with ``<modality>`` one of flair, t1ce, t1, t2 (BraTS2020's names, the
suffix matched case-insensitively) belongs to case ``<case>`` of its folder; other files (a ``_seg`` ground truth,
notes) are ignored. An absent modality file is a missing modality (the subset rule of ``base.py``). Every file of a
case must hold a 3-D volume of one shape and one affine (within 1e-3, as ``prepare`` checks).

**Preprocessing** -- the authors' (``datasets/brats2020/preprocess.py``, what ``prepare`` applied to the training
data): the subset's volumes stacked in the order flair, t1ce, t1, t2 as float32, cropped to the box of the non-zero
voxels widened to at least 128 voxels per axis (``crop_window``), z-scored per modality over the brain
(``normalize``); an absent modality enters the host as zeros and is masked (the host zeroes its features). With
all four files this is ``preprocess_subject`` step by step. The box and the brain are those of the files present.

**Prediction** -- the run's evaluation path: ``task.predict`` (sliding windows of the run's ``crop`` with 50 %
overlap, softmax averaged), then argmax over the 4 classes, as the task's metric reads it.

**Output** -- ``<output>/<case>_seg.nii.gz``: uint8 labels in BraTS's convention (class 0, 1, 2, 3 -> label 0, 1, 2,
4), the crop undone: the labels are placed at the crop box inside a zero volume of the input's shape (outside the
box: 0, background), written with the affine and header of the subset's first modality file (its data type set to
uint8). A file under ``--input`` is never overwritten.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mwam_harness.datasets.brats2020 import MODALITIES
from mwam_harness.datasets.brats2020.prepare import non_finite_message
from mwam_harness.datasets.brats2020.preprocess import MINIMUM_WINDOW, RAW_LABELS, crop_window, normalize
from mwam_harness.datasets.files import atomic_write
from reproduce.predict.base import (
    Prediction,
    PredictionError,
    Predictor,
    choose_subset,
    present_mask,
    register_predictor,
)
from reproduce.predict.trained import TrainedRun, load_host

#: A modality file of a case: ``<case>_<modality>.nii.gz`` or ``.nii``.
NIFTI = re.compile(r"^(?P<case>.+)_(?P<modality>flair|t1ce|t1|t2)\.nii(?:\.gz)?$", re.IGNORECASE)
#: The written label map: ``<case>_seg.nii.gz``.
OUTPUT_SUFFIX = "_seg.nii.gz"
#: Affines equal within this tolerance (``prepare``'s).
AFFINE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Case:
    """One case: its name (the files' common prefix), its folder and its modality files."""

    name: str
    folder: Path
    files: dict[str, Path]


def find_cases(inputs: Path, modalities: Sequence[str] = MODALITIES) -> list[Case]:
    """The cases under ``inputs`` (a case folder or a folder of them), sorted by folder and name; PredictionError
    when there is none, a modality has two files, or two folders hold cases of one name."""
    if not inputs.is_dir():
        raise PredictionError(
            f"{inputs}: give a case folder (<case>_flair.nii.gz, _t1ce, _t1, _t2) or a folder of case folders"
        )
    groups: dict[tuple[Path, str], dict[str, list[Path]]] = {}
    for path in sorted(inputs.rglob("*")):
        match = NIFTI.match(path.name)
        if match is None or path.name.startswith(".") or not path.is_file():
            continue
        modality = match["modality"].lower()
        if modality in modalities:
            groups.setdefault((path.parent, match["case"]), {}).setdefault(modality, []).append(path)
    if not groups:
        raise PredictionError(
            f"no NIfTI file of a case under {inputs} (expected <case>_{{{','.join(modalities)}}}.nii.gz or .nii, in "
            "one case folder or a folder of case folders)"
        )
    problems = [
        f"{folder}: {len(paths)} {modality} files of case {name} ({', '.join(p.name for p in paths)})"
        for (folder, name), files in sorted(groups.items())
        for modality, paths in files.items()
        if len(paths) > 1
    ]
    cases = [Case(name, folder, {m: files[m][0] for m in modalities if m in files})
             for (folder, name), files in sorted(groups.items())]  # fmt: skip
    repeated = [name for name, count in Counter(c.name for c in cases).items() if count > 1]
    problems += [f"case {name} is in several folders ({', '.join(str(c.folder) for c in cases if c.name == name)}): "
                 f"its outputs would collide" for name in repeated]  # fmt: skip
    if problems:
        raise PredictionError("; ".join(problems))
    return cases


def check_headers(case: Case, subset: Sequence[str]) -> tuple[tuple[int, ...], list[str]]:
    """``(shape, problems)`` of the subset's files of ``case`` (headers only): unreadable files, volumes that are
    not 3-D, shapes or affines that differ (naming the modalities)."""
    import nibabel as nib

    problems: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}
    affines: dict[str, np.ndarray] = {}
    for modality in subset:
        path = case.files[modality]
        try:
            image = nib.load(str(path))
        except (OSError, EOFError, zlib.error, nib.filebasedimages.ImageFileError, ValueError) as error:
            problems.append(f"{path}: unreadable NIfTI ({type(error).__name__}: {error})")
            continue
        if len(image.shape) != 3:
            problems.append(f"{path}: a 3-D volume expected, got shape {tuple(image.shape)}")
            continue
        shapes[modality], affines[modality] = tuple(int(s) for s in image.shape), image.affine
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{m} {s}" for m, s in shapes.items())
        problems.append(f"case {case.name} ({case.folder}): modalities of different shapes: {listed}")
    if affines:
        first = next(iter(affines))
        different = [m for m, a in affines.items() if not np.allclose(a, affines[first], atol=AFFINE_TOLERANCE)]
        if different:
            problems.append(f"case {case.name} ({case.folder}): the affines of {', '.join(different)} differ from "
                            f"{first}'s")  # fmt: skip
    return next(iter(shapes.values()), ()), problems


def prepare_case(case: Case, subset: Sequence[str]) -> tuple[np.ndarray, tuple[slice, slice, slice], Any]:
    """``(volume (len(subset), h, w, d) float32, crop box in the scan's voxels, reference image)``: the subset's
    volumes preprocessed as the authors' ``preprocess_subject`` does (``crop_window``, ``normalize``); the box is
    clamped to the scan (a widened window may reach past it, where slicing clamps)."""
    import nibabel as nib

    images = {m: nib.load(str(case.files[m])) for m in subset}
    stack = np.stack([np.asarray(np.asanyarray(images[m].dataobj)) for m in subset], axis=0).astype(np.float32)
    for k, modality in enumerate(subset):
        non_finite = non_finite_message(stack[k])
        if non_finite is not None:
            raise PredictionError(f"{case.files[modality]}: {non_finite}: non-finite intensities cannot be normalised")
    try:
        window = crop_window(stack, MINIMUM_WINDOW)
        box = tuple(slice(w.start, min(w.stop, size)) for w, size in zip(window, stack.shape[1:], strict=True))
        volume = normalize(stack[(slice(None), *box)].copy())
    except ValueError as error:
        raise PredictionError(f"case {case.name} ({case.folder}): {_rename(str(error), subset)}") from None
    return volume, box, images[subset[0]]  # type: ignore[return-value]


def _rename(message: str, subset: Sequence[str]) -> str:
    """``normalize`` names channel k ``MODALITIES[k]``; on a subset's stack channel k is ``subset[k]``."""
    for k, modality in enumerate(MODALITIES[: len(subset)]):
        if message.startswith(f"{modality} "):
            return subset[k] + message[len(modality) :]
    return message


def write_labels(path: Path, classes: np.ndarray, box: tuple[slice, ...], reference: Any) -> np.ndarray:
    """Write ``classes`` (the cropped class map, 0-3) at ``box`` of a zero volume shaped as ``reference`` as BraTS
    labels (class k -> ``RAW_LABELS[k]``: 3 -> 4), uint8, with ``reference``'s affine and header; returns the
    labels."""
    labels = np.zeros(reference.shape, dtype=np.uint8)
    labels[box] = np.asarray(RAW_LABELS, dtype=np.uint8)[classes]
    header = reference.header.copy()
    header.set_data_dtype(np.uint8)
    image = type(reference)(labels, reference.affine, header)
    data = gzip.compress(image.to_bytes(), compresslevel=6)
    atomic_write(path, lambda temporary: temporary.write_bytes(data))
    return labels


@register_predictor("brats2020")
class Brats2020Predictor(Predictor):
    """See the module docstring."""

    input_help = "a case folder (<case>_flair.nii.gz, _t1ce, _t1, _t2; .nii too) or a folder of case folders"

    def predict(
        self, run: TrainedRun, inputs: Path, output: Path, subset: tuple[str, ...] | None, device: Any
    ) -> list[Prediction]:
        """One ``<case>_seg.nii.gz`` and one :class:`Prediction` per case under ``inputs``."""
        import torch

        modalities = tuple(run.config.modalities)
        cases = find_cases(Path(inputs), modalities)
        chosen, problems = [], []
        for case in cases:
            try:
                used = choose_subset(modalities, {m: m in case.files for m in modalities}, subset, case.name)
            except PredictionError as error:
                problems.append(f"{error} (in {case.folder})")
                continue
            problems += check_headers(case, used)[1]
            target = output / f"{case.name}{OUTPUT_SUFFIX}"
            if target.exists() and target.resolve().is_relative_to(Path(inputs).resolve()):
                problems.append(f"{target} lies under --input (a ground truth?) and would be overwritten: choose "
                                "another --output")  # fmt: skip
            chosen.append((case, used))
        if problems:
            raise PredictionError("; ".join(problems))
        device = torch.device(device)
        host, task = load_host(run, device)
        if task.num_classes != len(RAW_LABELS):
            raise PredictionError(f"run {run.key} predicts {task.num_classes} classes, BraTS labels are 4")
        predictions = []
        for case, used in chosen:
            volume, box, reference = prepare_case(case, used)
            channels = {m: torch.from_numpy(volume[k])[None, None] for k, m in enumerate(used)}
            zeros = torch.zeros((1, 1, *volume.shape[1:]))
            inputs_ = {m: channels.get(m, zeros).to(device) for m in task.modalities}
            with torch.inference_mode():
                result = task.predict(host, inputs_, present_mask(task.modalities, used).to(device))
            classes = result.logits.argmax(dim=1)[0].cpu().numpy()
            if classes.shape != volume.shape[1:]:
                raise PredictionError(f"case {case.name}: the prediction is {classes.shape}, the volume "
                                      f"{volume.shape[1:]}")  # fmt: skip
            name = f"{case.name}{OUTPUT_SUFFIX}"
            labels = write_labels(output / name, classes, box, reference)
            counts = np.bincount(labels.ravel(), minlength=max(RAW_LABELS) + 1)
            predictions.append(
                Prediction(
                    name=case.name,
                    subset=used,
                    files=[name],
                    values={
                        "inputs": {m: str(case.files[m]) for m in used},
                        "shape": list(labels.shape),
                        "crop": [[b.start, b.stop] for b in box],
                        "label_voxels": {str(label): int(counts[label]) for label in RAW_LABELS},
                    },
                )
            )
        return predictions
