"""The prepared NYU-Depth V2 layout as a torch Dataset (``ROOT/<split>/{rgb,depth,labels_40}/NNNN.png``, split lists).

A sample is ``{"rgb": (3, h, w) float32, "depth": (1, h, w) float32, "label": (H, W) int64 in 0-40 (0 = void),
"index": position in the split, "name": the four-digit file index}``. Images are read as ESANet reads them
(``cv2.imread(..., IMREAD_UNCHANGED)``, colour converted BGR -> RGB); the preprocessing is the authors'
(``transforms.py``): in training random rescale, crop, HSV jitter (``hsv="mmanet"`` by default, ``"esanet"``) and
flip, then the normalisation; in evaluation RGB and depth resized to ``height`` x ``width`` and the label at its
original size (ESANet's ``label_orig``).

The augmentation's random state is a ``numpy.random.Generator`` seeded from ``(seed, epoch, index)`` only, so that
a sample does not depend on the worker, the process or the order of reading and a resumed run sees the same
samples: call :meth:`Nyuv2Dataset.set_epoch` before each epoch. ``class_weights`` are the training split's
median-frequency weights (``class_weights.py``), which the segmentation2d task's loss uses.
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mwam_harness.datasets.checking import image_file_problem, refuse_split_overlap
from mwam_harness.datasets.nyuv2 import DEPTH_MEAN, DEPTH_STD, NUM_CLASSES, SPLITS
from mwam_harness.datasets.nyuv2.check import expected_size, size_problem
from mwam_harness.datasets.nyuv2.class_weights import median_frequency_weights
from mwam_harness.datasets.nyuv2.layout import list_path, read_split, sample_paths, shared_indices
from mwam_harness.datasets.nyuv2.transforms import SCALE, TrainingAugmentation, normalise_depth, normalise_rgb, rescale


class Nyuv2Error(ValueError):
    """An NYU-Depth V2 image that cannot be used; the message names the file."""


def augment_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of sample ``index``'s augmentation in ``epoch``: a function of the three integers only."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def _imread(path: Path) -> np.ndarray | None:
    """The decoded image at ``path`` (None when missing or undecodable); Nyuv2Error naming it when it is empty or
    cut short (no closing IEND chunk), as ``check-data`` reports it, rather than as merely unreadable."""
    damaged = image_file_problem(path)
    if damaged is not None and damaged != "missing file":
        raise Nyuv2Error(f"{path}: {damaged} (python -m reproduce check-data nyuv2 ROOT lists every bad file)")
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB (the PNG holds BGR, as OpenCV writes it)."""
    image = _imread(path)
    if image is None:
        raise Nyuv2Error(f"{path}: missing or unreadable RGB image")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise Nyuv2Error(f"{path}: an 8-bit 3-channel colour image expected, got {image.dtype} {image.shape}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_plane(path: Path, dtype: type, kind: str, expected: str) -> np.ndarray:
    """A single-channel image of ``dtype``; Nyuv2Error naming ``path`` otherwise."""
    image = _imread(path)
    if image is None:
        raise Nyuv2Error(f"{path}: missing or unreadable {kind} image")
    if image.ndim != 2 or image.dtype != dtype:
        raise Nyuv2Error(f"{path}: {expected} expected, got {image.dtype} {image.shape}")
    return image


def read_depth(path: Path) -> np.ndarray:
    """(H, W) uint16 depth in millimetres."""
    return _read_plane(path, np.uint16, "depth", "a uint16 single-channel depth image (mm)")


def read_label(path: Path) -> np.ndarray:
    """(H, W) uint8 labels 0-40."""
    return _read_plane(path, np.uint8, "label", "a uint8 single-channel label image")


class Nyuv2Dataset(Dataset):
    """One split of a prepared NYU-Depth V2 root (see the module docstring).

    height, width: the network's input size (480 x 640, the authors'; the training crop and the test resize).
    hsv: ``mmanet`` (MMANet's RandomHSV, default) or ``esanet`` (current ESANet's). scale: the random rescale range.
    depth_mean, depth_std: the depth normalisation (ESANet's, mm). invalid_depth_zero: keep depth-0 pixels at 0
    after normalising (ESANet's raw-depth mode; its refined depth, stored here, normalises every pixel).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        train: bool | None = None,
        seed: int = 0,
        height: int = 480,
        width: int = 640,
        hsv: str = "mmanet",
        scale: tuple[float, float] = SCALE,
        depth_mean: float = DEPTH_MEAN,
        depth_std: float = DEPTH_STD,
        invalid_depth_zero: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"NYU-Depth V2 has the splits {sorted(SPLITS)}, not {split!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (height, width)):
            raise ValueError(f"height and width must be positive integers, got {height!r} x {width!r}")
        self.root = Path(root)
        self.split = split
        self.indices = read_split(self.root, split)
        refuse_split_overlap(
            list_path(self.root, split), split, shared_indices(self.root, split, self.indices), "an image", "nyuv2"
        )
        self.paths = [sample_paths(self.root, split, index) for index in self.indices]
        missing = [str(p) for paths in self.paths for p in paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} file(s) of the {split} split are missing under {self.root}, e.g. {missing[0]} "
                "(python -m reproduce check-data nyuv2 ROOT lists them all)"
            )
        self.train = split == "train" if train is None else bool(train)
        self.seed, self.epoch = int(seed), 0
        self.height, self.width = height, width
        self.augmentation = TrainingAugmentation(height, width, tuple(float(s) for s in scale), hsv)
        self.depth_mean, self.depth_std = float(depth_mean), float(depth_std)
        self.invalid_depth_zero = bool(invalid_depth_zero)
        self.image_size = expected_size(self.root)

    @functools.cached_property
    def class_weights(self) -> np.ndarray:
        """The (40,) median-frequency weights of the root's training split (cached beside the data)."""
        weights = median_frequency_weights(self.root)
        if weights.shape != (NUM_CLASSES,):
            raise ValueError(f"{self.root}: {weights.shape[0]} class weights, expected {NUM_CLASSES}")
        return weights

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch`` (each (seed, epoch, index) always gives the same sample)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        mode = f"train, hsv {self.augmentation.hsv}" if self.train else "eval"
        return f"Nyuv2Dataset({self.root}, {self.split}: {len(self)} images, {self.height} x {self.width}, {mode})"

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored images of sample ``index``: RGB (H, W, 3) uint8, depth (H, W) uint16, label (H, W) uint8."""
        paths = self.paths[index]
        rgb, depth, label = read_rgb(paths["rgb"]), read_depth(paths["depth"]), read_label(paths["label"])
        if not rgb.shape[:2] == depth.shape == label.shape:
            raise Nyuv2Error(
                f"{paths['rgb']}: sizes differ: rgb {rgb.shape[:2]}, depth {depth.shape}, label {label.shape}"
            )
        wrong = size_problem(label.shape, self.image_size)
        if wrong is not None:
            raise Nyuv2Error(f"{paths['rgb']}: {wrong} (python -m reproduce check-data nyuv2 ROOT lists them all)")
        if int(label.max()) > NUM_CLASSES:
            raise Nyuv2Error(f"{paths['label']}: labels outside 0-{NUM_CLASSES} (max {int(label.max())})")
        return rgb, depth, label

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        rgb, depth, label = self.read(index)
        if self.train:
            rgb, depth, label = self.augmentation(rgb, depth, label, augment_rng(self.seed, self.epoch, index))
        else:
            rgb, depth, _ = rescale(rgb, depth, None, self.height, self.width)
        return {
            "rgb": torch.from_numpy(normalise_rgb(rgb)),
            "depth": torch.from_numpy(normalise_depth(depth, self.depth_mean, self.depth_std, self.invalid_depth_zero)),
            "label": torch.from_numpy(label.astype(np.int64)),
            "index": index,
            "name": self.indices[index],
        }
