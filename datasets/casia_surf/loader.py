"""CASIA-SURF (RGB / Depth / IR face anti-spoofing) read from its real on-disk layout.

A data root holds three list files (``SPLITS``); each non-empty line is ``rgb depth ir label`` with
paths relative to the root and label 1 = real (bona fide), 0 = attack. Images are read as the authors
of MMANet / the SURF baseline do (``datasets/surf_txt.py`` of their release):

- ``cv2.imread(path, cv2.IMREAD_COLOR)``: every modality (also the grey Depth and IR images) becomes 3
  channels, in OpenCV's **BGR** order, which the authors keep (their "BGR2RGB" comment swaps nothing).
- train: resize to 144 x 144 (``cv2.resize``, bilinear); rotate by an integer angle drawn uniformly from
  [-30, 30] about the centre onto a canvas of 0.8 x the rotated bounding box, border **constant 0**
  (black, OpenCV's default, as the authors); random 112 x 112 crop (offsets uniform in ``[0, side - 112)``,
  the authors' exclusive bound); horizontal flip with probability 0.5. One angle, crop and flip per
  sample, shared by the three modalities. Then ``(x - 127.5) / 128``.
- test: resize to 112 x 112, then ``(x - 127.5) / 128``.
- ``filter`` (option, default None: none): a frequency filter (``datasets.frequency_filter``; Fig. 1 / A.5, A.16)
  applied to every decoded image of every modality, at its stored resolution, before the resize and augmentation,
  in every split alike: the loader then reads a frequency-filtered data set, as the paper trains on.

The augmentation randomness is a ``numpy.random.Generator`` seeded from ``(seed, epoch, index)`` only, so
a sample's augmentation does not depend on the worker, the process or the order of reading: call
:meth:`CasiaSurfDataset.set_epoch` before each epoch (in the process that creates the loader's workers;
with ``persistent_workers=True`` the workers keep the epoch they were forked with).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mwam_harness.datasets.casia_surf import MODALITIES, SPLITS
from mwam_harness.datasets.checking import ListFileError, image_file_problem, read_list_text
from mwam_harness.datasets.frequency_filter import FrequencyFilter

LABELS: dict[int, str] = {1: "real", 0: "attack"}

TRAIN_RESIZE = 144
CROP = 112
MAX_ANGLE = 30
CANVAS_SCALE = 0.8
MEAN = 127.5
SCALE = 128.0
_MAX_LISTED_PROBLEMS = 20


class CasiaSurfError(ValueError):
    """A CASIA-SURF root, list file or image that cannot be used; the message names the file."""


@dataclass(frozen=True)
class SurfSample:
    """One listed sample: absolute paths of the three images and its label (1 real, 0 attack)."""

    rgb: Path
    depth: Path
    ir: Path
    label: int

    def path(self, modality: str) -> Path:
        """Path of ``modality`` (one of ``MODALITIES``)."""
        if modality not in MODALITIES:
            raise KeyError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
        return getattr(self, modality)


def list_file(root: str | Path, split: str) -> Path:
    """Path of the list file of ``split`` under ``root``; raises CasiaSurfError when it is missing."""
    if split not in SPLITS:
        raise CasiaSurfError(f"unknown CASIA-SURF split {split!r}; expected one of {sorted(SPLITS)}")
    root = Path(root)
    if not root.is_dir():
        raise CasiaSurfError(f"CASIA-SURF root {root} is not a directory")
    path = root / SPLITS[split]
    if not path.is_file():
        present = [name for name in SPLITS.values() if (root / name).is_file()]
        raise CasiaSurfError(
            f"{path}: missing list file for split {split!r}. A CASIA-SURF root must hold "
            f"{', '.join(SPLITS.values())} (each line 'rgb depth ir label', paths relative to the root); "
            f"{root} holds {present or 'none of them'}"
        )
    return path


def parse_split(root: str | Path, split: str) -> tuple[list[tuple[int, SurfSample]], list[tuple[int, str]]]:
    """The samples of ``split``'s list file, ``(line number, sample)``, and its problems, ``(line number, what is
    wrong)``, without raising for bad lines (``check-data`` reports them all; :func:`read_split` raises).

    Checked per line: 4 space-separated fields, label 0 or 1, the three images exist. Blank lines are skipped.
    A missing or unreadable list file raises CasiaSurfError.
    """
    path = list_file(root, split)
    root = path.parent.resolve()
    try:
        text = read_list_text(path)
    except ListFileError as error:
        raise CasiaSurfError(str(error)) from error
    samples: list[tuple[int, SurfSample]] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4:
            problems.append((number, f"expected 4 fields 'rgb depth ir label', got {len(fields)}: {line!r}"))
            continue
        if fields[3] not in ("0", "1"):
            problems.append((number, f"unknown label {fields[3]!r} (expected 1 = real or 0 = attack)"))
            continue
        paths = [root / field for field in fields[:3]]
        missing = [f"{modality} image {p}" for modality, p in zip(MODALITIES, paths, strict=True) if not p.is_file()]
        if missing:
            problems.append((number, f"missing {', '.join(missing)}"))
            continue
        samples.append((number, SurfSample(*paths, label=int(fields[3]))))
    return samples, problems


def read_split(root: str | Path, split: str) -> list[SurfSample]:
    """Parse and validate every line of the list file of ``split``; raise CasiaSurfError naming file and lines.

    All problems (:func:`parse_split`) are collected and reported together (the first few, with their line
    numbers); a split without samples is an error too.
    """
    numbered, problems = parse_split(root, split)
    samples = [sample for _, sample in numbered]
    path = list_file(root, split)
    if problems:
        lines = [f"line {number}: {message}" for number, message in problems]
        shown = "\n  ".join(lines[:_MAX_LISTED_PROBLEMS])
        more = len(problems) - _MAX_LISTED_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise CasiaSurfError(f"{path}: {len(problems)} bad line(s):\n  {shown}{tail}")
    if not samples:
        raise CasiaSurfError(f"{path}: empty split {split!r} (no samples listed)")
    return samples


def read_image(path: str | Path) -> np.ndarray:
    """``cv2.imread(path, IMREAD_COLOR)`` as uint8 (H, W, 3) BGR; raises CasiaSurfError if unreadable or empty, or
    if a JPEG / PNG lacks its end marker (cut short: OpenCV would decode it with only a warning)."""
    if not Path(path).is_file():
        raise CasiaSurfError(f"{path}: missing image (listed, but not found)")
    problem = image_file_problem(path)
    if problem is not None:
        raise CasiaSurfError(f"{path}: unreadable or empty image: {problem}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise CasiaSurfError(f"{path}: unreadable or empty image (cv2.imread returned nothing)")
    return image


def rotate(image: np.ndarray, angle: int) -> np.ndarray:
    """The authors' ``RondomRotion_multi``: rotate about the centre onto the 0.8-scaled bounding canvas, border 0."""
    h, w = image.shape[:2]
    cx, cy = w / 2, h / 2
    matrix = cv2.getRotationMatrix2D((cx, cy), -angle, 1.0)
    cos = abs(matrix[0, 0]) * CANVAS_SCALE
    sin = abs(matrix[0, 1]) * CANVAS_SCALE
    nw = int(h * sin + w * cos)
    nh = int(h * cos + w * sin)
    matrix[0, 2] += nw / 2 - cx
    matrix[1, 2] += nh / 2 - cy
    return cv2.warpAffine(
        image, matrix, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def augment_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of sample ``index``'s augmentation in ``epoch``: a function of the three integers only."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def augment(images: dict[str, np.ndarray], rng: np.random.Generator, crop: int = CROP) -> dict[str, np.ndarray]:
    """Rotation, ``crop`` x ``crop`` crop (112) and flip of resized uint8 images; one draw shared by all modalities."""
    angle = int(rng.integers(-MAX_ANGLE, MAX_ANGLE + 1))
    rotated = {m: rotate(image, angle) for m, image in images.items()}
    h, w = next(iter(rotated.values())).shape[:2]
    y = int(rng.integers(0, h - crop))
    x = int(rng.integers(0, w - crop))
    flip = bool(rng.random() < 0.5)
    out = {}
    for m, image in rotated.items():
        patch = image[y : y + crop, x : x + crop]
        out[m] = np.ascontiguousarray(patch[:, ::-1]) if flip else patch
    return out


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) normalised as ``(x - 127.5) / 128``."""
    # NumPy, not torch: on small images torch's intra-op threading costs more than the arithmetic.
    normalised = (image.transpose(2, 0, 1).astype(np.float32) - np.float32(MEAN)) / np.float32(SCALE)
    return torch.from_numpy(np.ascontiguousarray(normalised))


class CasiaSurfDataset(Dataset):
    """A CASIA-SURF split; items are ``{"rgb", "depth", "ir": (3, 112, 112) float32, "label", "index"}``.

    ``resize`` / ``crop`` (144 / 112, the authors') may be lowered for quick runs on a CPU (the smoke and demo
    presets): training resizes to ``resize`` and crops ``crop``; testing resizes to ``crop``.

    ``train`` (default: ``split == "train"``) switches the authors' training augmentation on. ``cache=True``
    keeps each decoded, resized uint8 image in memory after its first read: 3 x resize^2 x 3 B per sample
    when training (144: 182 KiB), 3 x crop^2 x 3 B otherwise (112: 110 KiB); about 5.2 GiB for the 29,266
    training samples of CASIA-SURF. The cache lives in each process: every DataLoader worker fills its own.

    ``filter``: None (default), a :class:`~..frequency_filter.FrequencyFilter` or its fields as a mapping
    (``{"kind": "low", "size": 15}``): each decoded uint8 image is filtered (and brought back to uint8 as the filter's
    ``restore`` says) before the resize, the augmentation and the normalisation (module docstring).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        train: bool | None = None,
        cache: bool = False,
        seed: int = 0,
        resize: int = TRAIN_RESIZE,
        crop: int = CROP,
        filter: FrequencyFilter | dict | None = None,
    ) -> None:
        if not (isinstance(crop, int) and isinstance(resize, int) and 8 <= crop < int(resize * CANVAS_SCALE)):
            raise CasiaSurfError(
                f"need integers with 8 <= crop < {CANVAS_SCALE} x resize (the rotated canvas), got resize={resize!r}, "
                f"crop={crop!r}; the authors use 144 / 112"
            )
        self.resize, self.crop = resize, crop
        self.root = Path(root)
        self.split = split
        self.samples = read_split(self.root, split)
        self.train = split == "train" if train is None else bool(train)
        self.cache = cache
        self.seed = int(seed)
        self.epoch = 0
        self._cache: dict[int, dict[str, np.ndarray]] = {}
        self.filter = FrequencyFilter.from_option(filter)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch`` (each (seed, epoch, index) always gives the same sample)."""
        self.epoch = int(epoch)

    @property
    def labels(self) -> list[int]:
        """Labels in list order (1 real, 0 attack)."""
        return [sample.label for sample in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        mode = "train" if self.train else "test"
        return f"CasiaSurfDataset(root={str(self.root)!r}, split={self.split!r}, size={len(self)}, mode={mode!r})"

    def resized(self, index: int) -> dict[str, np.ndarray]:
        """Decoded uint8 BGR images of sample ``index``, ``resize`` (train) or ``crop`` (test) square; cached."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        side = self.resize if self.train else self.crop
        sample = self.samples[index]
        images = {m: read_image(sample.path(m)) for m in MODALITIES}
        if self.filter is not None:
            images = {m: self.filter(image) for m, image in images.items()}
        images = {m: cv2.resize(image, (side, side)) for m, image in images.items()}
        if self.cache:
            self._cache[index] = images
        return images

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        images = self.resized(index)
        if self.train:
            images = augment(images, augment_rng(self.seed, self.epoch, index), self.crop)
        item: dict[str, torch.Tensor | int] = {m: to_tensor(images[m]) for m in MODALITIES}
        item["label"] = torch.tensor(self.samples[index].label, dtype=torch.long)
        item["index"] = index
        return item
