"""The BraTS rotation's label fill (issue 24). The authors rotate their uint8 labels with ``cval=-1``; SciPy's
ndimage does not wrap a negative value into an unsigned output, it clamps it to 0 (``CASE_INTERP_OUT_UINT`` in
``ni_interpolation.c``), so with the pinned SciPy their fill is background 0 -- the fill used here -- not 255."""

import numpy as np
import pytest
from scipy.ndimage import rotate

from mwam_harness.datasets.brats2020.transforms import PLANES, RandPlaneRotated


def label_volume(dtype=np.uint8) -> np.ndarray:
    """A (1, 16, 16, 12) label volume with no background: every voxel of class 1-3, so any 0 is the fill."""
    rng = np.random.default_rng(0)
    return rng.integers(1, 4, size=(1, 16, 16, 12)).astype(dtype)


@pytest.mark.parametrize("plane", PLANES)
def test_scipy_fills_a_uint8_label_with_0_for_cval_minus_1(plane):
    label = label_volume()[0]
    rotated = rotate(label, 9, axes=plane, reshape=False, order=0, mode="constant", cval=-1)
    assert rotated.dtype == np.uint8
    assert 255 not in rotated, "a -1 fill does not wrap to 255 in the pinned SciPy"
    assert (rotated == 0).any(), "the corners are filled"
    assert set(np.unique(rotated)) <= {0, 1, 2, 3}
    # A signed label keeps the -1: the clamping is the unsigned output's.
    signed = rotate(label.astype(np.int16), 9, axes=plane, reshape=False, order=0, mode="constant", cval=-1)
    assert (signed == -1).sum() == (rotated == 0).sum()


def rotated_once(fill: dict | None, label: np.ndarray, seed: int = 3) -> dict:
    transform = RandPlaneRotated(("image", "label"), angle=10, fill=fill)
    transform.set_random_state(seed)
    image = np.ones((4, *label.shape[1:]), np.float32)
    return transform({"image": image, "label": label})


def test_the_transform_fills_the_label_with_0_and_the_image_with_minus_1():
    for seed in range(20):
        out = rotated_once(None, label_volume(), seed)
        if out["label"].min() == 0:  # a non-zero angle was drawn
            break
    else:
        pytest.fail("no rotation drawn in 20 seeds")
    label, image = out["label"], out["image"]
    assert label.dtype == np.uint8 and 255 not in label
    assert np.array_equal(label == 0, np.broadcast_to(image[:1] == -1, label.shape)), "fill voxels agree"
    # The authors' -1 label fill on their uint8 labels gives the same labels as the fill used here.
    authors = rotated_once({"image": -1.0, "label": -1}, label_volume(), seed)
    assert np.array_equal(authors["label"], label)
    # The fill is the transform's option, not a constant: a signed label keeps -1, another value is written as is.
    signed = rotated_once({"image": -1.0, "label": -1}, label_volume(np.int16), seed)["label"]
    assert np.array_equal(signed == -1, label == 0)
    assert np.array_equal(rotated_once({"image": -1.0, "label": 7}, label_volume(), seed)["label"] == 7, label == 0)
