"""``check-data`` for BraTS2020, either layout: every problem with the subject or case and the file at fault.

A prepared root (what runs read): each split list present, UTF-8, non-empty, no case listed twice and no case in two
splits; every listed case's ``vol`` and ``seg`` files present, non-empty and loadable, of shapes (H, W, D, 4) and
(H, W, D) (and the shape ``fingerprint.json`` recorded when ``prepare`` wrote it), volumes free of NaN and +-Inf,
labels integers in 0-3; its JSON files (``prepare.json``, ``fingerprint.json``, ``synthetic.json``) readable. A
raw folder (what ``prepare`` reads): every subject's five NIfTI files present, non-empty and readable, 3-D, of one
shape and one affine, free of NaN and +-Inf, labels in {0, 1, 2, 4} -- the checks ``prepare`` makes, without
writing anything. Every problem is reported, not only the first. What the loader refuses (``loader.py``), this
reports first.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from mwam_harness.datasets.brats2020 import MODALITIES, SPLITS
from mwam_harness.datasets.brats2020.layout import (
    LIST_HINT,
    is_prepared,
    is_raw,
    label_path,
    parse_split,
    raw_subjects,
    volume_path,
)
from mwam_harness.datasets.brats2020.prepare import non_finite_message
from mwam_harness.datasets.checking import ListFileError, file_problem, gather_problems, json_problem
from mwam_harness.datasets.registry import SYNTHETIC_MARKER, Problem

#: JSON files of a prepared root and how each is written again.
JSON_FILES = {
    "prepare.json": "delete it: `python -m reproduce prepare brats2020 RAW ROOT` then prepares every subject again",
    "fingerprint.json": "`python -m reproduce prepare brats2020 RAW ROOT` writes it again",
    SYNTHETIC_MARKER: "a synthetic set: delete the folder and it is generated again",
}


def load_npy(path: Path, what: str) -> tuple[np.ndarray | None, str | None]:
    """``(memory-mapped array, None)`` or ``(None, what is wrong)`` for one ``.npy`` file: missing, empty (0 bytes),
    truncated or not an ``.npy`` file."""
    problem = file_problem(path, what)
    if problem is not None:
        return None, problem
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False), None
    except (OSError, ValueError, EOFError) as error:
        return None, f"unreadable .npy {what} ({type(error).__name__}: {error}); prepare the case again"


def volume_problems(volume: np.ndarray, labels: np.ndarray, shape: Any = None) -> tuple[list[str], list[str]]:
    """``(problems of the volume, problems of the labels)`` of one prepared case's arrays: shapes, the recorded
    ``shape`` (H, W, D) when known, non-finite intensities, labels outside 0-3 or not integers."""
    on_volume: list[str] = []
    on_labels: list[str] = []
    if volume.ndim != 4 or volume.shape[3] != len(MODALITIES):
        on_volume.append(f"shape {volume.shape}, expected (H, W, D, {len(MODALITIES)}) (one channel per modality)")
    if labels.ndim != 3:
        on_labels.append(f"shape {labels.shape}, expected (H, W, D)")
    elif volume.ndim == 4 and volume.shape[:3] != labels.shape:
        on_labels.append(f"shape {labels.shape} differs from the volume's {volume.shape[:3]}")
    if shape is not None and volume.ndim == 4 and tuple(volume.shape[:3]) != tuple(shape):
        on_volume.append(f"shape {volume.shape[:3]} differs from the {tuple(shape)} fingerprint.json records")
    if not np.issubdtype(volume.dtype, np.number):
        on_volume.append(f"dtype {volume.dtype}, expected float32 intensities")
    else:
        non_finite = non_finite_message(volume)
        if non_finite is not None:
            on_volume.append(f"{non_finite}: non-finite intensities (prepare the case again)")
    if not np.issubdtype(labels.dtype, np.number):
        on_labels.append(f"dtype {labels.dtype}, expected uint8 labels 0-3")
        return on_volume, on_labels
    values = np.unique(labels)
    fractional = values[~(values == np.round(values))] if np.issubdtype(labels.dtype, np.floating) else values[:0]
    if fractional.size:
        on_labels.append(f"labels that are not integers: {fractional[:5].tolist()}")
    else:
        unexpected = sorted(set(values.tolist()) - {0, 1, 2, 3})
        if unexpected:
            on_labels.append(f"labels outside 0-3: {unexpected[:5]} (label 4 is remapped to 3)")
    return on_volume, on_labels


def _recorded_shapes(root: Path) -> dict[str, Any]:
    """Per case, the prepared shape ``fingerprint.json`` records ({} when there is none or it does not parse)."""
    try:
        cases = json.loads((root / "fingerprint.json").read_text(encoding="utf-8")).get("cases", {})
        return {case: entry["prepared_shape"] for case, entry in cases.items() if "prepared_shape" in entry}
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return {}


def _prepared_case_problems(root: Path, shapes: dict[str, Any], case: str) -> list[Problem]:
    volume_file, label_file = volume_path(root, case), label_path(root, case)
    volume, volume_error = load_npy(volume_file, f"file of case {case}")
    labels, label_error = load_npy(label_file, f"file of case {case}")
    problems = [Problem(str(path), error) for path, error in ((volume_file, volume_error), (label_file, label_error))
                if error is not None]  # fmt: skip
    if volume is None or labels is None:
        return problems
    on_volume, on_labels = volume_problems(volume, labels, shapes.get(case))
    return [*(Problem(str(volume_file), p) for p in on_volume), *(Problem(str(label_file), p) for p in on_labels)]


def _raw_subject_problems(source: Path, subject: str) -> list[Problem]:
    from mwam_harness.datasets.brats2020.prepare import inspect_subject

    _, _, problems = inspect_subject(source, subject)
    return [Problem(where, message) for where, message in problems]


def split_problems(root: Path) -> tuple[list[Problem], list[str]]:
    """The problems of a prepared root's split lists (missing, not UTF-8, empty, a case listed twice or in two
    splits) and the cases they list, each once."""
    problems: list[Problem] = []
    seen: dict[str, tuple[str, int]] = {}
    cases: list[str] = []
    for split, file_name in SPLITS.items():
        path = root / file_name
        try:
            entries, bad = parse_split(root, split)
        except FileNotFoundError:
            problems.append(Problem(str(path), f"missing split list ({split}); {LIST_HINT}"))
            continue
        except ListFileError as error:  # not UTF-8, or unreadable
            problems.append(Problem(str(path), str(error).removeprefix(f"{path}: "), error.line))
            continue
        problems += [Problem(str(path), message, line) for line, message in bad]
        if not entries:
            problems.append(Problem(str(path), f"empty split {split!r}"))
        for line, name in entries:
            if name in seen:
                other, first = seen[name]
                message = f"case {name} is also in {other} (line {first}): a case belongs to one split only"
                problems.append(Problem(str(path), message, line))
                continue
            seen[name] = (file_name, line)
            cases.append(name)
    return problems, cases


def check_data(root: str | Path, progress: bool = True, workers: int = 4) -> list[Problem]:
    """Problems of a prepared BraTS2020 root or a raw folder (see the module docstring)."""

    root = Path(root)
    if not root.is_dir():
        return [Problem(str(root), "not a directory")]
    if is_raw(root) and not is_prepared(root):
        problems_of = functools.partial(_raw_subject_problems, root)
        return gather_problems(raw_subjects(root), problems_of, workers, progress, "check raw BraTS2020")
    if not is_prepared(root):
        return [Problem(str(root), "neither a prepared root (vol/, seg/, split lists) nor a raw BraTS2020 folder")]
    problems = [Problem(str(root / name), problem) for name, rebuild in JSON_FILES.items()
                if (problem := json_problem(root / name, rebuild)) is not None]  # fmt: skip
    list_problems, cases = split_problems(root)
    problems += list_problems
    shapes = _recorded_shapes(root)
    problems += gather_problems(
        cases, lambda case: _prepared_case_problems(root, shapes, case), workers, progress, "check BraTS2020"
    )
    return problems
