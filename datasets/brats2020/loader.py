"""The prepared BraTS2020 layout as a torch Dataset (``vol/<case>_vol.npy``, ``seg/<case>_seg.npy``, split lists).

A sample is ``{"flair": (1, h, w, d), "t1ce": ..., "t1": ..., "t2": ... float32, "label": (h, w, d) int64,
"case": name}``. Volumes are opened memory-mapped (nothing is read when the data set is built; a sample reads its
case's volume).
Training samples get the authors' augmentation (``transforms.py``: random ``crop``^3 window, plane rotation,
intensity scale / shift, flips), its random state a function of (seed, epoch, index) alone, so that a resumed run
sees the same samples; evaluation samples are the whole prepared volume (the hosts slide windows over it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mwam_harness.datasets.brats2020 import MODALITIES, SPLITS
from mwam_harness.datasets.brats2020.check import load_npy
from mwam_harness.datasets.brats2020.layout import label_path, read_split, shared_cases, volume_path
from mwam_harness.datasets.brats2020.prepare import non_finite_message
from mwam_harness.datasets.brats2020.transforms import training_transforms
from mwam_harness.datasets.checking import refuse_split_overlap


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """The 32-bit random state of sample ``index``'s augmentation in ``epoch`` (MONAI's ``set_random_state``)."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1)[0])


class Brats2020Dataset(Dataset):
    """One split of a prepared BraTS2020 root (see the module docstring).

    crop: the training window (80, the authors'; a smaller one for CPU runs); it must fit every volume.
    angle, intensity_per: the rotation range and the intensity factors' layout (``transforms.py``).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        train: bool | None = None,
        seed: int = 0,
        crop: int = 80,
        angle: int = 10,
        intensity_per: str = "slice",
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"BraTS2020 has the splits {sorted(SPLITS)}, not {split!r}")
        self.root = Path(root)
        self.split = split
        self.cases = read_split(self.root, split)
        refuse_split_overlap(
            self.root / SPLITS[split], split, shared_cases(self.root, split, self.cases), "a case", "brats2020"
        )
        missing = [str(p) for case in self.cases for p in (volume_path(self.root, case), label_path(self.root, case))
                   if not p.is_file()]  # fmt: skip
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} file(s) of the {split} split are missing under {self.root}, e.g. {missing[0]} "
                "(python -m reproduce check-data brats2020 ROOT lists them all)"
            )
        self.train = split == "train" if train is None else bool(train)
        self._check_headers(int(crop) if self.train else None)
        self.seed, self.epoch, self.crop = int(seed), 0, int(crop)
        self.transforms = training_transforms(crop, angle=angle, intensity_per=intensity_per) if self.train else None

    def _check_headers(self, crop: int | None) -> None:
        """Refuse, before any sample is read, what no sample of this split could be: an empty or unreadable ``.npy``
        file, shapes other than (H, W, D, 4) / (H, W, D), a volume smaller than the training ``crop`` (``.npy``
        headers only: nothing but the headers is read)."""
        problems = []
        for case in self.cases:
            volume_file, label_file = volume_path(self.root, case), label_path(self.root, case)
            volume, volume_error = load_npy(volume_file, f"file of case {case}")
            labels, label_error = load_npy(label_file, f"file of case {case}")
            problems += [f"{path}: {error}" for path, error in ((volume_file, volume_error), (label_file, label_error))
                         if error is not None]  # fmt: skip
            if volume is None or labels is None:
                continue
            if volume.ndim != 4 or volume.shape[3] != len(MODALITIES) or volume.shape[:3] != labels.shape:
                problems.append(
                    f"{volume_file}: volume {volume.shape} and labels {labels.shape} ({label_file.name}) are not "
                    f"(H, W, D, {len(MODALITIES)}) and (H, W, D)"
                )
            elif crop is not None and min(volume.shape[:3]) < crop:
                problems.append(f"{volume_file}: volume {volume.shape[:3]} is smaller than the {crop}^3 crop")
        if problems:
            shown = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise ValueError(
                f"{len(problems)} problem(s) in the {self.split} split of {self.root} (python -m reproduce check-data "
                f"brats2020 ROOT lists every problem):\n  {shown}{more}"
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch`` (each (seed, epoch, index) always gives the same sample)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.cases)

    def __repr__(self) -> str:
        mode = f"train, crop {self.crop}" if self.train else "eval, whole volumes"
        return f"Brats2020Dataset({self.root}, {self.split}: {len(self)} cases, {mode})"

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The memory-mapped (H, W, D, 4) volume and (H, W, D) labels of case ``index``."""
        case = self.cases[index]
        volume_file, label_file = volume_path(self.root, case), label_path(self.root, case)
        volume, volume_error = load_npy(volume_file, f"file of case {case}")
        labels, label_error = load_npy(label_file, f"file of case {case}")
        if volume is None or labels is None:
            raise ValueError(f"{volume_file if volume is None else label_file}: {volume_error or label_error}")
        if volume.ndim != 4 or volume.shape[3] != len(MODALITIES) or volume.shape[:3] != labels.shape:
            raise ValueError(
                f"{volume_file}: volume {volume.shape} and labels {labels.shape} are not (H, W, D, 4), (H, W, D)"
            )
        return volume, labels

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        volume, labels = self.arrays(index)
        image = np.ascontiguousarray(np.moveaxis(volume, 3, 0), dtype=np.float32)  # (4, H, W, D)
        case = self.cases[index]
        if not np.isfinite(image).all():
            raise ValueError(
                f"{volume_path(self.root, case)}: {non_finite_message(image)} (non-finite intensities would train on "
                "NaN losses); prepare the case again (python -m reproduce check-data brats2020 ROOT lists them all)"
            )
        label = np.asarray(labels, dtype=np.int64)[None]
        if label.size and not 0 <= int(label.min()) <= int(label.max()) <= 3:
            raise ValueError(f"{label_path(self.root, case)}: labels outside 0-3 (python -m reproduce check-data "
                             "brats2020 ROOT lists them all)")  # fmt: skip
        if self.transforms is not None:
            if min(image.shape[1:]) < self.crop:
                raise ValueError(f"{volume_path(self.root, case)}: volume {image.shape[1:]} is smaller than the "
                                 f"{self.crop}^3 crop")  # fmt: skip
            self.transforms.set_random_state(seed=augmentation_seed(self.seed, self.epoch, index))
            out = self.transforms({"image": image, "label": label})
            image, label = np.asarray(out["image"]), np.asarray(out["label"])
        sample: dict[str, torch.Tensor | str] = {
            m: torch.from_numpy(np.ascontiguousarray(image[i : i + 1], dtype=np.float32))
            for i, m in enumerate(MODALITIES)
        }
        sample["label"] = torch.from_numpy(np.ascontiguousarray(label[0], dtype=np.int64))
        sample["case"] = self.cases[index]
        return sample
