"""A synthetic BraTS2020 in the raw layout (real NIfTI files written with nibabel), prepared like the real one.

``write_brats2020(out_dir)`` writes ``out_dir/raw/MICCAI_BraTS2020_TrainingData/BraTS20_Training_XXX/
BraTS20_Training_XXX_{flair,t1ce,t1,t2,seg}.nii.gz`` (int16 images, 1 mm voxels, an identity-like affine), then
runs the real prepare step into ``out_dir`` (``vol/``, ``seg/``, split lists) and marks it synthetic
(``synthetic.json``). Subject numbers are spread over 1-369, so some are low grade (``LG_``) as in the real set.

Generative model, per subject (seeded): a brain-like ellipsoid with a smooth random texture and a bias field; a
tumour at a random position inside it, three nested irregular regions -- oedema (label 2) outermost, then an
enhancing rim (label 4, written as in BraTS) around a necrotic core (label 1). Each modality's intensity per
tissue, relative to healthy brain = 1, follows how the sub-regions show in MRI:

    region       FLAIR   T1ce   T1    T2
    oedema       2.0     1.05   0.92  1.9
    enhancing    1.5     2.6    1.0   1.4
    necrosis     1.2     0.35   0.75  2.2

so FLAIR and T2 show the whole tumour, T1ce its core, T1 little. ``imbalance`` scales the tumour contrast of
FLAIR and T2 against T1ce and T1 (contrast c -> 1 + (c - 1) * imbalance for FLAIR / T2 and 1 + (c - 1) / imbalance
for T1ce / T1): > 1 makes whole-tumour Dice depend more on FLAIR and T2, as in the paper (subsets without them
lose most of it). Noise: Gaussian, 5 % of the brain intensity.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mwam_harness.datasets.brats2020 import MODALITIES
from mwam_harness.datasets.brats2020.layout import RAW_FOLDER
from mwam_harness.datasets.files import atomic_write, built_beside, write_text_atomic
from mwam_harness.datasets.registry import SYNTHETIC_MARKER, read_synthetic_marker

CONTRAST = {
    #           flair, t1ce, t1,   t2
    "oedema": (2.0, 1.05, 0.92, 1.9),
    "enhancing": (1.5, 2.6, 1.0, 1.4),
    "necrosis": (1.2, 0.35, 0.75, 2.2),
}
LABELS = {"oedema": 2, "enhancing": 4, "necrosis": 1}
BRAIN_INTENSITY = 400.0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int, int], scale: int = 6) -> np.ndarray:
    """Smooth noise in about [-1, 1]: coarse random values upsampled by linear interpolation."""
    from scipy.ndimage import zoom

    coarse = rng.uniform(-1, 1, size=tuple(max(2, s // scale) for s in shape))
    fine = zoom(coarse, [s / c for s, c in zip(shape, coarse.shape, strict=True)], order=1)
    return fine[: shape[0], : shape[1], : shape[2]]


#: The whole tumour's radius, a fraction of the volume's half-extent, is drawn from this range.
TUMOUR_SIZE = (0.22, 0.32)


def _subject(
    rng: np.random.Generator, shape: tuple[int, int, int], imbalance: float, tumour_size: tuple[float, float]
) -> tuple[dict, np.ndarray]:
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    radii = rng.uniform(0.7, 0.85, size=3)
    brain = (grid**2 / radii[:, None, None, None] ** 2).sum(0) < 1
    centre = rng.uniform(-0.3, 0.3, size=3)
    distance = np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(0))
    wobble = 1 + 0.15 * _smooth_noise(rng, shape, 8)
    size = rng.uniform(*tumour_size)
    regions = {
        "oedema": (distance < size * wobble) & brain,
        "enhancing": (distance < 0.55 * size * wobble) & brain,
        "necrosis": (distance < 0.35 * size * wobble) & brain,
    }
    labels = np.zeros(shape, dtype=np.int16)
    for name in ("oedema", "enhancing", "necrosis"):  # nested: inner regions overwrite outer ones
        labels[regions[name]] = LABELS[name]
    texture = 1 + 0.08 * _smooth_noise(rng, shape, 4)
    bias = 1 + 0.1 * _smooth_noise(rng, shape, 16)
    volumes = {}
    for k, modality in enumerate(MODALITIES):
        relative = np.ones(shape)
        for name in ("oedema", "enhancing", "necrosis"):
            c = CONTRAST[name][k]
            c = 1 + (c - 1) * imbalance if modality in ("flair", "t2") else 1 + (c - 1) / imbalance
            relative[labels == LABELS[name]] = c
        image = BRAIN_INTENSITY * relative * texture * bias + rng.normal(0, 0.05 * BRAIN_INTENSITY, size=shape)
        volumes[modality] = np.where(brain, np.clip(image, 1, None), 0).astype(np.int16)
    return volumes, labels


def write_brats2020(
    out_dir: str | Path,
    num_cases: int = 10,
    shape: Sequence[int] = (48, 48, 40),
    split: Sequence[int] = (6, 2, 2),
    imbalance: float = 1.0,
    seed: int = 0,
    progress: bool = False,
    tumour_size: Sequence[float] = TUMOUR_SIZE,
) -> Path:
    """Write (or reuse) the synthetic raw set and its prepared form at ``out_dir``; returns the prepared root. A set
    with other parameters is replaced whole; a non-empty directory that is not a synthetic set is refused.
    ``tumour_size``: the range of the whole tumour's radius as a fraction of the half-extent (recorded in the
    marker only when it is not the default, so the default set's fingerprint is unchanged)."""
    from mwam_harness.datasets.brats2020.prepare import prepare_brats2020

    out_dir = Path(out_dir)
    shape = tuple(int(s) for s in shape)
    parameters = {"kind": "brats2020", "num_cases": int(num_cases), "shape": list(shape), "split": list(split),
                  "imbalance": float(imbalance), "seed": int(seed)}  # fmt: skip
    size_range = (float(tumour_size[0]), float(tumour_size[1]))
    if size_range != TUMOUR_SIZE:
        parameters["tumour_size"] = list(size_range)
    if read_synthetic_marker(out_dir) == parameters:
        return out_dir
    if num_cases < 3 or sum(split) != num_cases:
        raise ValueError(f"split {tuple(split)} must sum to num_cases={num_cases} (>= 3)")
    if not imbalance > 0:
        raise ValueError(f"imbalance must be > 0, got {imbalance}")
    if not 0 < size_range[0] <= size_range[1] < 1:
        raise ValueError(f"tumour_size must be a range 0 < low <= high < 1, got {tuple(tumour_size)}")
    ours, complete = (
        (lambda d: read_synthetic_marker(d) is not None),
        (lambda d: read_synthetic_marker(d) == parameters),
    )
    with built_beside(out_dir, ours, complete, SYNTHETIC_MARKER) as built:
        _write_raw(built / "raw" / RAW_FOLDER, num_cases, shape, float(imbalance), int(seed), size_range)
        prepare_brats2020(built / "raw", built, split_sizes=tuple(split), seed=seed, progress=progress)
        write_text_atomic(built / SYNTHETIC_MARKER, json.dumps(parameters))
    return out_dir


def _write_raw(
    raw: Path,
    num_cases: int,
    shape: tuple[int, int, int],
    imbalance: float,
    seed: int,
    tumour_size: tuple[float, float],
) -> None:
    """The subjects' NIfTI files (gzip-compressed, int16, 1 mm voxels) under ``raw``."""
    import nibabel as nib

    numbers = np.unique(np.linspace(1, 369, num_cases).round().astype(int))
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    for number in numbers:
        subject = f"BraTS20_Training_{number:03d}"
        volumes, labels = _subject(np.random.default_rng([seed, int(number)]), shape, imbalance, tumour_size)
        for name, array in {**volumes, "seg": labels}.items():
            image = nib.Nifti1Image(array, affine)
            image.header.set_zooms((1.0, 1.0, 1.0))
            data = gzip.compress(image.to_bytes(), compresslevel=1)
            atomic_write(raw / subject / f"{subject}_{name}.nii.gz", lambda tmp, data=data: tmp.write_bytes(data))
