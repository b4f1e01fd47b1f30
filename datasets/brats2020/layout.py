"""BraTS2020's two on-disk layouts: names and paths (no heavy imports).

Raw (the challenge's training data): ``RAW/BraTS20_Training_XXX/BraTS20_Training_XXX_<modality>.nii.gz`` for the
four modalities and ``_seg``; a ``MICCAI_BraTS2020_TrainingData`` folder above the case folders is found too.
Prepared (the authors' preprocessed layout, what runs read): ``ROOT/vol/<case>_vol.npy``,
``ROOT/seg/<case>_seg.npy`` and split lists of case names, where a case is ``HG_BraTS20_Training_XXX`` or
``LG_...`` (the authors' ``preprocess.py``: cases 260-335 are low grade).
"""

from __future__ import annotations

import re
from pathlib import Path

from mwam_harness.datasets.brats2020 import MODALITIES, SPLITS

SUBJECT = re.compile(r"^BraTS20_Training_(\d{3})$")
RAW_FOLDER = "MICCAI_BraTS2020_TrainingData"
#: Subject numbers the authors' preprocessing marks low grade (``LG_``); every other one is ``HG_``.
LOW_GRADE = range(260, 336)


def case_name(subject: str) -> str:
    """``BraTS20_Training_001`` -> ``HG_BraTS20_Training_001`` (``LG_`` for subjects 260-335), the authors' names."""
    match = SUBJECT.match(subject)
    if match is None:
        raise ValueError(f"{subject!r} is not a BraTS2020 training subject (BraTS20_Training_XXX)")
    return ("LG_" if int(match.group(1)) in LOW_GRADE else "HG_") + subject


def raw_root(source: Path) -> Path:
    """The folder holding the subject folders: ``source`` or its ``MICCAI_BraTS2020_TrainingData``."""
    nested = source / RAW_FOLDER
    return nested if nested.is_dir() else source


def raw_subjects(source: Path) -> list[str]:
    """The subject folders of a raw layout, sorted."""
    root = raw_root(source)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and SUBJECT.match(p.name)) if root.is_dir() else []


def raw_files(source: Path, subject: str) -> dict[str, Path]:
    """``{modality: path, ..., "seg": path}`` of one subject of the raw layout."""
    folder = raw_root(source) / subject
    return {m: folder / f"{subject}_{m}.nii.gz" for m in (*MODALITIES, "seg")}


def is_raw(source: Path) -> bool:
    return bool(raw_subjects(source))


def is_prepared(root: Path) -> bool:
    return (root / "vol").is_dir() and (root / "seg").is_dir()


def volume_path(root: Path, case: str) -> Path:
    return root / "vol" / f"{case}_vol.npy"


def label_path(root: Path, case: str) -> Path:
    return root / "seg" / f"{case}_seg.npy"


def prepared_cases(root: Path) -> list[str]:
    """The cases whose volume file lies in ``root/vol``, sorted."""
    return sorted(p.name[: -len("_vol.npy")] for p in (root / "vol").glob("*_vol.npy"))


LIST_HINT = "`python -m reproduce prepare brats2020 SOURCE ROOT` writes the split lists"


def parse_split(root: Path, split: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The cases ``split``'s list names, ``(line number, case)`` in file order, and its problems, ``(line number,
    what is wrong)``: a case listed twice. FileNotFoundError naming the list when it is missing; ValueError naming it
    when it is not UTF-8 text."""
    from mwam_harness.datasets.checking import read_list_lines, unique_list_entries

    path = root / SPLITS[split]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing split list of BraTS2020 (a prepared root holds {', '.join(SPLITS.values())}; {LIST_HINT})"
        )
    return unique_list_entries(read_list_lines(path, LIST_HINT), "case")


def read_split(root: Path, split: str) -> list[str]:
    """The case names a split list holds (sorted, as the authors' loader sorts them); ValueError naming the list and
    its bad lines (a case listed twice, text that is not UTF-8) or an empty split."""
    path = root / SPLITS[split]
    entries, problems = parse_split(root, split)
    if problems:
        shown = "\n  ".join(f"line {n}: {message}" for n, message in problems[:20])
        raise ValueError(f"{path}: {len(problems)} bad line(s):\n  {shown}")
    names = sorted(name for _, name in entries)
    if not names:
        raise ValueError(f"{path}: the {split} split is empty")
    return names


def shared_cases(root: Path, split: str, cases: list[str]) -> list[tuple[str, str]]:
    """``(case, other list file)`` for each of ``cases`` (of ``split``) that another split's list names too; lists
    that are missing are skipped."""
    mine = set(cases)
    shared = []
    for other, file_name in SPLITS.items():
        if other == split or not (root / file_name).is_file():
            continue
        entries, _ = parse_split(root, other)
        shared += [(name, file_name) for _, name in entries if name in mine]
    return shared
