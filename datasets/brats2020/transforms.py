"""The BraTS hosts' training augmentation (RFNet ``train.py``: ``RandCrop3D((80,80,80)), RandomRotion(10),
RandomIntensityChange((0.1,0.1)), RandomFlip(0)``) as MONAI dictionary transforms.

The dictionary holds ``image`` (4, H, W, D) float32 (flair, t1ce, t1, t2) and ``label`` (1, H, W, D); every random
decision is shared by both keys. Facts from the authors' ``data/transforms.py``:

- crop: a random ``size`` window, its start uniform over every position (``random.randint(0, s - k)``).
- rotation: one of the three planes of (H, W, D) ((1, 0), (2, 1), (2, 0)), an integer angle
  ``np.random.randint(-10, 10)`` (so -10 .. 9 degrees), nearest-neighbour, same size, constant fill -1 for the
  image. The authors fill their uint8 label with -1 too; SciPy's ndimage clamps a negative value written to an
  unsigned output to 0 (it does not wrap to 255), so with the pinned SciPy (1.17.1) their label fill is 0, the
  background -- the fill used here (tests/test_brats_label_fill.py).
- intensity: ``x * scale + shift`` with scale ~ U(0.9, 1.1) and shift ~ U(-0.1, 0.1). The authors draw the factors
  with shape [1, H, 1, 1, C] -- one per channel *and per index of the first spatial axis* (``per="slice"``, the
  default, kept because their models trained with it); ``per="channel"`` draws one per channel, the evident intent.
- flips: each spatial axis with probability 0.5.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.transforms import Compose, MapTransform, RandFlipd, Randomizable, RandSpatialCropd
from scipy.ndimage import rotate

KEYS = ("image", "label")
PLANES = ((1, 0), (2, 1), (2, 0))
INTENSITY_MODES = ("slice", "channel")


class RandPlaneRotated(Randomizable, MapTransform):
    """The authors' ``RandomRotion(angle)``: one random plane, an integer angle in [-angle, angle)."""

    def __init__(self, keys: Sequence[Hashable], angle: int = 10, fill: Mapping[Hashable, float] | None = None):
        super().__init__(keys)
        self.angle = int(angle)
        self.fill = dict(fill or {"image": -1.0, "label": 0})
        self.plane: tuple[int, int] = PLANES[0]
        self.degrees = 0

    def randomize(self, data: Any = None) -> None:
        self.plane = PLANES[self.R.randint(len(PLANES))]
        self.degrees = int(self.R.randint(-self.angle, self.angle)) if self.angle > 0 else 0

    def __call__(self, data: Mapping[Hashable, np.ndarray]) -> dict[Hashable, np.ndarray]:
        self.randomize()
        out = dict(data)
        if self.degrees == 0:
            return out
        for key in self.key_iterator(out):
            array = np.asarray(out[key])
            rotated = [
                rotate(channel, self.degrees, axes=self.plane, reshape=False, order=0, mode="constant",
                       cval=self.fill.get(key, 0))
                for channel in array
            ]  # fmt: skip
            out[key] = np.stack(rotated).astype(array.dtype, copy=False)
        return out


class RandIntensityScaleShiftd(Randomizable, MapTransform):
    """The authors' ``RandomIntensityChange((shift, scale))`` on ``image``: ``x * U(1 - scale, 1 + scale) +
    U(-shift, shift)``, factors per channel and first-axis index (``per="slice"``) or per channel."""

    def __init__(self, keys: Sequence[Hashable], shift: float = 0.1, scale: float = 0.1, per: str = "slice"):
        super().__init__(keys)
        if per not in INTENSITY_MODES:
            raise ValueError(f"per must be one of {INTENSITY_MODES}, got {per!r}")
        self.shift, self.scale, self.per = float(shift), float(scale), per
        self._shape: tuple[int, ...] = ()
        self.factors: tuple[np.ndarray, np.ndarray] | None = None

    def randomize(self, data: Any = None) -> None:
        # The authors draw the shifts first, then the scales.
        shift = self.R.uniform(-self.shift, self.shift, size=self._shape)
        scale = self.R.uniform(1.0 - self.scale, 1.0 + self.scale, size=self._shape)
        self.factors = (scale, shift)

    def __call__(self, data: Mapping[Hashable, np.ndarray]) -> dict[Hashable, np.ndarray]:
        out = dict(data)
        for key in self.key_iterator(out):
            image = np.asarray(out[key])
            channels, first = image.shape[0], image.shape[1]
            self._shape = (channels, first, 1, 1) if self.per == "slice" else (channels, 1, 1, 1)
            self.randomize()
            scale, shift = self.factors
            out[key] = (image * scale + shift).astype(image.dtype, copy=False)
        return out


def training_transforms(
    crop: int | Sequence[int] = 80,
    angle: int = 10,
    shift: float = 0.1,
    scale: float = 0.1,
    intensity_per: str = "slice",
) -> Compose:
    """The training augmentation as one MONAI ``Compose`` (seed it with ``set_random_state``)."""
    size = (crop,) * 3 if isinstance(crop, int) else tuple(crop)
    return Compose(
        [
            RandSpatialCropd(KEYS, roi_size=size, random_size=False),
            RandPlaneRotated(KEYS, angle=angle),
            RandIntensityScaleShiftd(("image",), shift=shift, scale=scale, per=intensity_per),
            *(RandFlipd(KEYS, prob=0.5, spatial_axis=axis) for axis in range(3)),
        ],
        lazy=False,
    )
