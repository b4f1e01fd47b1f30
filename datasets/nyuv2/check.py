"""``check-data`` for NYU-Depth V2, either layout: every problem with the file (and list line) at fault.

A prepared root (what runs read): both split lists present and non-empty, each line a four-digit index listed
once and in one split only; every listed index has its RGB, depth and label PNG, each decodes, RGB as 8-bit
3-channel colour, depth as uint16 single-channel, labels as uint8 single-channel within 0-40, all three of one size;
a class-weight cache, when present, readable with 40 finite weights. A download (what ``prepare`` reads): the
labelled ``.mat`` readable with consistent ``images`` / ``depths`` / ``labels``, ``splits.mat`` and
``classMapping40.mat`` present and well-formed -- the checks ``prepare`` makes before converting, without reading
the images or writing anything.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from datasets.checking import gather_problems
from datasets.nyuv2 import NUM_CLASSES, SPLITS
from datasets.nyuv2.class_weights import cache_problem
from datasets.nyuv2.layout import WEIGHTS_FILE, is_download, is_prepared, list_path, parse_split, sample_paths
from datasets.registry import Problem

_EXPECTED = {
    "rgb": "an 8-bit 3-channel colour PNG",
    "depth": "a uint16 single-channel depth PNG (mm)",
    "label": "a uint8 single-channel label PNG",
}


def _decode(path: Path) -> np.ndarray | None:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None


def _kind_ok(kind: str, image: np.ndarray) -> bool:
    if kind == "rgb":
        return image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    if kind == "depth":
        return image.ndim == 2 and image.dtype == np.uint16
    return image.ndim == 2 and image.dtype == np.uint8


def sample_problems(root: Path, split: str, index: str, listed: str) -> list[Problem]:
    """Problems of one listed index (``listed``: where it is listed, e.g. ``train.txt, line 3``)."""
    paths = sample_paths(root, split, index)
    problems, images = [], {}
    for kind, path in paths.items():
        if not path.is_file():
            problems.append(Problem(str(path), f"missing {kind} image of index {index} ({listed})"))
            continue
        image = _decode(path)
        if image is None or image.size == 0:
            problems.append(Problem(str(path), f"unreadable {kind} image (cv2.imread returned nothing; {listed})"))
        elif not _kind_ok(kind, image):
            problems.append(Problem(str(path), f"{_EXPECTED[kind]} expected, got {image.dtype} {image.shape}"))
        else:
            images[kind] = image
    sizes = {kind: image.shape[:2] for kind, image in images.items()}
    if len(set(sizes.values())) > 1:
        described = ", ".join(f"{kind} {h} x {w}" for kind, (h, w) in sizes.items())
        problems.append(Problem(str(paths["rgb"]), f"sizes differ within index {index}: {described}"))
    if "label" in images:
        above = sorted(int(v) for v in np.unique(images["label"]) if v > NUM_CLASSES)
        if above:
            problems.append(Problem(str(paths["label"]), f"labels outside 0-{NUM_CLASSES}: {above[:5]}"))
    return problems


def _download_problems(source: Path) -> list[Problem]:
    from datasets.nyuv2.prepare import inspect_download

    _, problems = inspect_download(source)
    return [Problem(*p.split(": ", 1)) if ": " in p else Problem(str(source), p) for p in problems]


def check_data(root: str | Path, progress: bool = True, workers: int = 4) -> list[Problem]:
    """Problems of a prepared NYU-Depth V2 root or a download folder (see the module docstring)."""

    root = Path(root)
    if not root.is_dir() and not is_download(root):
        return [Problem(str(root), "not a directory (an NYU-Depth V2 root or download folder)")]
    if is_download(root) and not is_prepared(root):
        return _download_problems(root)
    if not is_prepared(root):
        return [
            Problem(
                str(root),
                "neither a prepared NYU-Depth V2 root (train.txt, test.txt, {train,test}/{rgb,depth,labels_40}/) "
                "nor a download (nyu_depth_v2_labeled.mat, splits.mat, classMapping40.mat)",
            )
        ]
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    samples: list[tuple[str, str, str]] = []
    for split, file_name in SPLITS.items():
        path = list_path(root, split)
        try:
            entries, bad = parse_split(root, split)
        except FileNotFoundError:
            message = f"missing split list ({split}); `python -m reproduce prepare nyuv2` writes it"
            problems.append(Problem(str(path), message))
            continue
        problems += [Problem(str(path), message, line) for line, message in bad]
        if not entries and not bad:
            problems.append(Problem(str(path), f"empty split {split!r}"))
        for line, index in entries:
            if index in seen:
                problems.append(Problem(str(path), f"index {index} is also in {seen[index]}", line))
                continue
            seen[index] = file_name
            samples.append((split, index, f"{file_name}, line {line}"))
    weights = cache_problem(root)
    if weights is not None:
        problems.append(Problem(str(root / WEIGHTS_FILE), weights))
    problems += gather_problems(samples, lambda s: sample_problems(root, *s), workers, progress, "check NYU-Depth V2")
    return problems
