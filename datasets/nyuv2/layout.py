"""NYU-Depth V2's two on-disk layouts: names and paths (no heavy imports).

Download (what ``prepare`` reads): a folder holding ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5), NYU's
official split ``splits.mat`` and the 894 -> 40 class map ``classMapping40.mat`` (the NYU toolbox's, shipped with
ESANet's ``src/datasets/nyuv2/``).
Prepared (ESANet's ``prepare_dataset.py`` layout, what runs read): ``ROOT/<split>/rgb/NNNN.png`` (8-bit colour,
stored BGR as OpenCV writes it), ``ROOT/<split>/depth/NNNN.png`` (uint16, millimetres), ``ROOT/<split>/labels_40/
NNNN.png`` (uint8, 0 = void, 1-40) for the splits ``train`` and ``test``, and ``ROOT/train.txt`` / ``test.txt``
with one four-digit index (1-based, into the 1,449 labelled images) a line, in ``splits.mat`` order.
"""

from __future__ import annotations

import re
from pathlib import Path

from mwam_harness.datasets.nyuv2 import SPLITS

#: The folder of each kind of image inside ``ROOT/<split>/`` (ESANet's ``RGB_DIR``, ``DEPTH_DIR``, ``labels_40``).
FOLDERS: dict[str, str] = {"rgb": "rgb", "depth": "depth", "label": "labels_40"}
INDEX = re.compile(r"^\d{4}$")

MAT_FILE = "nyu_depth_v2_labeled.mat"
SPLITS_FILE = "splits.mat"
MAPPING_FILE = "classMapping40.mat"
DOWNLOAD_FILES = (MAT_FILE, SPLITS_FILE, MAPPING_FILE)

#: The class-weight cache of a prepared root (``class_weights.py``), and ESANet's pickle of the same weights.
WEIGHTS_FILE = "class_weights.json"
LIST_HINT = "`python -m reproduce prepare nyuv2 SOURCE ROOT` writes the split lists"
ESANET_WEIGHTS_FILE = "weighting_median_frequency_1+40_train.pickle"


def split_dir(root: Path, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"NYU-Depth V2 has the splits {sorted(SPLITS)}, not {split!r}")
    return Path(root) / split


def image_path(root: Path, split: str, index: str, kind: str) -> Path:
    """``ROOT/<split>/<rgb|depth|labels_40>/<index>.png``; ``kind`` is ``rgb``, ``depth`` or ``label``."""
    if kind not in FOLDERS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(FOLDERS)}")
    return split_dir(root, split) / FOLDERS[kind] / f"{index}.png"


def sample_paths(root: Path, split: str, index: str) -> dict[str, Path]:
    """``{"rgb": path, "depth": path, "label": path}`` of one listed index."""
    return {kind: image_path(root, split, index, kind) for kind in FOLDERS}


def list_path(root: Path, split: str) -> Path:
    split_dir(root, split)  # validates the name
    return Path(root) / SPLITS[split]


def parse_split(root: Path, split: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The indices ``split``'s list names, ``(line number, index)`` in file order, and its problems, ``(line number,
    what is wrong)``: a token that is not a four-digit index, an index listed twice. Blank lines are skipped.
    FileNotFoundError naming the list when it is missing; ListFileError (a ValueError) naming it when it is not UTF-8
    text or cannot be read."""
    path = list_path(root, split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing split list of NYU-Depth V2 (a prepared root holds {', '.join(SPLITS.values())}; "
            "`python -m reproduce prepare nyuv2 SOURCE ROOT` writes them)"
        )
    from mwam_harness.datasets.checking import read_list_lines, unique_list_entries

    def invalid(token: str) -> str | None:
        return None if INDEX.match(token) else f"{token!r} is not a four-digit image index (e.g. 0003)"

    return unique_list_entries(read_list_lines(path, LIST_HINT), "index", invalid)


def read_split(root: Path, split: str) -> list[str]:
    """The indices of ``split`` in list order; ValueError naming the list file and the bad lines, or an empty
    split."""
    entries, problems = parse_split(root, split)
    path = list_path(root, split)
    if problems:
        shown = "\n  ".join(f"line {n}: {message}" for n, message in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"{path}: {len(problems)} bad line(s):\n  {shown}{more}")
    if not entries:
        raise ValueError(f"{path}: the {split} split is empty")
    return [index for _, index in entries]


def shared_indices(root: Path, split: str, indices: list[str]) -> list[tuple[str, str]]:
    """``(index, other list file)`` for each of ``indices`` (of ``split``) that another split's list names too; lists
    that are missing are skipped."""
    mine = set(indices)
    shared = []
    for other, file_name in SPLITS.items():
        if other != split and (Path(root) / file_name).is_file():
            entries, _ = parse_split(root, other)
            shared += [(index, file_name) for _, index in entries if index in mine]
    return shared


def is_prepared(root: Path) -> bool:
    """Whether ``root`` looks like a prepared root (a split list or a split folder)."""
    root = Path(root)
    return any((root / name).is_file() for name in SPLITS.values()) or any(
        (root / split / FOLDERS["rgb"]).is_dir() for split in SPLITS
    )


def download_files(source: Path) -> dict[str, Path]:
    """``{"mat": ..., "splits": ..., "mapping": ...}`` of a download given as its folder or as its labelled ``.mat``
    file (then ``splits.mat`` and ``classMapping40.mat`` lie beside it)."""
    source = Path(source)
    if source.suffix == ".mat" and source.is_file():
        folder, mat = source.parent, source
    else:
        folder, mat = source, source / MAT_FILE
    return {"mat": mat, "splits": folder / SPLITS_FILE, "mapping": folder / MAPPING_FILE}


def is_download(source: Path) -> bool:
    """Whether ``source`` holds (or is) the labelled ``.mat`` file."""
    return download_files(source)["mat"].is_file()
