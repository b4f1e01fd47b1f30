"""DroneVehicle's on-disk layouts: names, paths, detectors, the list files, the label-file syntax (no heavy imports).

Release (what ``prepare`` reads): ``SOURCE/<split>/<split>img/NAME.jpg`` (RGB), ``<split>imgr/NAME.jpg`` (IR, same
names), ``<split>label/NAME.xml`` (annotations of the RGB image), ``<split>labelr/NAME.xml`` (of the IR image), for
the splits ``train``, ``val``, ``test``; 840 x 712 images with a 100-px white border.
Fork layout (mujianyu/TwoStream_Yolov8's converted data): ``images/<split>/``, ``image/<split>/``,
``labels/<split>/`` (no list files); ``prepare`` links it.
Prepared (what runs read): the fork layout plus ``ROOT/<split>.txt`` (one ``./images/<split>/NAME.jpg`` a line,
sorted) and ``ROOT/dronevehicle.yaml`` (ultralytics' data yaml, relative paths: ultralytics resolves them against
the yaml's folder when the yaml has no ``path:`` key, ``check_det_dataset``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mwam_harness.datasets.checking import read_list_text
from mwam_harness.datasets.dronevehicle import CLASS_NAMES, SPLITS

RGB_DIR = "images"
IR_DIR = "image"
LABEL_DIR = "labels"
YAML_FILE = "dronevehicle.yaml"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
#: The release's folders of one split, by kind: ``<split>img`` etc.
RAW_KINDS: dict[str, str] = {"rgb": "img", "ir": "imgr", "rgb_xml": "label", "ir_xml": "labelr"}


def _split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"DroneVehicle has the splits {sorted(SPLITS)}, not {split!r}")
    return split


# ---------------------------------------------------------------- prepared layout
def image_dir(root: str | Path, split: str, kind: str = "rgb") -> Path:
    """``ROOT/images/<split>`` (``kind="rgb"``), ``ROOT/image/<split>`` (``"ir"``) or ``ROOT/labels/<split>``."""
    folders = {"rgb": RGB_DIR, "ir": IR_DIR, "label": LABEL_DIR}
    if kind not in folders:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(folders)}")
    return Path(root) / folders[kind] / _split(split)


def list_path(root: str | Path, split: str) -> Path:
    return Path(root) / SPLITS[_split(split)]


def ir_path(rgb_path: str | Path, ir_dir: str = IR_DIR) -> Path:
    """The IR twin of an RGB image: the LAST path component named ``images`` replaced by ``ir_dir`` (a root whose
    path holds ``images`` elsewhere is fine, unlike the fork's ``str.replace('images', 'image')``)."""
    parts = list(Path(rgb_path).parts)
    for i in range(len(parts) - 2, -1, -1):  # never the file name itself
        if parts[i] == RGB_DIR:
            parts[i] = ir_dir
            return Path(*parts)
    raise ValueError(f"{rgb_path}: not inside an '{RGB_DIR}' folder, so it has no IR twin")


def label_path(rgb_path: str | Path) -> Path:
    """The label file of an RGB image, as ultralytics' ``img2label_paths`` finds it (last ``images`` -> ``labels``,
    suffix ``.txt``)."""
    sa, sb = f"{os.sep}{RGB_DIR}{os.sep}", f"{os.sep}{LABEL_DIR}{os.sep}"
    return Path(sb.join(os.fspath(rgb_path).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


def list_entry(split: str, name: str) -> str:
    """The line of one image in a list file: ``./images/<split>/NAME.jpg`` (relative to the list's folder)."""
    return f"./{RGB_DIR}/{_split(split)}/{name}"


def read_list(root: str | Path, split: str) -> list[tuple[int, Path]]:
    """``(line number, RGB image path)`` of every non-empty line of ``split``'s list file (``./`` resolved against
    the root, as ultralytics does). FileNotFoundError naming the list when it is missing; ListFileError (a
    ValueError) naming it and the line when it is not UTF-8 (a byte-order mark is allowed, as ultralytics reads it)."""
    path = list_path(root, split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing list file of DroneVehicle (a prepared root holds {', '.join(SPLITS.values())}; "
            "`python -m reproduce prepare dronevehicle SOURCE ROOT` writes them)"
        )
    entries = []
    for number, line in enumerate(read_list_text(path, "utf-8-sig").splitlines(), start=1):
        token = line.strip()
        if token:
            entries.append((number, Path(root) / token[2:] if token.startswith("./") else Path(token)))
    return entries


def yaml_text(ir_dir: str = IR_DIR) -> str:
    """``dronevehicle.yaml``: ultralytics' data yaml, paths relative to the yaml's folder (no ``path:`` key)."""
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(CLASS_NAMES))
    lists = "".join(f"{split}: {file_name}\n" for split, file_name in SPLITS.items())
    return (
        "# DroneVehicle, prepared by `python -m reproduce prepare dronevehicle` (datasets/dronevehicle).\n"
        "# No `path:` key: ultralytics resolves the list files against this file's folder.\n"
        f"{lists}nc: {len(CLASS_NAMES)}\nchannels: 6\nir_dir: {ir_dir}\nnames:\n{names}"
    )


def data_dict(root: str | Path, ir_dir: str = IR_DIR) -> dict[str, Any]:
    """The ultralytics data dict of a prepared root with absolute paths (``path``; ``train`` / ``val`` / ``test``:
    the list files), ``names``, ``nc``, ``channels: 6`` and ``ir_dir`` -- what the runner passes to ultralytics."""
    root = Path(root).resolve()
    return {
        "path": str(root),
        **{split: str(root / file_name) for split, file_name in SPLITS.items()},
        "names": dict(enumerate(CLASS_NAMES)),
        "nc": len(CLASS_NAMES),
        "channels": 6,
        "ir_dir": ir_dir,
        "yaml_file": str(root / YAML_FILE),
    }


# ---------------------------------------------------------------- release layout
def raw_dir(source: str | Path, split: str, kind: str) -> Path:
    """``SOURCE/<split>/<split>{img,imgr,label,labelr}`` (``kind``: ``rgb``, ``ir``, ``rgb_xml``, ``ir_xml``)."""
    if kind not in RAW_KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(RAW_KINDS)}")
    return Path(source) / _split(split) / f"{split}{RAW_KINDS[kind]}"


def images_in(folder: Path) -> dict[str, Path]:
    """Stem -> image file of a folder (no recursion)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


# ---------------------------------------------------------------- detectors
def is_prepared(root: str | Path) -> bool:
    """Whether ``root`` holds every list file and the images / image / labels folders."""
    root = Path(root)
    return all((root / name).is_file() for name in SPLITS.values()) and all(
        (root / d).is_dir() for d in (RGB_DIR, IR_DIR, LABEL_DIR)
    )


def is_raw(source: str | Path) -> bool:
    """Whether ``source`` looks like the release: some ``<split>/<split>img`` folder."""
    return any(raw_dir(source, split, "rgb").is_dir() for split in SPLITS)


def is_fork_layout(source: str | Path) -> bool:
    """Whether ``source`` is the fork's converted layout: ``images/``, ``image/``, ``labels/``, each with a folder
    per split."""
    source = Path(source)
    return all((source / d / split).is_dir() for d in (RGB_DIR, IR_DIR, LABEL_DIR) for split in SPLITS)


# ---------------------------------------------------------------- label files
def parse_label_text(text: str, num_classes: int = len(CLASS_NAMES)) -> tuple[list[tuple[int, ...]], list[str]]:
    """The rows of a YOLO label file and its problems (``"line N: what"``): each line 5 numbers, an integer class
    in 0..num_classes-1, ``xc yc w h`` within [0, 1] and positive ``w`` / ``h`` (a box reaching past the image edge
    is accepted, as ultralytics clips it: the fork's converter does not clip)."""
    rows: list[tuple[Any, ...]] = []
    problems: list[str] = []
    eps = 1e-6
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 5:
            problems.append(f"line {number}: {len(tokens)} values, expected 5 (cls xc yc w h)")
            continue
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            problems.append(f"line {number}: non-numeric values {line.strip()!r}")
            continue
        cls, xc, yc, w, h = values
        if cls != int(cls) or not 0 <= cls < num_classes:
            problems.append(f"line {number}: class {tokens[0]} is not an integer in 0-{num_classes - 1}")
            continue
        if not all(-eps <= v <= 1 + eps for v in (xc, yc, w, h)):
            problems.append(f"line {number}: coordinates outside [0, 1] ({' '.join(tokens[1:])})")
            continue
        if w <= 0 or h <= 0:
            problems.append(f"line {number}: non-positive width or height ({tokens[3]} x {tokens[4]})")
            continue
        rows.append((int(cls), xc, yc, w, h))
    return rows, problems
