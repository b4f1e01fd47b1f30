"""``check-data`` for DroneVehicle, either layout: every problem with the file (and list line) at fault.

A prepared root (what runs read): the three list files present, UTF-8 and non-empty; no image listed twice in a
split nor in two splits (a case is one RGB image file: the release numbers each split from 00001, so a name alone
is no case); every listed RGB image and its IR twin (``images`` -> ``image``) non-empty, complete (a JPEG / PNG ends
with its end marker: OpenCV decodes one cut short with only a warning, and ultralytics would re-encode it in place)
and decodable, the RGB image 640 x 512 (``IMAGE_SIZE``: prepared images are the release's with the border cropped;
a box label is relative to that crop) and its IR twin the same size; its label file UTF-8 and parsing (5 numbers a
line, an integer class 0-4, ``xc yc w h`` within [0, 1], positive ``w`` / ``h``; empty: no objects); and
``synthetic.json`` / ``prepare.json`` not torn. The loader (``loader.py``) refuses the same list, image, twin and
label faults when it is built, before training (an image of another size than 640 x 512 it would letterbox and
train on: check-data alone reports that). A release (what
``prepare`` reads; also ``ROOT/source`` of a synthetic root): every RGB image has its IR twin and an annotation XML,
and every XML (RGB and IR) parses, with known class names and coordinates inside the image -- the checks
``prepare`` makes before converting, without decoding the images.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

from mwam_harness.datasets.checking import (
    ListFileError,
    gather_problems,
    image_file_problem,
    json_problem,
    read_list_text,
    shared_cases,
)
from mwam_harness.datasets.dronevehicle import BORDER, IMAGE_SIZE, SPLITS
from mwam_harness.datasets.dronevehicle.layout import (
    ir_path,
    is_prepared,
    is_raw,
    label_path,
    list_path,
    parse_label_text,
    raw_dir,
    read_list,
)
from mwam_harness.datasets.dronevehicle.prepare import MANIFEST, inspect_release, read_annotation
from mwam_harness.datasets.registry import SYNTHETIC_MARKER, Problem


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
        problem = image_file_problem(path)
        if problem is not None:
            problems.append(Problem(str(path), f"{kind} image: {problem} ({listed})"))
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or image.size == 0:
            problems.append(Problem(str(path), f"unreadable {kind} image (cv2.imread returned nothing; {listed})"))
        else:
            images[kind] = image.shape[:2]
    if "RGB" in images and images["RGB"] != IMAGE_SIZE:
        (h, w), (h0, w0) = images["RGB"], IMAGE_SIZE
        problems.append(
            Problem(
                str(rgb),
                f"RGB is {w} x {h}, expected DroneVehicle's prepared {w0} x {h0} (the release's images with their "
                f"{BORDER}-px border cropped; `prepare` writes them) ({listed})",
            )
        )
    if len(images) == 2 and images["RGB"] != images["IR"]:
        (h0, w0), (h1, w1) = images["RGB"], images["IR"]
        problems.append(Problem(str(rgb), f"RGB is {w0} x {h0} but its IR twin {twin} is {w1} x {h1}"))
    label = label_path(rgb)
    if not label.is_file():
        problems.append(Problem(str(label), f"missing label file ({listed})"))
    else:
        try:
            text = read_list_text(label, "utf-8-sig")
        except ListFileError as error:
            return [*problems, Problem(str(label), str(error).split(": ", 1)[-1], error.line)]
        _, bad = parse_label_text(text)
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
    for name, rebuild in ((SYNTHETIC_MARKER, "delete the root and write the synthetic set again"),
                          (MANIFEST, "run `python -m reproduce prepare` again")):  # fmt: skip
        torn = json_problem(root / name, rebuild)
        if torn is not None:
            problems.append(Problem(str(root / name), torn))
    samples: dict[str, tuple[Path, str]] = {}  # case (the RGB image, relative to the root) -> (path, where listed)
    cases = {}
    for split, file_name in SPLITS.items():
        try:
            entries = read_list(root, split)
        except FileNotFoundError:
            problems.append(Problem(str(list_path(root, split)), f"missing list file ({split})"))
            continue
        except ListFileError as error:
            problems.append(Problem(str(list_path(root, split)), str(error).split(": ", 1)[-1], error.line))
            continue
        if not entries:
            problems.append(Problem(str(list_path(root, split)), f"empty split {split!r}"))
        keyed = [(line, (os.path.normpath(os.path.relpath(path, root)),)) for line, path in entries]
        cases[split] = (list_path(root, split), keyed)
        for (line, (key,)), (_, path) in zip(keyed, entries, strict=True):
            samples.setdefault(key, (path, f"{file_name}, line {line}"))
    problems += shared_cases(cases)
    problems += gather_problems(
        list(samples.values()), lambda s: sample_problems(*s), workers, progress, "check DroneVehicle"
    )
    if is_raw(root / "source"):  # a synthetic root keeps its release-layout copy there
        problems += release_problems(root / "source", workers)
    return problems
