"""``python -m reproduce prepare dronevehicle SOURCE OUT``: the prepared layout (``layout.py``) from the release.

- **Release** ``SOURCE`` (``{train,val,test}/{split}img``, ``{split}imgr``, ``{split}label``, ``{split}labelr``):
  every RGB image must have its IR twin (same file name) and an annotation XML (the IR ones, ``{split}labelr``, by
  default -- what converters for the fork's layout usually take, the paper does not say; ``annotations="rgb"``
  for ``{split}label``); both images must be
  840 x 712. Both are cropped to ``im[100:612, 100:740]`` (640 x 512) and written as JPEG (OpenCV, quality 95). Each
  object's ``<polygon>`` (``x1..y4``) or ``<bndbox>`` becomes the horizontal box of its corners' min / max, minus the
  100-px border, clipped to the crop, as ``cls xc yc w h`` normalised by 640 / 512 (mujianyu/TwoStream_Yolov8's
  ``dataProcess/xmlToTxt.py`` plus the clipping); a box that lies in the border only is empty after clipping and
  dropped (counted in ``OUT/prepare.json`` and reported). Class names are mapped with ``CLASS_ALIASES`` (the
  release's misspellings of freight car included).
- **Fork layout** ``SOURCE`` (``images/<split>``, ``image/<split>``, ``labels/<split>`` of the fork's converted
  data): the split folders are symlinked into ``OUT``; the pairs, their sizes (image headers) and the label files
  are checked.

Either way ``OUT/{train,val,test}.txt`` and ``OUT/dronevehicle.yaml`` are written. The whole output is built in a
folder beside ``OUT`` and moved onto it when complete (``datasets/files.py``), so an interrupted or failing run
leaves ``OUT`` as it was. An output prepared from the same source files (names, sizes, modification times) with the
same options is reused (``OUT/prepare.json``). Every bad input is reported before it stops (:class:`PrepareError`,
a ValueError naming each file at fault; FileNotFoundError when ``SOURCE`` does not exist).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mwam_harness.datasets.checking import PrepareError, prepare_error
from mwam_harness.datasets.dronevehicle import BORDER, CLASS_ALIASES, IMAGE_SIZE, RAW_SIZE, SPLITS
from mwam_harness.datasets.dronevehicle.layout import (
    IR_DIR,
    LABEL_DIR,
    RGB_DIR,
    YAML_FILE,
    image_dir,
    images_in,
    is_fork_layout,
    is_prepared,
    is_raw,
    label_path,
    list_entry,
    parse_label_text,
    raw_dir,
    yaml_text,
)
from mwam_harness.datasets.files import install_directory, replaceable_directory, write_text_atomic

MANIFEST = "prepare.json"
FORMAT = 1
ANNOTATIONS = ("ir", "rgb")
JPEG_QUALITY = 95


# ---------------------------------------------------------------- annotations
def _number(element: ET.Element, tag: str, where: str) -> float:
    child = element.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise ValueError(f"{where}: no <{tag}> coordinate")
    try:
        value = float(child.text)
    except ValueError:
        raise ValueError(f"{where}: non-numeric <{tag}> {child.text.strip()!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{where}: non-finite <{tag}> {child.text.strip()!r}")
    return value


def read_annotation(path: str | Path) -> list[tuple[int, float, float, float, float]]:
    """The objects of one release XML as ``(class id, xmin, ymin, xmax, ymax)`` in pixels of the 840 x 712 image
    (the polygon's corners' min / max, or the bndbox). ValueError naming the file: unparsable XML, an object without
    a class or coordinates, an unknown class name, non-numeric coordinates, a box entirely outside the image."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as error:
        raise ValueError(f"{path}: unreadable annotation XML ({error})") from None
    boxes = []
    height, width = RAW_SIZE
    for k, obj in enumerate(root.iter("object"), start=1):
        where = f"{path}: object {k}"
        name_node = obj.find("name")
        name = (name_node.text or "").strip() if name_node is not None else ""
        if not name:
            raise ValueError(f"{where}: no <name>")
        if name not in CLASS_ALIASES:
            raise ValueError(f"{where}: unknown class {name!r} (known: {', '.join(sorted(CLASS_ALIASES))})")
        polygon, bndbox = obj.find("polygon"), obj.find("bndbox")
        if polygon is not None:
            xs = [_number(polygon, f"x{i}", where) for i in range(1, 5)]
            ys = [_number(polygon, f"y{i}", where) for i in range(1, 5)]
        elif bndbox is not None:
            xs = [_number(bndbox, "xmin", where), _number(bndbox, "xmax", where)]
            ys = [_number(bndbox, "ymin", where), _number(bndbox, "ymax", where)]
        else:
            raise ValueError(f"{where} ({name}): no <polygon> or <bndbox> coordinates")
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        if x1 < 0 or y1 < 0 or x0 > width or y0 > height:
            raise ValueError(
                f"{where} ({name}): box {x0:g},{y0:g} - {x1:g},{y1:g} lies entirely outside the "
                f"{width} x {height} image"
            )
        boxes.append((CLASS_ALIASES[name], x0, y0, x1, y1))
    return boxes


def yolo_rows(boxes: Sequence[tuple[int, float, float, float, float]]) -> tuple[list[str], int]:
    """``(label lines "cls xc yc w h", number dropped)``: boxes moved by the border, clipped to the 640 x 512 crop,
    normalised; a box empty after clipping is dropped."""
    height, width = IMAGE_SIZE
    rows, dropped = [], 0
    for cls, x0, y0, x1, y1 in boxes:
        x0, x1 = max(0.0, x0 - BORDER), min(float(width), x1 - BORDER)
        y0, y1 = max(0.0, y0 - BORDER), min(float(height), y1 - BORDER)
        if x1 <= x0 or y1 <= y0:
            dropped += 1
            continue
        xc, yc, w, h = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height
        rows.append(f"{cls} {xc:.6f} {yc:.6f} {w:.6f} {h:.6f}")
    return rows, dropped


# ---------------------------------------------------------------- one pair of the release
def _read(path: Path) -> Any:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: unreadable image (cv2.imread returned nothing)")
    return image


def convert_pair(rgb: Path, ir: Path, xml: Path, out_dir: Path, split: str) -> tuple[int, int]:
    """Crop and write one pair and its label file into ``out_dir``; ``(objects written, objects dropped)``.
    ValueError naming the file at fault."""
    import cv2

    rows, dropped = yolo_rows(read_annotation(xml))
    rgb_image, ir_image = _read(rgb), _read(ir)
    if rgb_image.shape[:2] != ir_image.shape[:2]:
        raise ValueError(
            f"{rgb}: RGB is {rgb_image.shape[1]} x {rgb_image.shape[0]} but its IR twin {ir} is "
            f"{ir_image.shape[1]} x {ir_image.shape[0]}"
        )
    if rgb_image.shape[:2] != RAW_SIZE:
        raise ValueError(
            f"{rgb} (and {ir}): {rgb_image.shape[1]} x {rgb_image.shape[0]}, expected the release's "
            f"{RAW_SIZE[1]} x {RAW_SIZE[0]} (840 x 712 with a {BORDER}-px border)"
        )
    height, width = IMAGE_SIZE
    crop = (slice(BORDER, BORDER + height), slice(BORDER, BORDER + width))
    name = rgb.stem + ".jpg"
    for kind, image in (("rgb", rgb_image), ("ir", ir_image)):
        target = image_dir(out_dir, split, kind) / name
        if not cv2.imwrite(str(target), image[crop], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"{target}: cv2.imwrite failed")
    (image_dir(out_dir, split, "label") / f"{rgb.stem}.txt").write_text("".join(f"{r}\n" for r in rows))
    return len(rows), dropped


def _convert_job(job: tuple[str, str, str, str, str]) -> tuple[str, str, int, int, str | None]:
    rgb, ir, xml, out_dir, split = job
    try:
        written, dropped = convert_pair(Path(rgb), Path(ir), Path(xml), Path(out_dir), split)
    except (ValueError, OSError) as error:
        return split, Path(rgb).name, 0, 0, str(error)
    return split, Path(rgb).name, written, dropped, None


# ---------------------------------------------------------------- inspecting the inputs
def _stamp(files: Sequence[Path], base: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(base)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _pair_problems(rgb: dict[str, Path], ir: dict[str, Path], rgb_dir: Path, ir_dir: Path) -> list[str]:
    problems = [f"{path}: RGB image without its IR twin (expected {ir_dir / path.name})"
                for stem, path in rgb.items() if stem not in ir]  # fmt: skip
    problems += [f"{path}: IR image without its RGB twin (expected {rgb_dir / path.name})"
                 for stem, path in ir.items() if stem not in rgb]  # fmt: skip
    return problems


def inspect_release(
    source: str | Path, annotations: str = "ir"
) -> tuple[dict[str, list[tuple[Path, Path, Path]]], list[str]]:
    """Per split the ``(rgb, ir, xml)`` triples of a release and every problem found without decoding anything
    (missing folders, unpaired images, images without an annotation XML)."""
    if annotations not in ANNOTATIONS:
        raise PrepareError(f"annotations must be one of {ANNOTATIONS}, not {annotations!r}")
    source = Path(source)
    xml_kind = "ir_xml" if annotations == "ir" else "rgb_xml"
    triples: dict[str, list[tuple[Path, Path, Path]]] = {}
    problems: list[str] = []
    for split in SPLITS:
        folders = {kind: raw_dir(source, split, kind) for kind in ("rgb", "ir", xml_kind)}
        missing = [
            f"{folder}: missing folder of the {split} split" for folder in folders.values() if not folder.is_dir()
        ]
        if missing:
            problems += missing
            continue
        rgb, ir = images_in(folders["rgb"]), images_in(folders["ir"])
        problems += _pair_problems(rgb, ir, folders["rgb"], folders["ir"])
        if not rgb:
            problems.append(f"{folders['rgb']}: no images")
        triples[split] = []
        for stem, path in rgb.items():
            xml = folders[xml_kind] / f"{stem}.xml"
            if not xml.is_file():
                problems.append(f"{path}: no annotation file {xml} (an image without objects still has an XML)")
            elif stem in ir:
                triples[split].append((path, ir[stem], xml))
    return triples, problems


def _image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the image header (PIL reads no pixels), None when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None


def inspect_fork(source: str | Path, workers: int = 4) -> tuple[dict[str, list[str]], list[str], list[Path]]:
    """Per split the sorted RGB file names of a fork layout, every problem (unpaired images, sizes that differ,
    missing or malformed label files) and the files looked at (for the stamp)."""
    source = Path(source)
    names: dict[str, list[str]] = {}
    problems: list[str] = []
    files: list[Path] = []
    pairs: list[tuple[Path, Path]] = []
    for split in SPLITS:
        rgb_dir, ir_dir = image_dir(source, split, "rgb"), image_dir(source, split, "ir")
        rgb, ir = images_in(rgb_dir), images_in(ir_dir)
        problems += _pair_problems(rgb, ir, rgb_dir, ir_dir)
        if not rgb:
            problems.append(f"{rgb_dir}: no images")
        names[split] = sorted(p.name for p in rgb.values())
        for stem, path in rgb.items():
            label = label_path(path)
            files.append(path)
            if stem in ir:
                pairs.append((path, ir[stem]))
                files.append(ir[stem])
            if not label.is_file():
                problems.append(f"{path}: no label file {label}")
                continue
            files.append(label)
            _, bad = parse_label_text(label.read_text(encoding="utf-8-sig"))
            problems += [f"{label}: {message}" for message in bad]

    def sizes(pair: tuple[Path, Path]) -> str | None:
        a, b = (_image_size(p) for p in pair)
        if a is None or b is None:
            return f"{pair[0] if a is None else pair[1]}: unreadable image"
        if a != b:
            return f"{pair[0]}: RGB is {a[0]} x {a[1]} but its IR twin {pair[1]} is {b[0]} x {b[1]}"
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems += [p for p in pool.map(sizes, pairs) if p]
    return names, problems, files


# ---------------------------------------------------------------- the whole set
def read_manifest(root: str | Path) -> dict[str, Any]:
    """``ROOT/prepare.json`` (``{}`` when absent or unreadable)."""
    try:
        manifest = json.loads((Path(root) / MANIFEST).read_text(encoding="utf-8"))
        return manifest if isinstance(manifest, dict) else {}
    except (OSError, ValueError):
        return {}


def write_lists(out_dir: Path, names: dict[str, list[str]], ir_dir: str = IR_DIR) -> None:
    """The list files (sorted ``./images/<split>/NAME.jpg``) and ``dronevehicle.yaml``."""
    for split, file_name in SPLITS.items():
        write_text_atomic(out_dir / file_name, "".join(f"{list_entry(split, n)}\n" for n in sorted(names[split])))
    write_text_atomic(out_dir / YAML_FILE, yaml_text(ir_dir))


def convert_release(
    triples: dict[str, list[tuple[Path, Path, Path]]], out_dir: Path, progress: bool = True, workers: int = 1
) -> dict[str, Any]:
    """Convert every triple into ``out_dir`` (a folder being built) and write the lists; the counts (``images``,
    ``objects``, ``dropped`` per split). PrepareError listing every pair that cannot be converted."""
    from tqdm.auto import tqdm

    for split in SPLITS:
        for kind in ("rgb", "ir", "label"):
            image_dir(out_dir, split, kind).mkdir(parents=True, exist_ok=True)
    jobs = [(str(r), str(i), str(x), str(out_dir), split) for split, items in triples.items() for r, i, x in items]
    counts = {key: dict.fromkeys(SPLITS, 0) for key in ("images", "objects", "dropped")}
    errors: list[str] = []
    parallel = workers > 1 and len(jobs) > 8
    with ProcessPoolExecutor(max_workers=workers) if parallel else contextlib.nullcontext() as pool:
        results = pool.map(_convert_job, jobs, chunksize=16) if parallel else map(_convert_job, jobs)
        for split, _, written, dropped, error in tqdm(results, total=len(jobs), desc="prepare DroneVehicle",
                                                      disable=not progress or not jobs):  # fmt: skip
            if error:
                errors.append(error)
                continue
            counts["images"][split] += 1
            counts["objects"][split] += written
            counts["dropped"][split] += dropped
    if errors:
        raise prepare_error(f"{len(errors)} of {len(jobs)} image pairs cannot be prepared", errors)
    write_lists(out_dir, {split: [r.stem + ".jpg" for r, _, _ in items] for split, items in triples.items()})
    return counts


def _link_fork(source: Path, out_dir: Path, names: dict[str, list[str]]) -> None:
    for folder in (RGB_DIR, IR_DIR, LABEL_DIR):
        for split in SPLITS:
            link = out_dir / folder / split
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((source / folder / split).resolve(), target_is_directory=True)
    write_lists(out_dir, names)


def _is_ours(directory: Path) -> bool:
    return read_manifest(directory).get("format") == FORMAT


def prepare_dronevehicle(
    source: str | Path,
    out_dir: str | Path,
    annotations: str = "ir",
    progress: bool = True,
    workers: int = 1,
    seed: int = 0,
    split_files: Sequence[str | Path] | None = None,
) -> Path:
    """Prepare ``source`` (the release or the fork's converted layout, see the module docstring) into ``out_dir``;
    returns ``out_dir``. ``annotations``: the labels from the IR (default) or the RGB XML files. ``workers``:
    processes converting pairs. ``seed`` is accepted for the command line and unused (the split is the release's);
    ``split_files`` is refused (the release's folders are the split)."""
    del seed
    if split_files:
        raise PrepareError("DroneVehicle's split is the release's train / val / test folders: no split files")
    if annotations not in ANNOTATIONS:
        raise PrepareError(f"annotations must be one of {ANNOTATIONS}, not {annotations!r}")
    source, out_dir = Path(source), Path(out_dir)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such DroneVehicle source folder")
    src, out = source.resolve(), out_dir.resolve()
    if src == out or out in src.parents or src in out.parents:
        raise PrepareError(f"SOURCE {source} and OUT {out_dir} must not contain each other")
    if is_raw(source):
        kind = "release"
        triples, problems = inspect_release(source, annotations)
        if problems:
            raise prepare_error(f"cannot prepare DroneVehicle from {source}", problems)
        files = [p for items in triples.values() for triple in items for p in triple]
        options: dict[str, Any] = {"annotations": annotations}
    elif is_fork_layout(source):
        kind = "fork"
        names, problems, files = inspect_fork(source, workers=max(4, workers))
        if problems:
            raise prepare_error(f"cannot use the converted folder {source}", problems)
        options = {}
    else:
        raise PrepareError(
            f"{source} is neither the DroneVehicle release ({{train,val,test}}/<split>img, <split>imgr, <split>label, "
            "<split>labelr) nor the fork's converted layout (images/, image/, labels/ with train, val, test folders)"
        )
    stamp = {"format": FORMAT, "kind": kind, "source": str(src), "options": options, "files": _stamp(files, source)}
    manifest = read_manifest(out_dir)
    if is_prepared(out_dir) and all(manifest.get(key) == value for key, value in stamp.items()):
        return out_dir  # the same source, the same options: reuse
    if not replaceable_directory(out_dir, _is_ours):
        raise PrepareError(f"{out_dir} is neither empty nor a DroneVehicle root prepared here: choose another OUT")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build = out_dir.with_name(f".{out_dir.name}.build-{uuid.uuid4().hex[:8]}")
    build.mkdir()
    try:
        if kind == "release":
            counts = convert_release(triples, build, progress=progress, workers=workers)
        else:
            _link_fork(source, build, names)
            counts = {"images": {split: len(names[split]) for split in SPLITS}}
        entry = {**stamp, **counts}
        write_text_atomic(build / MANIFEST, json.dumps(entry, indent=1) + "\n")
        install_directory(build, out_dir, lambda p: read_manifest(p).get("files") == stamp["files"] and is_prepared(p))
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
    dropped = sum(counts.get("dropped", {}).values())
    if dropped and progress:
        print(
            f"prepare dronevehicle: {dropped} boxes lie in the {BORDER}-px border only and were dropped "
            f"(per split: {counts['dropped']}; see {out_dir / MANIFEST})",
            file=sys.stderr,
        )
    return out_dir
