"""The authors' BraTS preprocessing (RFNet ``preprocess.py``, also used by mmFormer and GSS), as numpy functions.

For one subject: stack the volumes in the order (flair, t1ce, t1, t2) as float32; crop to the bounding box of the
non-zero voxels of the channel maximum, each axis widened to at least 128 voxels around its centre
(:func:`widen_window`, the authors' ``sup_128``); z-score each modality over the brain (voxels where the sum over
modalities is > 0; the background is shifted and scaled too, as theirs is); transpose to (H, W, D, 4); labels as
uint8 with 4 (enhancing tumour) -> 3. Two quirks are kept because the authors' cached volumes have them: the upper
bound of the box is the index of the last non-zero voxel, used as an exclusive bound (that voxel is cut), and a
widened window may extend past the volume, where slicing clamps it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mwam_harness.datasets.brats2020 import MODALITIES

#: The labels a BraTS segmentation may hold: background, necrosis / non-enhancing core, oedema, enhancing tumour.
RAW_LABELS = (0, 1, 2, 4)
MINIMUM_WINDOW = 128


def widen_window(low: int, high: int, minimum: int = MINIMUM_WINDOW) -> tuple[int, int]:
    """The authors' ``sup_128``: a window shorter than ``minimum`` grows by ``(minimum - length) // 2`` below and
    one more voxel above (128 or 129 voxels), then is shifted up if it starts below 0."""
    if high - low < minimum:
        margin = int((minimum - (high - low)) / 2)
        high, low = high + margin + 1, low - margin
    if low < 0:
        high, low = high - low, 0
    return low, high


def crop_window(volume: np.ndarray, minimum: int = MINIMUM_WINDOW) -> tuple[slice, slice, slice]:
    """The crop of a (4, X, Y, Z) stack: the non-zero box of the channel maximum, widened per axis."""
    nonzero = np.nonzero(volume.max(axis=0))
    if not nonzero[0].size:
        raise ValueError("every voxel is zero in every modality")
    return tuple(slice(*widen_window(int(axis.min()), int(axis.max()), minimum)) for axis in nonzero)  # type: ignore[return-value]


def normalize(volume: np.ndarray) -> np.ndarray:
    """Z-score each modality of a (4, X, Y, Z) stack over the brain (sum over modalities > 0), in place."""
    brain = volume.sum(axis=0) > 0
    for k in range(volume.shape[0]):
        if not np.isfinite(volume[k]).all():
            raise ValueError(f"{MODALITIES[k]} has non-finite intensities (NaN or +-Inf): it cannot be normalised")
        values = volume[k][brain]
        std = values.std()
        if not std > 0:
            raise ValueError(f"{MODALITIES[k]} is constant over the brain (std {std})")
        volume[k] = (volume[k] - values.mean()) / std
    return volume


def remap_labels(segmentation: np.ndarray) -> np.ndarray:
    """uint8 labels 0-3 from BraTS's 0, 1, 2, 4 (ValueError naming any other value)."""
    values = np.unique(segmentation)
    unexpected = [v for v in values.tolist() if v not in RAW_LABELS]
    if unexpected:
        raise ValueError(f"labels outside {{0, 1, 2, 4}}: {unexpected[:5]}")
    labels = segmentation.astype(np.uint8)
    labels[labels == 4] = 3
    return labels


def preprocess_subject(
    volumes: Mapping[str, np.ndarray], segmentation: np.ndarray, minimum: int = MINIMUM_WINDOW
) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice, slice]]:
    """``(volume (H, W, D, 4) float32, labels (H, W, D) uint8, crop)`` of one subject, as the authors'."""
    stack = np.stack([np.asarray(volumes[m]) for m in MODALITIES], axis=0).astype(np.float32)
    window = crop_window(stack, minimum)
    volume = normalize(stack[(slice(None), *window)].copy()).transpose(1, 2, 3, 0)
    labels = remap_labels(np.asarray(segmentation)[window])
    return np.ascontiguousarray(volume), np.ascontiguousarray(labels), window
