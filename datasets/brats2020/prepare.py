"""``python -m reproduce prepare brats2020 SOURCE OUT``: the layout the BraTS hosts read, from either download.

- **Raw** ``SOURCE`` (``BraTS20_Training_XXX/..._{flair,t1ce,t1,t2,seg}.nii.gz``): every subject is read with
  nibabel, checked (:func:`read_subject`: every file present and readable, one shape and one affine for all five,
  no NaN, labels in {0, 1, 2, 4}) and preprocessed as the authors do (``preprocess.py``), then written as
  ``OUT/vol/<case>_vol.npy`` / ``OUT/seg/<case>_seg.npy`` -- each file atomically (a temporary name, then a rename),
  so an interrupted or failed run leaves no half-written file. Subjects already prepared from the same source
  files (same sizes and modification times, ``OUT/prepare.json``) are skipped: running it again is cheap.
- **Preprocessed** ``SOURCE`` (the authors' ``vol/`` + ``seg/`` npy files, with their ``train.txt`` / ``test.txt``):
  the files are linked, not copied, and checked.

Splits: a seeded 219 / 50 / 100 split of the subjects (Sec. 5.1; other totals are split in the same proportions,
or by ``split_sizes``), or the authors' lists (``split_files``: their train list, their test list and optionally a
validation list; without one, ``val`` is drawn, seeded, from their train list). ``OUT/fingerprint.json`` records
per subject the raw shape, voxel spacing, crop, prepared shape, intensity statistics over the brain and label
counts. Bad input raises :class:`PrepareError` listing every subject and file at fault.
"""

from __future__ import annotations

import contextlib
import json
import warnings
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mwam_harness.datasets.brats2020 import MODALITIES, SPLIT_SIZES, SPLITS
from mwam_harness.datasets.brats2020.layout import (
    case_name,
    is_prepared,
    is_raw,
    label_path,
    prepared_cases,
    raw_files,
    raw_subjects,
    volume_path,
)
from mwam_harness.datasets.brats2020.preprocess import MINIMUM_WINDOW, RAW_LABELS, preprocess_subject
from mwam_harness.datasets.files import atomic_write, write_text_atomic

MANIFEST = "prepare.json"
FINGERPRINT = "fingerprint.json"


class PrepareError(ValueError):
    """Input that cannot be prepared; the message names every subject and file at fault."""


def non_finite_message(array: np.ndarray) -> str | None:
    """``"N NaN voxels, N +Inf voxels, N -Inf voxels"`` when ``array`` holds non-finite values, else None."""
    if not np.issubdtype(array.dtype, np.floating) or np.isfinite(array).all():
        return None
    counts = (int(np.isnan(array).sum()), int(np.isposinf(array).sum()), int(np.isneginf(array).sum()))
    return "{} NaN voxels, {} +Inf voxels, {} -Inf voxels".format(*counts)


def inspect_subject(source: Path, subject: str) -> tuple[dict[str, np.ndarray], dict[str, Any], list[tuple[str, str]]]:
    """Read and check one raw subject: ``(arrays by modality and "seg", header facts, problems)``, each problem
    ``(file or subject folder, what is wrong)``; every file is read and every problem listed (missing, empty or
    unreadable files, a volume not 3-D, NaN or +-Inf voxels, shapes or affines that differ, labels outside
    {0, 1, 2, 4})."""
    import nibabel as nib

    from mwam_harness.datasets.checking import file_problem

    files = raw_files(source, subject)
    folder = str(files["seg"].parent)
    missing = [str(path) for path in files.values() if not path.exists()]
    problems: list[tuple[str, str]] = []
    if missing:
        problems.append((folder, f"missing file(s): {', '.join(missing)}"))
    arrays, shapes, affines, spacing = {}, {}, {}, None
    for name, path in files.items():
        if str(path) in missing:
            continue
        problem = file_problem(path, f"{name} NIfTI of {subject}")
        if problem is not None:
            problems.append((str(path), problem))
            continue
        try:
            image = nib.load(str(path))
            data = np.asanyarray(image.dataobj)
        except (OSError, EOFError, zlib.error, nib.filebasedimages.ImageFileError, ValueError) as error:
            problems.append((str(path), f"unreadable NIfTI ({type(error).__name__}: {error})"))
            continue
        if data.ndim != 3:
            problems.append((str(path), f"a 3-D volume expected, got shape {data.shape}"))
            continue
        non_finite = non_finite_message(data)
        if non_finite is not None:
            what = "labels" if name == "seg" else "intensities"
            problems.append((str(path), f"{non_finite}: non-finite {what} cannot be prepared (fix or leave out "
                                        "this subject)"))  # fmt: skip
            continue
        arrays[name], shapes[name], affines[name] = data, data.shape, image.affine
        spacing = spacing or tuple(float(z) for z in image.header.get_zooms()[:3])
    if len(set(shapes.values())) > 1:
        problems.append((folder, f"modalities of different shapes: {shapes}"))
    if "flair" in affines:
        different = [name for name, affine in affines.items()
                     if not np.allclose(affine, affines["flair"], atol=1e-3)]  # fmt: skip
        if different:
            problems.append((str(files[different[0]]), f"affines differ from flair's in {different}"))
    if "seg" in arrays:
        unexpected = sorted(set(np.unique(arrays["seg"]).tolist()) - set(RAW_LABELS))
        if unexpected:
            problems.append((str(files["seg"]), f"labels outside {{0, 1, 2, 4}}: {unexpected[:5]}"))
    shape = shapes.get("flair")
    return arrays, {"shape": list(shape or ()), "spacing": list(spacing or ())}, problems


def read_subject(source: Path, subject: str) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """The four volumes, the segmentation and header facts of one raw subject; ValueError naming every file at fault
    (:func:`inspect_subject`)."""
    arrays, facts, problems = inspect_subject(source, subject)
    if problems:
        raise ValueError("; ".join(f"{where}: {message}" for where, message in problems))
    segmentation = arrays.pop("seg")
    return arrays, segmentation, facts


def _stamp(source: Path, subject: str) -> list[list[Any]]:
    """Sizes and modification times of a subject's source files: what decides whether to prepare it again."""
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in raw_files(source, subject).values()]


def _read_manifest(path: Path) -> dict[str, Any]:
    """The record of subjects prepared before (``prepare.json``); one that is torn or unreadable is set aside with a
    warning naming it, and every subject is prepared again."""
    if not path.is_file():
        return {"subjects": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and isinstance(manifest.get("subjects"), dict):
            return manifest
        problem = "not a prepare record"
    except (OSError, ValueError) as error:
        problem = f"{type(error).__name__}: {error}"
    warnings.warn(f"{path}: unreadable or torn ({problem}); every subject is prepared again", stacklevel=3)
    return {"subjects": {}}


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda temporary: np.save(temporary, array))


def prepare_subject(source: Path, out_dir: Path, subject: str, minimum_window: int) -> dict[str, Any]:
    """Read, check, preprocess and write one subject; its fingerprint entry. ValueError naming subject and file."""
    try:
        volumes, segmentation, facts = read_subject(source, subject)
        brain = sum(volumes[m].astype(np.float64) for m in MODALITIES) > 0
        intensities = {m: {"mean": float(volumes[m][brain].mean()), "std": float(volumes[m][brain].std())}
                       for m in MODALITIES}  # fmt: skip
        volume, labels, window = preprocess_subject(volumes, segmentation, minimum_window)
    except ValueError as error:
        raise ValueError(f"{subject}: {error}") from None
    case = case_name(subject)
    _save_npy_atomic(volume_path(out_dir, case), volume)
    _save_npy_atomic(label_path(out_dir, case), labels)
    counts = np.bincount(labels.ravel(), minlength=4)
    return {
        "case": case,
        "subject": subject,
        **facts,
        "crop": [[w.start, w.stop] for w in window],
        "prepared_shape": list(labels.shape),
        "intensity": intensities,
        "label_voxels": {str(k): int(v) for k, v in enumerate(counts)},
        "stamp": _stamp(source, subject),
    }


def _prepare_one(arguments: tuple[Path, Path, str, int]) -> tuple[str, dict[str, Any] | None, str | None]:
    source, out_dir, subject, minimum_window = arguments
    try:
        return subject, prepare_subject(source, out_dir, subject, minimum_window), None
    except ValueError as error:
        return subject, None, str(error)


def default_split_sizes(total: int) -> tuple[int, int, int]:
    """Sec. 5.1's 219 / 50 / 100 for the 369 subjects; other totals in the same proportions (each split >= 1)."""
    paper = (SPLIT_SIZES["train"], SPLIT_SIZES["val"], SPLIT_SIZES["test"])
    if total == sum(paper):
        return paper
    if total < 3:
        raise PrepareError(f"{total} subject(s): a train / val / test split needs at least 3")
    val = max(1, round(total * paper[1] / sum(paper)))
    test = max(1, round(total * paper[2] / sum(paper)))
    return total - val - test, val, test


def seeded_split(cases: Sequence[str], sizes: Sequence[int], seed: int) -> dict[str, list[str]]:
    """``{"train", "val", "test"}`` of ``cases``: one seeded permutation, test first, then val, the rest train."""
    if len(sizes) != 3 or sum(sizes) != len(cases) or min(sizes) < 1:
        raise PrepareError(f"split sizes {tuple(sizes)} must be three positive counts summing to {len(cases)} cases")
    order = [cases[i] for i in np.random.default_rng(seed).permutation(len(cases))]
    _, val, test = sizes
    return {"test": sorted(order[:test]), "val": sorted(order[test : test + val]), "train": sorted(order[test + val :])}


def _read_list(path: Path, known: set[str]) -> list[str]:
    """Case names of a split list; a subject named without its HG_ / LG_ prefix is given it."""
    if not Path(path).is_file():
        raise PrepareError(f"{path}: no such split list")
    names = []
    for line_number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        if name not in known:
            try:
                name = case_name(name)
            except ValueError:
                pass
        if name not in known:
            raise PrepareError(f"{path}:{line_number}: {line.strip()!r} is not a prepared case")
        names.append(name)
    if not names:
        raise PrepareError(f"{path}: the split list is empty")
    return sorted(set(names))


def split_from_files(
    cases: Sequence[str], split_files: Sequence[str | Path], seed: int, val_size: int | None = None
) -> dict[str, list[str]]:
    """The authors' split: (train list, test list[, val list]); without a val list, ``val_size`` cases drawn
    (seeded) from the train list (default: 50 of 269, Sec. 5.1's proportion)."""
    if len(split_files) not in (2, 3):
        raise PrepareError("split_files: give the train list and the test list (and optionally a val list)")
    known = set(cases)
    train, test = _read_list(Path(split_files[0]), known), _read_list(Path(split_files[1]), known)
    if len(split_files) == 3:
        val = _read_list(Path(split_files[2]), known)
    else:
        if val_size is None:
            val_size = max(1, round(len(train) * SPLIT_SIZES["val"] / (SPLIT_SIZES["train"] + SPLIT_SIZES["val"])))
        if not 0 < val_size < len(train):
            raise PrepareError(f"cannot draw {val_size} validation cases from {len(train)} training cases")
        val = sorted(train[i] for i in np.random.default_rng(seed).permutation(len(train))[:val_size])
    train = sorted(set(train) - set(val))
    overlap = (set(train) | set(val)) & set(test)
    if overlap:
        raise PrepareError(f"cases in both the test list and another split: {sorted(overlap)[:5]}")
    return {"train": train, "val": val, "test": test}


def write_splits(out_dir: Path, splits: dict[str, list[str]]) -> None:
    for split, file_name in SPLITS.items():
        if not splits.get(split):
            raise PrepareError(f"the {split} split is empty")
        write_text_atomic(out_dir / file_name, "".join(f"{name}\n" for name in splits[split]))


def _link_preprocessed(source: Path, out_dir: Path) -> list[str]:
    """Symlink the authors' preprocessed npy files into ``out_dir`` (checked for shape and dtype on the way)."""
    cases = prepared_cases(source)
    if not cases:
        raise PrepareError(f"{source}/vol holds no <case>_vol.npy file")
    problems = []
    for case in cases:
        volume, labels = volume_path(source, case), label_path(source, case)
        if not labels.is_file():
            problems.append(f"{case}: missing {labels}")
            continue
        shape_v, shape_l = np.load(volume, mmap_mode="r").shape, np.load(labels, mmap_mode="r").shape
        if len(shape_v) != 4 or shape_v[3] != 4 or tuple(shape_v[:3]) != tuple(shape_l):
            problems.append(f"{case}: volume {shape_v} and labels {shape_l} are not (H, W, D, 4) and (H, W, D)")
            continue
        for target, link in ((volume, volume_path(out_dir, case)), (labels, label_path(out_dir, case))):
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target.resolve())
    if problems:
        raise PrepareError("cannot use the preprocessed files:\n  " + "\n  ".join(problems))
    return cases


def prepare_brats2020(
    source: str | Path,
    out_dir: str | Path,
    split_files: Sequence[str | Path] | None = None,
    split_sizes: Sequence[int] | None = None,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    minimum_window: int = MINIMUM_WINDOW,
) -> Path:
    """Prepare ``source`` (raw or preprocessed, see the module docstring) into ``out_dir``; returns ``out_dir``."""
    from tqdm.auto import tqdm

    source, out_dir = Path(source), Path(out_dir)
    if source.resolve() == out_dir.resolve():
        raise PrepareError("SOURCE and OUT must differ")
    out_dir.mkdir(parents=True, exist_ok=True)
    if is_raw(source):
        manifest_path = out_dir / MANIFEST
        manifest = _read_manifest(manifest_path)
        subjects = raw_subjects(source)
        entries: dict[str, dict[str, Any]] = {}
        todo = []
        for subject in subjects:
            known = manifest["subjects"].get(subject)
            case = case_name(subject)
            done = known and volume_path(out_dir, case).is_file() and label_path(out_dir, case).is_file()
            if done and known.get("stamp") == _stamp(source, subject) and known.get("minimum_window") == minimum_window:
                entries[subject] = known
            else:
                todo.append(subject)
        errors = []
        jobs = [(source, out_dir, subject, minimum_window) for subject in todo]
        parallel = workers > 1 and len(jobs) > 1
        with ProcessPoolExecutor(max_workers=workers) if parallel else contextlib.nullcontext() as pool:
            results = pool.map(_prepare_one, jobs) if parallel else map(_prepare_one, jobs)
            for subject, entry, error in tqdm(results, total=len(jobs), desc="prepare BraTS2020",
                                              disable=not progress or not jobs):  # fmt: skip
                entries[subject] = entry or {}
                if error:
                    errors.append(error)
        for subject in todo:
            if entries[subject]:
                entries[subject]["minimum_window"] = minimum_window
        good = {s: e for s, e in entries.items() if e}
        write_text_atomic(manifest_path, json.dumps({"source": str(source.resolve()), "subjects": good}, indent=1))
        if errors:
            raise PrepareError(
                f"{len(errors)} of {len(subjects)} subjects cannot be prepared (the others are, in {out_dir}):\n  "
                + "\n  ".join(errors)
            )
        cases = sorted(e["case"] for e in good.values())
        fingerprint = {
            "subjects": len(cases),
            "raw_shapes": sorted({tuple(e["shape"]) for e in good.values()}),
            "spacings": sorted({tuple(e["spacing"]) for e in good.values()}),
            "cases": {e["case"]: {k: v for k, v in e.items() if k not in ("stamp", "case")} for e in good.values()},
        }
    elif is_prepared(source):
        cases = _link_preprocessed(source, out_dir)
        if split_files is None and (source / "train.txt").is_file() and (source / "test.txt").is_file():
            split_files = [source / "train.txt", source / "test.txt"]
        fingerprint = {"subjects": len(cases), "linked_from": str(source.resolve())}
    else:
        raise PrepareError(
            f"{source} is neither a raw BraTS2020 folder (BraTS20_Training_XXX/ subject folders, possibly inside "
            "MICCAI_BraTS2020_TrainingData/) nor a preprocessed one (vol/ and seg/ with <case>_vol.npy / _seg.npy)"
        )
    if split_files is not None:
        splits = split_from_files(cases, split_files, seed)
    else:
        splits = seeded_split(cases, split_sizes or default_split_sizes(len(cases)), seed)
    write_splits(out_dir, splits)
    fingerprint["splits"] = {k: len(v) for k, v in splits.items()}
    fingerprint["split_seed"] = None if split_files is not None else seed
    write_text_atomic(out_dir / FINGERPRINT, json.dumps(fingerprint, indent=1, default=list))
    return out_dir
