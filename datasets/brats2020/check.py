"""``check-data`` for BraTS2020, either layout: every problem with the subject or case and the file at fault.

A prepared root (what runs read): each split list present, non-empty, its lines naming cases whose ``vol`` and
``seg`` files exist, load, have the shapes (H, W, D, 4) and (H, W, D), finite intensities and labels in 0-3; no case
in two splits. A raw folder (what ``prepare`` reads): every subject's five NIfTI files present and readable, one
shape and one affine, no NaN, labels in {0, 1, 2, 4} -- the checks ``prepare`` makes, without writing anything.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from datasets.brats2020 import MODALITIES, SPLITS
from datasets.brats2020.layout import is_prepared, is_raw, label_path, raw_subjects, volume_path
from datasets.brats2020.preprocess import RAW_LABELS
from datasets.checking import gather_problems
from datasets.registry import Problem


def _prepared_case_problems(root: Path, case: str) -> list[Problem]:
    problems = []
    volume_file, label_file = volume_path(root, case), label_path(root, case)
    for path in (volume_file, label_file):
        if not path.is_file():
            problems.append(Problem(str(path), f"missing file of case {case}"))
    if problems:
        return problems
    try:
        volume, labels = np.load(volume_file, mmap_mode="r"), np.load(label_file, mmap_mode="r")
    except (OSError, ValueError) as error:
        return [Problem(str(volume_file), f"unreadable npy pair of case {case} ({error})")]
    if volume.ndim != 4 or volume.shape[3] != len(MODALITIES) or volume.shape[:3] != labels.shape:
        return [Problem(str(volume_file), f"shapes {volume.shape} / {labels.shape}, expected (H, W, D, 4) / (H, W, D)")]
    if not np.isfinite(volume).all():
        problems.append(Problem(str(volume_file), f"{int((~np.isfinite(volume)).sum())} non-finite voxels"))
    unexpected = sorted(set(np.unique(labels).tolist()) - {0, 1, 2, 3})
    if unexpected:
        problems.append(Problem(str(label_file), f"labels outside 0-3: {unexpected[:5]} (label 4 is remapped to 3)"))
    return problems


def _raw_subject_problems(source: Path, subject: str) -> list[Problem]:
    from datasets.brats2020.prepare import read_subject

    try:
        _, segmentation, _ = read_subject(source, subject)
    except ValueError as error:
        return [Problem(subject, str(error))]
    unexpected = sorted(set(np.unique(segmentation).tolist()) - set(RAW_LABELS))
    if unexpected:
        return [Problem(subject, f"labels outside {{0, 1, 2, 4}}: {unexpected[:5]}")]
    return []


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
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    cases: list[str] = []
    for split, file_name in SPLITS.items():
        path = root / file_name
        if not path.is_file():
            problems.append(
                Problem(str(path), f"missing split list ({split}); `python -m reproduce prepare` writes it")
            )
            continue
        names = [(n, line.strip()) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]
        names = [(n, name) for n, name in names if name]
        if not names:
            problems.append(Problem(str(path), f"empty split {split!r}"))
        for line, name in names:
            if name in seen:
                problems.append(Problem(str(path), f"case {name} is also in {seen[name]}", line))
                continue
            seen[name] = file_name
            cases.append(name)
    problems += gather_problems(
        cases, lambda case: _prepared_case_problems(root, case), workers, progress, "check BraTS2020"
    )
    return problems
