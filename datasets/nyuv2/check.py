"""``check-data`` for NYU-Depth V2, either layout: every problem with the file (and list line) at fault.

A prepared root (what runs read): both split lists present, UTF-8 and non-empty, each line a four-digit index listed
once and in one split only; every listed index has its RGB, depth and label PNG, none empty or cut short (the PNG's
closing IEND chunk), each decodes, RGB as 8-bit 3-channel colour, depth as uint16 single-channel, labels as uint8
single-channel within 0-40, all three of one size, the root's (:func:`expected_size`); a class-weight cache,
``prepare.json`` and ``synthetic.json``, when present, readable (the cache with 40 finite weights). What the loader
refuses (``loader.py``), this reports first; every problem is reported, not only the first. A download (what
``prepare`` reads): the labelled ``.mat`` readable with consistent ``images`` / ``depths`` / ``labels``,
``splits.mat`` and ``classMapping40.mat`` present and well-formed -- the checks ``prepare`` makes before converting,
without reading the images or writing anything.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import cv2
import numpy as np

from mwam_harness.datasets.checking import ListFileError, gather_problems, image_file_problem, json_problem
from mwam_harness.datasets.nyuv2 import NUM_CLASSES, SPLITS
from mwam_harness.datasets.nyuv2.class_weights import cache_problem
from mwam_harness.datasets.nyuv2.layout import (
    WEIGHTS_FILE,
    image_path,
    is_download,
    is_prepared,
    list_path,
    parse_split,
    sample_paths,
)
from mwam_harness.datasets.registry import SYNTHETIC_MARKER, Problem, read_synthetic_marker

_EXPECTED = {
    "rgb": "an 8-bit 3-channel colour PNG",
    "depth": "a uint16 single-channel depth PNG (mm)",
    "label": "a uint8 single-channel label PNG",
}


#: JSON files of a prepared root besides the class-weight cache, and how each is written again.
JSON_FILES = {
    "prepare.json": "delete it: `python -m reproduce prepare nyuv2 SOURCE ROOT` then prepares every image again",
    SYNTHETIC_MARKER: "a synthetic set: delete the folder and it is generated again",
}


def _decode(path: Path) -> np.ndarray | None:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None


def expected_size(root: Path) -> tuple[tuple[int, int], str] | None:
    """``((height, width), where it comes from)``: the size every image of a prepared root must have -- the
    synthetic set's (``synthetic.json``), the download's (``prepare.json``), else the first training image's; None
    when none of them can be read. The loader refuses, and ``check-data`` reports, an image of another size."""
    marker = read_synthetic_marker(root)
    if isinstance(marker, dict) and marker.get("kind") == "nyuv2":
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return (int(marker["height"]), int(marker["width"])), "synthetic.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        height, width = json.loads((root / "prepare.json").read_text(encoding="utf-8"))["shape"]
        return (int(height), int(width)), "prepare.json"
    with contextlib.suppress(OSError, ValueError, IndexError):
        entries, _ = parse_split(root, "train")
        path = image_path(root, "train", entries[0][1], "rgb")
        if image_file_problem(path) is None and (image := _decode(path)) is not None:
            return (int(image.shape[0]), int(image.shape[1])), f"{path}, the first training image"
    return None


def size_problem(size: tuple[int, int], expected: tuple[tuple[int, int], str] | None) -> str | None:
    """What is wrong with an image of ``size`` (height, width) in a root whose images are ``expected``."""
    if expected is None or tuple(size) == expected[0]:
        return None
    (height, width), where = expected
    return (
        f"image of {size[0]} x {size[1]}, but every image of this root is {height} x {width} ({where}); prepare it "
        "again"
    )


def _kind_ok(kind: str, image: np.ndarray) -> bool:
    if kind == "rgb":
        return image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    if kind == "depth":
        return image.ndim == 2 and image.dtype == np.uint16
    return image.ndim == 2 and image.dtype == np.uint8


def sample_problems(
    root: Path, split: str, index: str, listed: str, expected: tuple[tuple[int, int], str] | None = None
) -> list[Problem]:
    """Problems of one listed index (``listed``: where it is listed, e.g. ``train.txt, line 3``; ``expected``: the
    root's image size, :func:`expected_size`)."""
    paths = sample_paths(root, split, index)
    problems, images = [], {}
    for kind, path in paths.items():
        if not path.is_file():
            problems.append(Problem(str(path), f"missing {kind} image of index {index} ({listed})"))
            continue
        damaged = image_file_problem(path)
        if damaged is not None:
            problems.append(Problem(str(path), f"{damaged} ({kind} image of index {index}, {listed})"))
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
    elif sizes and (wrong := size_problem(next(iter(sizes.values())), expected)) is not None:
        problems.append(Problem(str(paths[next(iter(sizes))]), wrong))
    if "label" in images:
        above = sorted(int(v) for v in np.unique(images["label"]) if v > NUM_CLASSES)
        if above:
            problems.append(Problem(str(paths["label"]), f"labels outside 0-{NUM_CLASSES}: {above[:5]}"))
    return problems


def _download_problems(source: Path) -> list[Problem]:
    from mwam_harness.datasets.nyuv2.prepare import inspect_download

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
        except ListFileError as error:  # not UTF-8, or unreadable
            problems.append(Problem(str(path), str(error).removeprefix(f"{path}: "), error.line))
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
    problems += [Problem(str(root / name), problem) for name, rebuild in JSON_FILES.items()
                 if (problem := json_problem(root / name, rebuild)) is not None]  # fmt: skip
    expected = expected_size(root)
    problems += gather_problems(
        samples, lambda s: sample_problems(root, *s, expected), workers, progress, "check NYU-Depth V2"
    )
    return problems
