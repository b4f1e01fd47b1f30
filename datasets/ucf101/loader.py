"""UCF-101 (RGB video + TV-L1 optical flow) read from a prepared root, as BalanceBenchmark's ``ucf101_dataset.py``.

A root holds UCF-101's list files and the frames of one or both prepared layouts (``layout.py``). Per video, with
``frames`` = 3 segments (BalanceBenchmark's ``pick_num``):

- **Frame choice** (:func:`segment_frames`): over ``n`` frames (RGB: the 6 of the ``balancebenchmark`` layout, every
  frame of ``dimml``; flow: the files in the video's ``u`` folder, BalanceBenchmark's ``len(os.listdir(u))``),
  ``seg = n // frames``; in training segment ``i`` takes a frame drawn uniformly from ``i * seg + 1 ... i * seg +
  seg`` (1-based), in testing frame ``i * seg + max(seg // 2, 1)`` (6 RGB frames: 1, 3, 5). RGB and flow are drawn
  independently, as BalanceBenchmark does; the u and v images of one flow frame have the same number.
- **RGB**: decoded as colour (OpenCV, BGR -> RGB), resized to ``size`` x ``size`` (224; ``cv2.INTER_AREA`` when
  shrinking, bilinear when enlarging -- BalanceBenchmark's PIL resize is antialiased too), ``x / 255`` then ImageNet's
  mean / std -> ``(3, T, size, size)`` float32.
- **Flow**: the u and v JPEGs decoded as grayscale, resized the same way, ``x / 255`` and no normalisation
  (BalanceBenchmark's ``a_norm=False``): a value of 0.5 is no motion, 0 and 1 are -15 and +15 pixels a frame (the
  TV-L1 recipe's mapping, ``prepare.py``) -> ``(2, T, size, size)`` float32, channel 0 = u, 1 = v.
- **Flips** in training (``flip``): ``frame`` (default, BalanceBenchmark's: each RGB frame and each u and v image is
  flipped on its own with probability 0.5, u's values kept -- its ``RandomHorizontalFlip`` is applied per image),
  ``clip`` (one flip per sample for every frame and both flow components, u's values mirrored, ``255 - u``: the
  flow of the mirrored video) or ``none``.

Items are ``{"video": (3, T, H, W), "flow": (2, T, H, W), "label": int64, "index": int}``. Labels are
``classInd.txt``'s numbers - 1 (BalanceBenchmark sorts the names with Python's ``sorted``, which swaps two pairs,
Hammering / HammerThrow and JumpingJack / JumpRope: a permutation of the label ids, the same accuracy). A listed
video whose folders are missing is refused when the data set is built, naming the folder (BalanceBenchmark skips it
silently); a missing or damaged frame when it is read, naming the file.

The augmentation randomness (frame choice and flips) is a ``numpy.random.Generator`` seeded from ``(seed, epoch,
index)`` only (as CASIA-SURF's loader): call :meth:`Ucf101Dataset.set_epoch` before each epoch.
"""

from __future__ import annotations

import operator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mwam_harness.datasets.checking import image_file_problem, refuse_split_overlap
from mwam_harness.datasets.ucf101.layout import (
    KINDS,
    LAYOUTS,
    Video,
    list_name,
    numbered_files,
    read_videos,
)
from mwam_harness.datasets.ucf101.layout import layout as find_layout

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
SIZE = 224
FRAMES = 3
FLIPS = ("frame", "clip", "none")
_MAX_LISTED = 20


class Ucf101Error(ValueError):
    """A UCF-101 root, list file, video folder or frame that cannot be used; the message names the path."""


def segment_frames(count: int, segments: int, rng: np.random.Generator | None) -> list[int]:
    """BalanceBenchmark's frame choice: 1-based frame numbers, one per segment of ``count`` frames -- drawn uniformly
    within the segment with ``rng`` (training), or its fixed frame ``i * seg + max(seg // 2, 1)`` when ``rng`` is
    None (testing)."""
    seg = count // segments
    if seg < 1:
        raise ValueError(f"{count} frame(s) cannot make {segments} segments")
    if rng is None:
        return [i * seg + max(seg // 2, 1) for i in range(segments)]
    return [int(rng.integers(i * seg + 1, i * seg + seg + 1)) for i in range(segments)]


def augment_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of sample ``index``'s augmentation in ``epoch``: a function of the three integers only."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def read_image(path: Path, grayscale: bool) -> np.ndarray:
    """A frame as uint8 (H, W, 3) RGB or (H, W) grayscale; Ucf101Error naming the file when it is missing, cut short
    or does not decode."""
    problem = image_file_problem(path)
    if problem is not None:
        raise Ucf101Error(f"{path}: {problem}")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise Ucf101Error(f"{path}: unreadable image (cv2.imread returned nothing)")
    return image if grayscale else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` resized to ``size`` x ``size`` (area when shrinking, bilinear when enlarging)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrink = image.shape[0] * image.shape[1] > size * size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class Ucf101Dataset(Dataset):
    """A UCF-101 split (``train`` / ``test`` of split ``fold``) of a prepared root; items as the module docstring.

    Options (the run's ``data.options``): ``layout`` (``balancebenchmark`` / ``dimml``), ``fold`` (UCF-101's split
    1, 2 or 3: ``trainlist0N`` / ``testlist0N``; the option is not called ``split``, the name of the train / test
    argument), ``size`` (224), ``frames`` (segments, 3), ``flip`` (``frame`` / ``clip`` / ``none``). ``train``
    (default: ``split == "train"``) switches the random frame choice and the flips on.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        train: bool | None = None,
        seed: int = 0,
        layout: str = "balancebenchmark",
        fold: int = 1,
        size: int = SIZE,
        frames: int = FRAMES,
        flip: str = "frame",
    ) -> None:
        if layout not in LAYOUTS:
            raise Ucf101Error(f"unknown UCF-101 layout {layout!r}; expected one of {sorted(LAYOUTS)}")
        if split not in KINDS:
            raise Ucf101Error(f"UCF-101 has the splits {sorted(KINDS)} (no validation split), not {split!r}")
        if fold not in (1, 2, 3) or isinstance(fold, bool):
            raise Ucf101Error(f"fold must be UCF-101's split 1, 2 or 3, got {fold!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 8:
            raise Ucf101Error(f"size must be an integer >= 8, got {size!r}")
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            raise Ucf101Error(f"frames must be a positive integer, got {frames!r}")
        if flip not in FLIPS:
            raise Ucf101Error(f"flip must be one of {FLIPS}, got {flip!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise Ucf101Error(f"UCF-101 root {self.root} is not a directory")
        self.split, self.fold, self.size, self.frames, self.flip = split, fold, size, frames, flip
        self.layout = find_layout(layout)
        if self.layout.rgb_frames is not None and self.layout.rgb_frames // frames < 1:
            raise Ucf101Error(f"frames={frames}: the {layout} layout has {self.layout.rgb_frames} RGB frames a video")
        try:
            self.classes, self.videos = read_videos(self.root, split, fold)
        except (FileNotFoundError, ValueError) as error:
            raise Ucf101Error(str(error)) from None
        self.list_file = self.root / list_name(split, fold)
        self._refuse_overlap()
        self._refuse_missing()
        self.train = split == "train" if train is None else bool(train)
        self.seed = int(seed)
        self.epoch = 0
        self._counts: dict[tuple[str, str], int] = {}

    def _refuse_overlap(self) -> None:
        other = "test" if self.split == "train" else "train"
        other_file = self.root / list_name(other, self.fold)
        if not other_file.is_file():
            return
        try:
            _, others = read_videos(self.root, other, self.fold)
        except (FileNotFoundError, ValueError):
            return  # that split's own loader (and check-data) reports it
        theirs = {video.name for video in others}
        shared = [(video.name, other_file.name) for video in self.videos if video.name in theirs]
        refuse_split_overlap(self.list_file, self.split, shared, "a video", "ucf101")

    def _refuse_missing(self) -> None:
        missing = []
        for video in self.videos:
            folders = [self.layout.rgb_dir(self.root, video.name)]
            folders += [self.layout.flow_dir(self.root, video.name, c) for c in ("u", "v")]
            missing += [f"{folder} (video {video.path})" for folder in folders if not folder.is_dir()]
        if missing:
            shown = "\n  ".join(missing[:_MAX_LISTED])
            more = f"\n  ... and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
            raise Ucf101Error(
                f"{self.list_file}: {len(missing)} folder(s) of listed videos are missing in the {self.layout.name} "
                f"layout:\n  {shown}{more}\n(python -m reproduce check-data ucf101 {self.root} lists every problem; "
                "python -m reproduce prepare ucf101 SOURCE ROOT writes the frames)"
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch`` (each (seed, epoch, index) always gives the same sample)."""
        self.epoch = int(epoch)

    @property
    def labels(self) -> list[int]:
        """Labels in list order (``classInd.txt``'s numbers - 1)."""
        return [video.label for video in self.videos]

    def case_ids(self) -> list[str]:
        """The video names in list order (the run's preflight checks them for repeats and train / test overlap)."""
        return [video.name for video in self.videos]

    def __len__(self) -> int:
        return len(self.videos)

    def __repr__(self) -> str:
        mode = "train" if self.train else "test"
        return (
            f"Ucf101Dataset(root={str(self.root)!r}, split={self.split!r}, fold={self.fold}, "
            f"layout={self.layout.name!r}, size={len(self)}, mode={mode!r})"
        )

    def _count(self, video: Video, kind: str) -> int:
        """Frames of ``video``: ``rgb`` (the layout's fixed number, or the files of its RGB folder) or ``flow`` (the
        files of its u folder); cached."""
        key = (video.name, kind)
        if key not in self._counts:
            rgb = kind == "rgb"
            name = video.name
            folder = self.layout.rgb_dir(self.root, name) if rgb else self.layout.flow_dir(self.root, name, "u")
            fixed = self.layout.rgb_frames if rgb else None
            count = fixed if fixed is not None else len(numbered_files(folder))
            if count // self.frames < 1:
                raise Ucf101Error(f"{folder}: {count} {kind} frame(s), fewer than frames={self.frames} segments")
            self._counts[key] = count
        return self._counts[key]

    def choice(self, index: int) -> dict[str, list]:
        """What item ``index`` reads in this epoch: ``{"rgb": [frame numbers], "flow": [frame numbers], "flips":
        {"rgb": [bool] * T, "u": [...], "v": [...]}}`` (no flips when not training)."""
        video = self.videos[index]
        rng = augment_rng(self.seed, self.epoch, index) if self.train else None
        rgb = segment_frames(self._count(video, "rgb"), self.frames, rng)
        flow = segment_frames(self._count(video, "flow"), self.frames, rng)
        none = [False] * self.frames
        flips = {"rgb": none, "u": none, "v": none}
        if rng is not None and self.flip == "frame":
            flips = {kind: [bool(rng.random() < 0.5) for _ in range(self.frames)] for kind in ("rgb", "u", "v")}
        elif rng is not None and self.flip == "clip":
            flipped = bool(rng.random() < 0.5)
            flips = {kind: [flipped] * self.frames for kind in ("rgb", "u", "v")}
        return {"rgb": rgb, "flow": flow, "flips": flips}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} videos")
        index %= len(self)
        video = self.videos[index]
        chosen = self.choice(index)
        flips = chosen["flips"]
        rgb = []
        for t, k in enumerate(chosen["rgb"]):
            image = resize(read_image(self.layout.rgb_path(self.root, video.name, k), grayscale=False), self.size)
            rgb.append(image[:, ::-1] if flips["rgb"][t] else image)
        flow = []
        for t, k in enumerate(chosen["flow"]):
            pair = []
            for component in ("u", "v"):
                path = self.layout.flow_path(self.root, video.name, component, k)
                image = resize(read_image(path, grayscale=True), self.size)
                if flips[component][t]:
                    image = image[:, ::-1]
                    if component == "u" and self.flip == "clip":
                        image = 255 - image  # the mirrored video's horizontal motion
                pair.append(image)
            flow.append(np.stack(pair))
        # NumPy, not torch: on small frames torch's intra-op threading costs more than the arithmetic.
        video_array = np.stack(rgb).astype(np.float32) / np.float32(255)  # (T, H, W, 3)
        video_array = ((video_array - IMAGENET_MEAN) / IMAGENET_STD).transpose(3, 0, 1, 2)  # (3, T, H, W)
        flow_array = np.stack(flow).astype(np.float32).transpose(1, 0, 2, 3) / np.float32(255)  # (2, T, H, W)
        return {
            "video": torch.from_numpy(np.ascontiguousarray(video_array)),
            "flow": torch.from_numpy(np.ascontiguousarray(flow_array)),
            "label": torch.tensor(video.label, dtype=torch.long),
            "index": index,
        }
