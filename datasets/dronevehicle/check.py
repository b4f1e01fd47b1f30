"""``check-data`` for DroneVehicle, either layout: every problem with the file (and list line) at fault.

A prepared root (what runs read): the three list files present and non-empty; every listed RGB image exists and
decodes, its IR twin (``images`` -> ``image``) exists, decodes and has the same size, and its label file parses
(5 numbers a line, an integer class 0-4, ``xc yc w h`` within [0, 1], positive ``w`` / ``h``). A release (what
``prepare`` reads; also ``ROOT/source`` of a synthetic root): every RGB image has its IR twin and an annotation XML,
and every XML (RGB and IR) parses, with known class names and coordinates inside the image -- the checks
``prepare`` makes before converting, without decoding the images.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

from datasets.checking import gather_problems
from datasets.dronevehicle import SPLITS
from datasets.dronevehicle.layout import (
    ir_path,
    is_prepared,
    is_raw,
    label_path,
    list_path,
    parse_label_text,
    raw_dir,
    read_list,
)
from datasets.dronevehicle.prepare import inspect_release, read_annotation
from datasets.registry import Problem


def _problem(text: str) -> Problem:
    """A ``"path: message"`` string as a Problem."""
    file, sep, message = text.partition(": ")
    return Problem(file, message) if sep else Problem("", text)


def sample_problems(rgb: Path, listed: str) -> list[Problem]:
    """Problems of one listed RGB image (``listed``: where it is listed, e.g. ``train.txt, line 3``)."""
    problems: list[Problem] = []
    images = {}
    try:
        twin = ir_path(rgb)
    except ValueError as error:
        return [Problem(str(rgb), f"{error} ({listed})")]
    for kind, path in (("RGB", rgb), ("IR", twin)):
        if not path.is_file():
            problems.append(Problem(str(path), f"missing {kind} image ({listed})"))
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or image.size == 0:
            problems.append(Problem(str(path), f"unreadable {kind} image (cv2.imread returned nothing; {listed})"))
        else:
            images[kind] = image.shape[:2]
    if len(images) == 2 and images["RGB"] != images["IR"]:
        (h0, w0), (h1, w1) = images["RGB"], images["IR"]
        problems.append(Problem(str(rgb), f"RGB is {w0} x {h0} but its IR twin {twin} is {w1} x {h1}"))
    label = label_path(rgb)
    if not label.is_file():
        problems.append(Problem(str(label), f"missing label file ({listed})"))
    else:
        _, bad = parse_label_text(label.read_text(encoding="utf-8-sig"))
        problems += [Problem(str(label), message) for message in bad]
    return problems


def release_problems(source: Path, workers: int = 4) -> list[Problem]:
    """Problems of a release folder (pairs, annotation files, every XML parsed)."""
    _, found = inspect_release(source, "ir")
    problems = [_problem(p) for p in found]
    folders = [raw_dir(source, split, kind) for split in SPLITS for kind in ("rgb_xml", "ir_xml")]
    xmls = [path for folder in folders for path in sorted(folder.glob("*.xml"))]

    def parse(path: Path) -> str | None:
        try:
            read_annotation(path)
        except ValueError as error:
            return str(error)
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems += [_problem(p) for p in pool.map(parse, xmls) if p]
    return problems


def check_data(root: str | Path, progress: bool = True, workers: int = 4) -> list[Problem]:
    """Problems of a prepared DroneVehicle root or a release folder (see the module docstring)."""

    root = Path(root)
    if not root.is_dir():
        return [Problem(str(root), "not a directory (a DroneVehicle root or release folder)")]
    if is_raw(root) and not is_prepared(root):
        return release_problems(root, workers)
    if not is_prepared(root):
        return [
            Problem(
                str(root),
                "neither a prepared DroneVehicle root (train.txt, val.txt, test.txt, images/, image/, labels/) nor "
                "the release ({train,val,test}/<split>img, <split>imgr, <split>label, <split>labelr)",
            )
        ]
    problems: list[Problem] = []
    samples: list[tuple[Path, str]] = []
    for split, file_name in SPLITS.items():
        try:
            entries = read_list(root, split)
        except FileNotFoundError:
            problems.append(Problem(str(list_path(root, split)), f"missing list file ({split})"))
            continue
        if not entries:
            problems.append(Problem(str(list_path(root, split)), f"empty split {split!r}"))
        samples += [(path, f"{file_name}, line {line}") for line, path in entries]
    problems += gather_problems(samples, lambda s: sample_problems(*s), workers, progress, "check DroneVehicle")
    if is_raw(root / "source"):  # a synthetic root keeps its release-layout copy there
        problems += release_problems(root / "source", workers)
    return problems
