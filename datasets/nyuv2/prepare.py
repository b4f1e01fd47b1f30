"""``python -m reproduce prepare nyuv2 SOURCE OUT``: ESANet's prepared layout from the NYU-Depth V2 download.

- **Download** ``SOURCE`` (a folder holding ``nyu_depth_v2_labeled.mat``, ``splits.mat`` and ``classMapping40.mat``,
  or the ``.mat`` file with the other two beside it): the steps of ESANet's ``src/datasets/nyuv2/prepare_dataset.py``
  for the files the hosts read. The labelled set is MATLAB v7.3 (HDF5), read with h5py one image at a time:
  ``images`` (N, 3, W, H) uint8, ``depths`` (N, W, H) metres, ``labels`` (N, W, H) with NYU's 894 classes (0 =
  unlabelled); ESANet's ``dimshuffle(..., 'bc10', 'b01c')`` / ``('b10', 'b01')`` is the transpose to (H, W, 3) /
  (H, W). Per image of ``splits.mat``'s ``trainNdxs`` / ``testNdxs`` (1-based, ``NNNN`` = the index with four
  digits): ``OUT/<split>/rgb/NNNN.png`` (written as BGR, as ``cv2.imwrite(cv2.cvtColor(rgb, COLOR_RGB2BGR))``),
  ``OUT/<split>/depth/NNNN.png`` = ``(depth * 1e3).astype(uint16)`` (millimetres, truncated as ESANet's),
  ``OUT/<split>/labels_40/NNNN.png`` = ``concat([0], mapClass)[label]`` as uint8 (0 = void, 1-40), ``mapClass``
  the (1, 894) map of NYU's ``classMapping40.mat`` -- a file ESANet ships in its repository (and the NYU toolbox /
  VainF/nyuv2-python-toolkit do); the user supplies it here, beside the ``.mat`` file. ESANet's other outputs
  (``depth_raw``, ``labels_894``, ``labels_13``, the coloured label images) are not written: nothing here reads them.
  Then ``OUT/train.txt`` / ``test.txt`` (the indices in ``splits.mat`` order, ``%04d``) and
  ``OUT/class_names_1+40.txt``.
- **ESANet-prepared** ``SOURCE`` (``train.txt``, ``test.txt``, ``{train,test}/{rgb,depth,labels_40}/``): the listed
  files are symlinked, not copied, and the lists copied.

Either way the median-frequency class weights of the training split are computed and cached in ``OUT``
(``class_weights.py``). Every file is written atomically (a temporary name, then a rename); an image's three PNGs
are written only after its arrays are read and checked, and renamed into place only when all three are encoded, so
an interrupted or failing run leaves no half-written file and no image with only some of its files. Images already
prepared from the same source files (sizes and modification times, ``OUT/prepare.json``) are skipped: running it
again resumes and is cheap. Every bad input is reported before it stops (:class:`PrepareError`, naming each file
and image at fault); the split lists and the weights are written only when every image is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mwam_harness.datasets.files import write_text_atomic
from mwam_harness.datasets.nyuv2 import CLASS_NAMES, NUM_CLASSES, SPLITS
from mwam_harness.datasets.nyuv2.class_weights import read_cache, write_class_weights
from mwam_harness.datasets.nyuv2.layout import (
    DOWNLOAD_FILES,
    MAPPING_FILE,
    MAT_FILE,
    SPLITS_FILE,
    download_files,
    image_path,
    is_download,
    is_prepared,
    read_split,
    sample_paths,
)

MANIFEST = "prepare.json"
CLASS_NAMES_FILE = "class_names_1+40.txt"
NYU_CLASSES = 894
#: Where each download file comes from (shown when one is missing).
WHERE = {
    MAT_FILE: "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat",
    SPLITS_FILE: "NYU's official 795 / 654 split: ESANet's src/datasets/nyuv2/splits.mat (github.com/TUI-NICR/ESANet)",
    MAPPING_FILE: "NYU's 894 -> 40 class map: ESANet's src/datasets/nyuv2/classMapping40.mat "
    "(github.com/TUI-NICR/ESANet; also VainF/nyuv2-python-toolkit)",
}
_SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}


class PrepareError(ValueError):
    """Input that cannot be prepared; the message names every file and image at fault."""


# ---------------------------------------------------------------- reading the download
def read_mapping(path: Path) -> np.ndarray:
    """``concat([0], mapClass)``: NYU class (0 = unlabelled, 1-894) -> 40-class label (0 = void, 1-40), uint8."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except (OSError, ValueError, NotImplementedError, TypeError) as error:
        raise ValueError(f"{path}: unreadable MATLAB file ({type(error).__name__}: {error})") from None
    if "mapClass" not in mat:
        raise ValueError(f"{path}: no 'mapClass' array (NYU's classMapping40.mat holds it)")
    classes = np.asarray(mat["mapClass"]).ravel()
    if classes.size != NYU_CLASSES:
        raise ValueError(f"{path}: mapClass has {classes.size} entries, expected {NYU_CLASSES} (one per NYU class)")
    if not np.issubdtype(classes.dtype, np.number) or classes.min() < 0 or classes.max() > NUM_CLASSES:
        raise ValueError(f"{path}: mapClass values must lie in 0-{NUM_CLASSES}")
    return np.concatenate([[0], classes]).astype(np.uint8)


def _indices(values: Any, where: str, total: int) -> list[int]:
    array = np.asarray(values).ravel()
    if array.size == 0:
        raise ValueError(f"{where} is empty")
    if not np.issubdtype(array.dtype, np.number) or np.any(array != np.round(array)):
        raise ValueError(f"{where} must hold integer image numbers")
    numbers = [int(v) for v in array]
    outside = [n for n in numbers if not 1 <= n <= total]
    if outside:
        raise ValueError(f"{where} names images outside 1-{total} (1-based): {outside[:5]}")
    duplicates = sorted(n for n, count in Counter(numbers).items() if count > 1)
    if duplicates:
        raise ValueError(f"{where} names images twice: {duplicates[:5]}")
    return numbers


def read_splits_mat(path: Path, total: int) -> dict[str, list[int]]:
    """``{"train": [...], "test": [...]}``: the 1-based image numbers of ``splits.mat`` (trainNdxs, testNdxs)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except (OSError, ValueError, NotImplementedError, TypeError) as error:
        raise ValueError(f"{path}: unreadable MATLAB file ({type(error).__name__}: {error})") from None
    missing = [key for key in _SPLIT_KEYS.values() if key not in mat]
    if missing:
        raise ValueError(f"{path}: no {' / '.join(missing)} (NYU's splits.mat holds trainNdxs and testNdxs)")
    return {split: _indices(mat[key], f"{path}: {key}", total) for split, key in _SPLIT_KEYS.items()}


def read_split_lists(paths: Sequence[str | Path], total: int) -> dict[str, list[int]]:
    """``--split-files``: one ``splits.mat``, or a train and a test list of 1-based image numbers (one a line)."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].suffix == ".mat":
        return read_splits_mat(paths[0], total)
    if len(paths) != 2:
        raise PrepareError("split_files: give a splits.mat, or the train list and the test list")
    splits = {}
    for split, path in zip(SPLITS, paths, strict=True):
        if not path.is_file():
            raise PrepareError(f"{path}: no such split list")
        tokens = path.read_text(encoding="utf-8").split()
        if not all(t.isdigit() for t in tokens):
            raise PrepareError(f"{path}: a split list holds 1-based image numbers, one a line")
        try:
            splits[split] = _indices(np.array([int(t) for t in tokens]), str(path), total)
        except ValueError as error:
            raise PrepareError(str(error)) from None
    return splits


def _mat_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of ``images``, ``depths``, ``labels`` of the labelled ``.mat``; ValueError naming what is wrong."""
    import h5py

    try:
        with h5py.File(path, "r") as mat:
            missing = [name for name in ("images", "depths", "labels") if name not in mat]
            if missing:
                raise ValueError(f"{path}: no dataset {', '.join(missing)} (the labelled NYU-Depth V2 has all three)")
            shapes = {name: tuple(mat[name].shape) for name in ("images", "depths", "labels")}
            dtypes = {name: mat[name].dtype for name in ("images", "depths", "labels")}
    except OSError as error:
        raise ValueError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({error})") from None
    images, depths, labels = shapes["images"], shapes["depths"], shapes["labels"]
    if len(images) != 4 or images[1] != 3 or len(depths) != 3 or len(labels) != 3:
        raise ValueError(
            f"{path}: images {images}, depths {depths}, labels {labels}; expected (N, 3, W, H), (N, W, H), (N, W, H)"
        )
    if not (images[0] == depths[0] == labels[0] and images[2:] == depths[1:] == labels[1:]):
        raise ValueError(f"{path}: images {images}, depths {depths} and labels {labels} disagree in N, W or H")
    if dtypes["images"] != np.uint8 or not np.issubdtype(dtypes["labels"], np.integer):
        got = f"{dtypes['images']}, {dtypes['labels']}"
        raise ValueError(f"{path}: images must be uint8 and labels integers, got {got}")
    if not np.issubdtype(dtypes["depths"], np.floating):
        raise ValueError(f"{path}: depths must be floating point metres, got {dtypes['depths']}")
    return shapes


def inspect_download(source: str | Path, split_files: Sequence[str | Path] | None = None) -> tuple[dict, list[str]]:
    """The facts of a download (``mat``, ``mapping`` (895,), ``splits``, ``shapes``) and every problem found, without
    reading the images (``check-data`` on a download, and the first step of ``prepare``)."""
    files = download_files(Path(source))
    problems, facts = [], {"files": files}
    for key, name in (("mat", MAT_FILE), ("splits", SPLITS_FILE), ("mapping", MAPPING_FILE)):
        if key == "splits" and split_files is not None:
            continue
        if not files[key].is_file():
            problems.append(f"{files[key]}: missing ({WHERE[name]})")
    if files["mat"].is_file():
        try:
            facts["shapes"] = _mat_shapes(files["mat"])
        except ValueError as error:
            problems.append(str(error))
    if files["mapping"].is_file():
        try:
            facts["mapping"] = read_mapping(files["mapping"])
        except ValueError as error:
            problems.append(str(error))
    total = facts["shapes"]["images"][0] if "shapes" in facts else None
    if total is not None and (split_files is not None or files["splits"].is_file()):
        try:
            splits = (
                read_split_lists(split_files, total)
                if split_files is not None
                else read_splits_mat(files["splits"], total)
            )
            overlap = sorted(set(splits["train"]) & set(splits["test"]))
            if overlap:
                where = files["splits"] if split_files is None else ", ".join(str(p) for p in split_files)
                raise ValueError(f"{where}: images in both the train and the test split: {overlap[:5]}")
            facts["splits"] = splits
        except ValueError as error:
            problems.append(str(error))
    return facts, problems


# ---------------------------------------------------------------- one image
_OPEN: dict[str, Any] = {}


def _mat(path: str) -> Any:
    """The labelled ``.mat`` opened once per process."""
    import h5py

    if path not in _OPEN:
        _OPEN[path] = h5py.File(path, "r")
    return _OPEN[path]


def _close_all() -> None:
    for handle in _OPEN.values():
        with contextlib.suppress(Exception):
            handle.close()
    _OPEN.clear()


def convert_image(mat: Any, number: int, mapping: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rgb (H, W, 3) uint8 RGB, depth (H, W) uint16 mm, label (H, W) uint8 0-40)`` of image ``number``
    (1-based) of the opened ``.mat``; ValueError saying what is wrong."""
    i = number - 1
    rgb = np.ascontiguousarray(np.asarray(mat["images"][i]).transpose(2, 1, 0))  # (3, W, H) -> (H, W, 3)
    depth_m = np.asarray(mat["depths"][i]).T
    labels = np.asarray(mat["labels"][i]).T
    if not np.isfinite(depth_m).all():
        raise ValueError(f"{int((~np.isfinite(depth_m)).sum())} non-finite depth values")
    depth_mm = depth_m * 1e3
    if depth_mm.min() < 0 or depth_mm.max() >= 65536:
        raise ValueError(f"depth outside 0-65.535 m (min {depth_m.min():.3f}, max {depth_m.max():.3f})")
    if labels.min() < 0 or labels.max() >= mapping.size:
        above = [int(v) for v in np.unique(labels) if not 0 <= v < mapping.size]
        raise ValueError(f"labels outside 0-{mapping.size - 1}: {above[:5]}")
    return rgb, depth_mm.astype(np.uint16), mapping[labels.astype(np.int64)]


def write_sample(out_dir: Path, split: str, index: str, rgb: np.ndarray, depth: np.ndarray, label: np.ndarray) -> None:
    """The three PNGs of one image (RGB written as BGR): all three are encoded to temporary files beside their
    targets first and renamed only when every one is written, so that a failure leaves none of them."""
    import tempfile

    import cv2

    paths = sample_paths(out_dir, split, index)
    images = {"rgb": cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), "depth": depth, "label": label}
    written: dict[str, Path] = {}
    try:
        for kind, path in paths.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.png")
            os.close(fd)
            written[kind] = Path(name)
            if not cv2.imwrite(name, images[kind]):
                raise OSError(f"{path}: cv2.imwrite failed")
            os.chmod(name, 0o644)
        for kind, path in paths.items():
            os.replace(written.pop(kind), path)
    finally:
        for tmp in written.values():
            tmp.unlink(missing_ok=True)


def _prepare_one(job: tuple[str, str, str, int, np.ndarray]) -> tuple[str, int, str | None]:
    mat_path, out_dir, split, number, mapping = job
    try:
        rgb, depth, label = convert_image(_mat(mat_path), number, mapping)
        write_sample(Path(out_dir), split, f"{number:04d}", rgb, depth, label)
    except (ValueError, OSError, KeyError) as error:
        return split, number, f"{split} {number:04d} (image {number} of {Path(mat_path).name}): {error}"
    return split, number, None


# ---------------------------------------------------------------- the whole set
def _stamp(paths: Sequence[Path]) -> list[list[Any]]:
    """Names, sizes and modification times of the source files: what decides whether to prepare again."""
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return manifest if isinstance(manifest, dict) else {}
    except (OSError, ValueError):
        return {}


def write_lists(out_dir: Path, splits: dict[str, list[str]]) -> None:
    for split, file_name in SPLITS.items():
        write_text_atomic(out_dir / file_name, "".join(f"{index}\n" for index in splits[split]))
    write_text_atomic(out_dir / CLASS_NAMES_FILE, "".join(f"{name}\n" for name in CLASS_NAMES))


def _prepare_download(
    source: Path, out_dir: Path, split_files: Sequence[str | Path] | None, workers: int, progress: bool
) -> tuple[dict[str, list[str]], bool]:
    """Convert every listed image not yet prepared; ``(splits, anything written)``."""
    from tqdm.auto import tqdm

    facts, problems = inspect_download(source, split_files)
    if problems:
        raise PrepareError(f"cannot prepare NYU-Depth V2 from {source}:\n  " + "\n  ".join(problems))
    files, splits, mapping = facts["files"], facts["splits"], facts["mapping"]
    stamp = _stamp([files["mat"], files["mapping"]])
    stamp.append(["splits", hashlib.sha256(json.dumps(splits).encode()).hexdigest()])
    manifest_path = out_dir / MANIFEST
    manifest = _read_manifest(manifest_path)
    done: dict[str, set[int]] = {split: set() for split in SPLITS}
    if manifest.get("stamp") == stamp:
        for split in SPLITS:
            done[split] = {n for n in manifest.get("done", {}).get(split, [])
                           if all(p.is_file() for p in sample_paths(out_dir, split, f"{n:04d}").values())}  # fmt: skip
    jobs = [(str(files["mat"]), str(out_dir), split, n, mapping)
            for split in SPLITS for n in splits[split] if n not in done[split]]  # fmt: skip
    errors: list[str] = []

    def record() -> None:
        entry = {"source": str(files["mat"].resolve()), "stamp": stamp,
                 "done": {split: sorted(done[split]) for split in SPLITS},
                 "shape": list(facts["shapes"]["depths"][1:][::-1])}  # fmt: skip
        write_text_atomic(manifest_path, json.dumps(entry, indent=1) + "\n")

    parallel = workers > 1 and len(jobs) > 1
    try:
        with ProcessPoolExecutor(max_workers=workers) if parallel else contextlib.nullcontext() as pool:
            results = pool.map(_prepare_one, jobs, chunksize=8) if parallel else map(_prepare_one, jobs)
            for split, number, error in tqdm(results, total=len(jobs), desc="prepare NYU-Depth V2",
                                             disable=not progress or not jobs):  # fmt: skip
                if error:
                    errors.append(error)
                else:
                    done[split].add(number)
    finally:
        if not parallel:
            _close_all()
        record()  # what is finished stays finished, even after an interruption
    if errors:
        total = sum(len(v) for v in splits.values())
        raise PrepareError(
            f"{len(errors)} of {total} images cannot be prepared (the others are, in {out_dir}):\n  "
            + "\n  ".join(errors)
        )
    return {split: [f"{n:04d}" for n in splits[split]] for split in SPLITS}, bool(jobs)


def _link(target: Path, link: Path) -> None:
    """``link`` -> ``target``, replacing ``link`` atomically."""
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.link-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def _link_prepared(source: Path, out_dir: Path) -> tuple[dict[str, list[str]], bool]:
    """Symlink the listed files of an ESANet-prepared folder into ``out_dir``; ``(splits, anything changed)``."""
    splits, problems = {}, []
    for split in SPLITS:
        try:
            splits[split] = read_split(source, split)
        except (FileNotFoundError, ValueError) as error:
            problems.append(str(error))
    for split, indices in splits.items():
        problems += [f"{split} {index}: missing {path}" for index in indices
                     for path in sample_paths(source, split, index).values() if not path.is_file()]  # fmt: skip
    if problems:
        raise PrepareError(f"cannot use the prepared folder {source}:\n  " + "\n  ".join(problems))
    changed = False
    for split, indices in splits.items():
        for index in indices:
            for kind in ("rgb", "depth", "label"):
                target = image_path(source, split, index, kind).resolve()
                link = image_path(out_dir, split, index, kind)
                if link.is_symlink() and Path(os.readlink(link)) == target:
                    continue
                _link(target, link)
                changed = True
    return splits, changed


def prepare_nyuv2(
    source: str | Path,
    out_dir: str | Path,
    split_files: Sequence[str | Path] | None = None,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    absent_classes: str = "error",
) -> Path:
    """Prepare ``source`` (a download or an ESANet-prepared folder, see the module docstring) into ``out_dir``;
    returns ``out_dir``. ``split_files``: instead of ``splits.mat``, another ``splits.mat`` or a train and a test
    list of 1-based image numbers. ``seed`` is accepted for the command line and unused (the split is NYU's).
    ``absent_classes``: the class-weight policy for a class absent from the training split (``class_weights.py``)."""
    del seed
    source, out_dir = Path(source), Path(out_dir)
    if source.resolve() == out_dir.resolve():
        raise PrepareError("SOURCE and OUT must differ")
    if is_download(source):
        out_dir.mkdir(parents=True, exist_ok=True)
        splits, changed = _prepare_download(source, out_dir, split_files, workers, progress)
    elif is_prepared(source):
        if split_files is not None:
            raise PrepareError(f"{source} is prepared already: its train.txt / test.txt are the split (no split_files)")
        out_dir.mkdir(parents=True, exist_ok=True)
        splits, changed = _link_prepared(source, out_dir)
    else:
        raise PrepareError(
            f"{source} is neither an NYU-Depth V2 download (a folder holding {', '.join(DOWNLOAD_FILES)}) nor a "
            "folder prepared by ESANet's prepare_dataset.py (train.txt, test.txt, {train,test}/{rgb,depth,labels_40}/)"
        )
    listed = {split: (out_dir / name).read_text(encoding="utf-8").split() if (out_dir / name).is_file() else None
              for split, name in SPLITS.items()}  # fmt: skip
    if changed or listed != splits:
        write_lists(out_dir, splits)
    if changed or read_cache(out_dir) is None:
        try:
            write_class_weights(out_dir, absent=absent_classes, progress=progress, workers=max(1, workers))
        except ValueError as error:
            raise PrepareError(f"{out_dir}: the images are prepared, but not the class weights: {error}") from None
    return out_dir
