"""The NYUv2 hosts' preprocessing (ESANet ``src/preprocessing.py``; MMANet's copy in ``segmentation/src/``), as
numpy / OpenCV functions of a sample ``(rgb (H, W, 3) uint8 RGB, depth (H, W) uint16 mm, label (H, W) uint8)``.

Training, in the authors' order, every random draw from one ``numpy.random.Generator`` (:class:`TrainingAugmentation`):

1. ``RandomRescale((1.0, 1.4))``: a factor s ~ U(1.0, 1.4); the sample is resized to ``round(s H) x round(s W)``
   with ``cv2.resize`` -- bilinear for RGB, nearest for depth and labels.
2. ``RandomCrop(height, width)``: a ``height`` x ``width`` window at ``i ~ randint(0, H' - height)``, ``j ~
   randint(0, W' - width)`` (upper bounds exclusive, as ``np.random.randint``); when the rescaled sample is not
   larger than the window in both sides (``H' <= height or W' <= width``) it is resized to the window instead
   (RGB bilinear, depth and labels nearest) and nothing is drawn.
3. ``RandomHSV``, the RGB image only, H, S, V drawn in that order:

   - ``hsv="mmanet"`` (the default; MMANet's copy, which its NYUv2 runs and so the paper's used): the HSV
     transform of the 0-255 image (``matplotlib.colors.rgb_to_hsv`` of the uint8 array: H, S in [0, 1], V in
     0-255); ``H x U(0.9, 1.1)`` and ``S x U(0.9, 1.1)`` clipped to [0, 1], ``V + U(-25, 25)`` clipped to
     [0, 255]; back to RGB as float 0-255, not rounded;
   - ``hsv="esanet"`` (current ESANet): the HSV transform of ``rgb / 255``; H, S and V each ``x U(0.9, 1.1)``,
     clipped to [0, 1]; back to RGB, ``(x * 255).astype(uint8)`` (truncated).

   The conversions are OpenCV's float HSV (the same hexcone formulas as matplotlib's; equal to float32 rounding).
4. ``RandomFlip``: left-right, all three together, when ``rng.random() > 0.5``.

Then (both phases) ``Normalize``: RGB ``/ 255``, then ImageNet's mean / std per channel; depth ``(d - 2841.95) /
1417.26`` in millimetres. ESANet's refined depth (the ``depth`` folder) has no holes and every value is normalised,
zeros included; only its ``raw`` depth mode sets the pixels whose depth was 0 back to 0 after normalising
(``invalid_depth_zero=True`` here). Labels stay 0 = void, 1-40.

Test (ESANet's ``Rescale(height, width)``): RGB bilinear and depth nearest to ``height`` x ``width``; the label
is kept at its original size -- ESANet scores MIoU on ``label_orig`` after upsampling the logits bilinearly (the
segmentation2d task does that); at NYUv2's 480 x 640 nothing changes size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mwam_harness.datasets.nyuv2 import DEPTH_MEAN, DEPTH_STD

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
HSV_MODES = ("mmanet", "esanet")
SCALE = (1.0, 1.4)
HUE_SATURATION = (0.9, 1.1)
MMANET_VALUE_SHIFT = 25.0
ESANET_VALUE = (0.9, 1.1)

Sample = tuple[np.ndarray, np.ndarray, np.ndarray]


def resize(image: np.ndarray, height: int, width: int, nearest: bool) -> np.ndarray:
    """``cv2.resize`` to ``height`` x ``width`` (bilinear or nearest); unchanged when already that size."""
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)


def rescale(rgb: np.ndarray, depth: np.ndarray, label: np.ndarray | None, height: int, width: int) -> tuple:
    """ESANet's ``Rescale``: RGB bilinear, depth and label nearest (label None: left out)."""
    return (
        resize(rgb, height, width, nearest=False),
        resize(depth, height, width, nearest=True),
        None if label is None else resize(label, height, width, nearest=True),
    )


def random_rescale(sample: Sample, rng: np.random.Generator, scale: Sequence[float] = SCALE) -> Sample:
    """ESANet's ``RandomRescale``: one factor ~ U(min, max) for the whole sample."""
    factor = rng.uniform(min(scale), max(scale))
    height, width = sample[0].shape[:2]
    return rescale(*sample, round(factor * height), round(factor * width))  # ESANet: int(round(s * H))


def random_crop(sample: Sample, rng: np.random.Generator, height: int, width: int) -> Sample:
    """ESANet's ``RandomCrop``: a random window, or a resize to it when the sample is not larger."""
    rgb, depth, label = sample
    h, w = rgb.shape[:2]
    if h <= height or w <= width:
        return rescale(rgb, depth, label, height, width)
    i = int(rng.integers(0, h - height))
    j = int(rng.integers(0, w - width))
    window = (slice(i, i + height), slice(j, j + width))
    return (np.ascontiguousarray(rgb[window]), np.ascontiguousarray(depth[window]), np.ascontiguousarray(label[window]))


def hsv_jitter(rgb: np.ndarray, factors: tuple[float, float, float], mode: str = "mmanet") -> np.ndarray:
    """The HSV change of ``rgb`` (uint8 RGB) by drawn ``factors`` (H factor, S factor, V factor or shift): float32
    0-255 (``mmanet``) or uint8 (``esanet``); see the module docstring."""
    h_factor, s_factor, v_change = factors
    if mode == "mmanet":
        hsv = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2HSV)  # H in degrees, S in [0, 1], V in 0-255
        hue = np.clip(hsv[..., 0] / 360.0 * h_factor, 0, 1)
        hsv[..., 1] = np.clip(hsv[..., 1] * s_factor, 0, 1)
        hsv[..., 2] = np.clip(hsv[..., 2] + v_change, 0, 255)
        hsv[..., 0] = hue * 360.0
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if mode == "esanet":
        hsv = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
        hue = np.clip(hsv[..., 0] / 360.0 * h_factor, 0, 1)
        hsv[..., 1] = np.clip(hsv[..., 1] * s_factor, 0, 1)
        hsv[..., 2] = np.clip(hsv[..., 2] * v_change, 0, 1)
        hsv[..., 0] = hue * 360.0
        return (cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255).astype(np.uint8)
    raise ValueError(f"hsv must be one of {HSV_MODES}, got {mode!r}")


def draw_hsv(rng: np.random.Generator, mode: str) -> tuple[float, float, float]:
    """The H, S, V draws of ``RandomHSV`` (in that order)."""
    h_factor = float(rng.uniform(*HUE_SATURATION))
    s_factor = float(rng.uniform(*HUE_SATURATION))
    if mode == "mmanet":
        return h_factor, s_factor, float(rng.uniform(-MMANET_VALUE_SHIFT, MMANET_VALUE_SHIFT))
    if mode == "esanet":
        return h_factor, s_factor, float(rng.uniform(*ESANET_VALUE))
    raise ValueError(f"hsv must be one of {HSV_MODES}, got {mode!r}")


def random_flip(sample: Sample, rng: np.random.Generator) -> Sample:
    """ESANet's ``RandomFlip``: all three left-right when ``rng.random() > 0.5``."""
    if rng.random() > 0.5:
        return tuple(np.ascontiguousarray(a[:, ::-1]) for a in sample)  # type: ignore[return-value]
    return sample


def normalise_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB 0-255 -> (3, H, W) float32: ``/ 255``, then ImageNet's mean / std."""
    image = rgb.astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    return np.ascontiguousarray((image - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None])


def normalise_depth(
    depth: np.ndarray, mean: float = DEPTH_MEAN, std: float = DEPTH_STD, invalid_depth_zero: bool = False
) -> np.ndarray:
    """(H, W) depth in mm -> (1, H, W) float32 ``(d - mean) / std``; ``invalid_depth_zero``: pixels of depth 0 stay
    0 (ESANet's raw-depth mode)."""
    values = depth.astype(np.float32)
    out = (values - np.float32(mean)) / np.float32(std)
    if invalid_depth_zero:
        out[values == 0] = 0
    return np.ascontiguousarray(out[None])


@dataclass(frozen=True)
class TrainingAugmentation:
    """The training preprocessing up to the normalisation (steps 1-4 of the module docstring)."""

    height: int = 480
    width: int = 640
    scale: tuple[float, float] = SCALE
    hsv: str = "mmanet"

    def __post_init__(self) -> None:
        if self.hsv not in HSV_MODES:
            raise ValueError(f"hsv must be one of {HSV_MODES}, got {self.hsv!r}")
        if len(self.scale) != 2 or not 0 < min(self.scale):
            raise ValueError(f"scale must be two factors > 0, got {self.scale!r}")

    def __call__(self, rgb: np.ndarray, depth: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> Sample:
        sample = random_rescale((rgb, depth, label), rng, self.scale)
        rgb, depth, label = random_crop(sample, rng, self.height, self.width)
        rgb = hsv_jitter(rgb, draw_hsv(rng, self.hsv), self.hsv)
        return random_flip((rgb, depth, label), rng)
