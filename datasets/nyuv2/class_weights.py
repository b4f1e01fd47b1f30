"""Median-frequency class weights of the training split, computed once and cached beside the data.

As ESANet's ``DatasetBase.compute_class_weights(weight_mode='median_frequency')`` (``src/datasets/dataset_base.py``,
which MMANet's copy shares and its ``train_missing_amp.py`` passes to the loss): over the images of the split, per
class c of 0..40,

- ``pixels[c]``: its pixels over all images (``np.bincount`` of each label map);
- ``image_pixels[c]``: the pixels -- all of them, void included -- of the images in which c appears at all;

then void is dropped, ``frequency[c] = pixels[c] / image_pixels[c]`` and ``weight[c] = median(frequency) /
frequency[c]`` for the 40 classes (the median over all 40). A class that appears in no image has 0 / 0: ESANet's
weights are then NaN and it raises ("class weighting contains NaNs"); ``absent="error"`` does the same, naming the
classes. ``absent="zero"`` (the synthetic sets, which use a handful of the 40 classes) takes the median over the
present classes and gives the absent ones weight 0 -- a class that is never a training target never meets its
weight in the loss. On the real training split all 40 classes occur.

The cache: ``ROOT/class_weights.json`` (the weights, both counts, the absent classes and the policy, and the SHA-256
of ``train.txt``: a changed list is recomputed) and, for ESANet's own tools, the same weights as ESANet pickles
them (``weighting_median_frequency_1+40_train.pickle``: a float64 array of 40). Only the JSON is read here
(unpickling a file can run code).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mwam_harness.datasets.files import atomic_write, write_text_atomic
from mwam_harness.datasets.nyuv2 import NUM_CLASSES, SPLITS
from mwam_harness.datasets.nyuv2.layout import ESANET_WEIGHTS_FILE, WEIGHTS_FILE, image_path, read_split

ABSENT_POLICIES = ("error", "zero")
SPLIT = "train"


def label_counts(label: np.ndarray, num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels, image_pixels)`` of one label map, each (num_classes + 1,) int64 (void first); ValueError for a
    label above ``num_classes``."""
    label = np.asarray(label)
    counts = np.bincount(label.ravel(), minlength=num_classes + 1)
    if counts.size > num_classes + 1:
        above = np.flatnonzero(counts[num_classes + 1 :]) + num_classes + 1
        raise ValueError(f"labels outside 0-{num_classes}: {above[:5].tolist()}")
    return counts.astype(np.int64), (counts > 0).astype(np.int64) * label.size


def median_frequency(
    pixels: np.ndarray, image_pixels: np.ndarray, absent: str = "error"
) -> tuple[np.ndarray, list[int]]:
    """The (C,) float64 weights from the (C + 1,) counts (void first, dropped) and the absent classes (1-based);
    see the module docstring for ``absent``."""
    if absent not in ABSENT_POLICIES:
        raise ValueError(f"absent must be one of {ABSENT_POLICIES}, got {absent!r}")
    pixels = np.asarray(pixels, dtype=np.float64)[1:]
    image_pixels = np.asarray(image_pixels, dtype=np.float64)[1:]
    present = image_pixels > 0
    missing = [int(c) + 1 for c in np.flatnonzero(~present)]
    if missing and (absent == "error" or not present.any()):
        raise ValueError(
            f"classes {missing} appear in no image of the split: their median-frequency weight is 0 / 0 (ESANet "
            "raises 'class weighting contains NaNs')"
        )
    frequency = np.zeros_like(pixels)
    frequency[present] = pixels[present] / image_pixels[present]
    weights = np.zeros_like(pixels)
    weights[present] = np.median(frequency[present]) / frequency[present]
    return weights, missing


def _read_label(path: Path) -> np.ndarray:
    import cv2

    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise ValueError(f"{path}: missing or unreadable label image")
    if label.ndim != 2:
        raise ValueError(f"{path}: a single-channel label image expected, got shape {label.shape}")
    return label


def count_split(
    root: str | Path, split: str = SPLIT, progress: bool = False, workers: int = 1
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(pixels, image_pixels, images)`` summed over the label maps of ``split`` (``workers`` threads)."""
    from tqdm.auto import tqdm

    root = Path(root)
    indices = read_split(root, split)
    pixels = np.zeros(NUM_CLASSES + 1, np.int64)
    image_pixels = np.zeros(NUM_CLASSES + 1, np.int64)

    def counts(index: str) -> tuple[np.ndarray, np.ndarray]:
        path = image_path(root, split, index, "label")
        label = _read_label(path)
        try:
            return label_counts(label)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for p, q in tqdm(pool.map(counts, indices), total=len(indices), desc="class weights", disable=not progress):
            pixels += p
            image_pixels += q
    return pixels, image_pixels, len(indices)


def _list_digest(root: Path) -> str:
    return hashlib.sha256((root / SPLITS[SPLIT]).read_bytes()).hexdigest()


def write_class_weights(
    root: str | Path, absent: str = "error", progress: bool = False, workers: int = 1
) -> np.ndarray:
    """Compute the training split's weights and write both cache files atomically; returns the weights."""
    root = Path(root)
    digest = _list_digest(root)
    pixels, image_pixels, images = count_split(root, SPLIT, progress=progress, workers=workers)
    weights, missing = median_frequency(pixels, image_pixels, absent)
    record = {
        "weighting": "median_frequency",
        "split": SPLIT,
        "images": images,
        "list_sha256": digest,
        "absent_policy": absent,
        "absent": missing,
        "weights": [float(w) for w in weights],
        "pixels": [int(p) for p in pixels],
        "image_pixels": [int(p) for p in image_pixels],
    }
    write_text_atomic(root / WEIGHTS_FILE, json.dumps(record, indent=1) + "\n")

    def dump(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            pickle.dump(np.asarray(weights, dtype=np.float64), handle)

    atomic_write(root / ESANET_WEIGHTS_FILE, dump)
    return weights


def read_cache(root: str | Path) -> dict[str, Any] | None:
    """The cache record when it is valid for the current ``train.txt`` (40 finite weights >= 0), else None."""
    root = Path(root)
    try:
        record = json.loads((root / WEIGHTS_FILE).read_text(encoding="utf-8"))
        weights = [float(w) for w in record["weights"]]
        fresh = record.get("list_sha256") == _list_digest(root)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not fresh or len(weights) != NUM_CLASSES or not all(math.isfinite(w) and w >= 0 for w in weights):
        return None
    return record


#: How to write the class-weight cache again (in the messages about a bad one).
REBUILD = (
    "delete it and it is computed again from the training labels when a run or `python -m reproduce prepare nyuv2 "
    "SOURCE ROOT` next reads it"
)


def cache_problem(root: str | Path) -> str | None:
    """What is wrong with an existing cache file (None: absent, stale -- both recomputed when read -- or valid): torn
    or unreadable JSON, no weights, or weights that are not 40 finite numbers >= 0."""
    path = Path(root) / WEIGHTS_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        weights = [float(w) for w in record["weights"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"unreadable class-weight cache, torn or not written here ({type(error).__name__}: {error}); {REBUILD}"
    if len(weights) != NUM_CLASSES or not all(math.isfinite(w) and w >= 0 for w in weights):
        return f"the class-weight cache must hold {NUM_CLASSES} finite weights >= 0; {REBUILD}"
    return None


def _default_policy(root: Path) -> str:
    """The absent-class policy of a root without a readable cache: ``zero`` for a synthetic set (its generator's),
    else ``error`` (``prepare``'s default)."""
    from mwam_harness.datasets.registry import read_synthetic_marker

    marker = read_synthetic_marker(root)
    return "zero" if isinstance(marker, dict) and marker.get("kind") == "nyuv2" else "error"


@functools.lru_cache(maxsize=16)
def _cached(root: str, digest: str, stamp: int | None) -> tuple[float, ...]:
    record = read_cache(root)
    if record is None:
        policy = _default_policy(Path(root))
        try:
            policy = json.loads((Path(root) / WEIGHTS_FILE).read_text(encoding="utf-8")).get("absent_policy", policy)
        except (OSError, ValueError, AttributeError):
            pass
        policy = policy if policy in ABSENT_POLICIES else "error"
        try:
            weights = write_class_weights(root, absent=policy)
        except OSError:  # a read-only root: computed, not cached on disk
            pixels, image_pixels, _ = count_split(root)
            weights, _ = median_frequency(pixels, image_pixels, policy)
        return tuple(float(w) for w in weights)
    return tuple(float(w) for w in record["weights"])


def median_frequency_weights(root: str | Path) -> np.ndarray:
    """The (40,) float64 median-frequency weights of ``root``'s training split: read from the cache, computed (and
    cached) when it is missing or stale; memoised per root, list and cache file. ValueError naming the cache file
    when it is torn or holds no valid weights (:func:`cache_problem`, what ``check-data`` reports)."""
    root = Path(root).resolve()
    path = root / WEIGHTS_FILE
    problem = cache_problem(root)
    if problem is not None:
        raise ValueError(f"{path}: {problem}")
    stamp = path.stat().st_mtime_ns if path.is_file() else None
    return np.array(_cached(str(root), _list_digest(root), stamp), dtype=np.float64)
