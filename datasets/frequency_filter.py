"""Frequency filters of images: the low-pass / high-pass data sets of the paper's Sec. 3.1 (Fig. 1, Appendix A.5,
Fig. 5) and of Appendix A.16 (Tables 18-21). NumPy only (no torch, no OpenCV), so the loaders import it cheaply.

A data set option ``filter: {kind: low|high, size: n, reading: spectrum|spatial, restore: clip|minmax}`` (CASIA-SURF:
``data.options.filter`` of a run) is turned into a :class:`FrequencyFilter` and applied to every image of every
modality, in every split, before any augmentation; CASIA-SURF filters each decoded image at its stored resolution,
before the loader's resize (the filtered *data set* of A.5), so n counts frequency bins of the stored image.

**The spectrum reading (A.5, the default).** Per image and channel: the 2-D FFT, the DC component shifted to the
centre (``fftshift``), a window of ``n x n`` frequency bins centred on the DC component -- the **low-pass** keeps
only that window (every other bin set to 0), the **high-pass** sets only that window to 0 -- then the inverse shift,
the inverse FFT and the **real part** (the paper does not say real part or magnitude; the real part is the linear
choice: low + high = the image, and a high-pass result keeps its sign). After ``fftshift`` the DC bin of an axis of
length L lies at index ``L // 2``; the window covers the indices ``L // 2 - n // 2`` to ``L // 2 - n // 2 + n - 1``,
i.e. the frequencies ``-(n // 2) .. n - 1 - n // 2``: symmetric about DC for an odd n (the result is then real up to
rounding), one more negative frequency for an even n (whose real part weights the unpaired frequency by 1/2). A
larger n keeps more in the low-pass and removes more in the high-pass.

**The spatial reading (A.16, ``reading: spatial``).** Tables 18-21 suggest that A.16's "kernel size" k cannot be a
k x k spectrum window for the low-pass (a 3 x 3 window of a 518-px image is nearly flat,
yet it *raises* accuracy), so there the **low-pass is a k x k spatial smoothing**: here a box (mean) filter, the
border reflected without repeating the edge (OpenCV's default ``BORDER_REFLECT_101``; the same values as
``cv2.blur(image, (k, k))``, anchor at ``k // 2``). Its **high-pass stays the spectrum high-pass** (a centred k x k
window of the spectrum zeroed), which fits the gentle decline of Tables 20-21; so under this reading low + high is
not the image. The paper is ambiguous: A.5 (Fig. 1) uses ``spectrum``; choose ``spatial`` for the A.16 reading.

**A window larger than the image is clamped** to the image (the window is intersected with the spectrum), never an
error: images of one data set may differ in size, and a low-pass of size >= the image is the identity (a
high-pass of that size gives an all-zero image).

**Back to uint8** (a loader's images are uint8 H x W x C before augmentation): ``restore: clip`` (default) rounds
to the nearest integer (half to even, ``numpy.rint``) and clips to 0..255 -- what writing the filtered float image
to an 8-bit file does (a filtered *data set*, as A.5 describes), and the identity for a filter that changes nothing.
Note that a high-pass image has mean about 0, so clipping keeps only its positive half; ``restore: minmax`` instead
rescales each filtered image linearly so that its minimum is 0 and its maximum 255 (over all channels together; a
constant image becomes 0), as an image viewer shows it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("low", "high")
READINGS = ("spectrum", "spatial")
RESTORES = ("clip", "minmax")


def _choice(value: Any, choices: tuple[str, ...], name: str) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"filter {name} must be one of {list(choices)}, got {value!r}")


@dataclass(frozen=True)
class FrequencyFilter:
    """A low- or high-pass filter of window / kernel ``size`` (module docstring: the two readings, the clamping of
    a window larger than the image, the return to uint8)."""

    kind: str
    size: int
    reading: str = "spectrum"
    restore: str = "clip"

    def __post_init__(self) -> None:
        _choice(self.kind, KINDS, "kind")
        if not isinstance(self.size, int | np.integer) or isinstance(self.size, bool) or self.size < 1:
            raise ValueError(f"filter size must be an integer >= 1 (the window / kernel side, px), got {self.size!r}")
        object.__setattr__(self, "size", int(self.size))
        _choice(self.reading, READINGS, "reading")
        _choice(self.restore, RESTORES, "restore")

    @classmethod
    def from_option(cls, value: Any) -> FrequencyFilter | None:
        """A data set's ``filter`` option: None (no filter), a :class:`FrequencyFilter`, or a mapping of its fields
        (``{"kind": "low", "size": 15}``); ValueError naming what is wrong otherwise."""
        if value is None or isinstance(value, FrequencyFilter):
            return value
        known = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(value, Mapping):
            raise ValueError(f"filter must be a mapping like {{kind: low, size: 15}} (fields {known}), got {value!r}")
        unknown = sorted(set(value) - set(known))
        missing = [name for name in ("kind", "size") if name not in value]
        if unknown or missing:
            raise ValueError(
                f"filter takes the fields {known} (kind and size required); unknown {unknown}, missing {missing}"
            )
        return cls(**dict(value))

    @property
    def label(self) -> str:
        """``low-15``, ``high-30`` (``low-3-spatial`` for the spatial reading): a legend entry."""
        suffix = "-spatial" if self.reading == "spatial" else ""
        return f"{self.kind}-{self.size}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The filtered image as float64, same shape (H x W or H x W x C, each channel on its own), not restored."""
        image = _check_image(image)
        if self.kind == "low" and self.reading == "spatial":
            return box_blur(image, self.size)
        return spectrum_filter(image, self.kind, self.size)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The filtered image as uint8 (``restore``): what a loader gets instead of ``image``."""
        return to_uint8(self.apply(image), self.restore)


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected a non-empty H x W or H x W x C image array, got {type(image).__name__} {shape}")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == np.bool_) or np.iscomplexobj(image):
        raise ValueError(f"expected a real-valued image, got dtype {image.dtype}")
    return image


def centred_window(length: int, size: int) -> slice:
    """The indices of a ``size``-bin window centred on the DC bin (index ``length // 2`` after ``fftshift``) of an
    axis of ``length`` bins, clamped to the axis."""
    start = length // 2 - size // 2
    return slice(max(start, 0), min(start + size, length))


def spectrum_filter(image: np.ndarray, kind: str, size: int) -> np.ndarray:
    """A.5's filter (module docstring): FFT per channel, DC centred, the ``size x size`` window kept (``low``) or
    zeroed (``high``), inverse shift and FFT, real part; float64 of ``image``'s shape."""
    _choice(kind, KINDS, "kind")
    image = _check_image(image)
    h, w = image.shape[:2]
    spectrum = np.fft.fftshift(np.fft.fft2(image.astype(np.float64), axes=(0, 1)), axes=(0, 1))
    window = (centred_window(h, size), centred_window(w, size))
    if kind == "low":
        kept = np.zeros_like(spectrum)
        kept[window] = spectrum[window]
        spectrum = kept
    else:
        spectrum[window] = 0
    return np.fft.ifft2(np.fft.ifftshift(spectrum, axes=(0, 1)), axes=(0, 1)).real


def box_blur(image: np.ndarray, size: int) -> np.ndarray:
    """The mean over a ``size x size`` neighbourhood (anchor ``size // 2``) with reflect-101 borders, per channel;
    float64 (A.16's low-pass under the spatial reading; equals ``cv2.blur`` on float input)."""
    image = _check_image(image).astype(np.float64)
    before, after = size // 2, size - 1 - size // 2
    pad = [(before, after), (before, after)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, mode="reflect")  # numpy's "reflect" = OpenCV's BORDER_REFLECT_101
    for axis in (0, 1):
        cumulative = np.cumsum(padded, axis=axis)
        zero = np.zeros_like(np.take(cumulative, [0], axis=axis))
        cumulative = np.concatenate([zero, cumulative], axis=axis)
        length = padded.shape[axis] - size + 1
        padded = np.take(cumulative, range(size, size + length), axis=axis) - np.take(
            cumulative, range(length), axis=axis
        )
    return padded / float(size * size)


def to_uint8(image: np.ndarray, restore: str = "clip") -> np.ndarray:
    """A filtered float image back to uint8: ``clip`` rounds (half to even) and clips to 0..255; ``minmax``
    rescales the image's range to 0..255 (a constant image gives 0)."""
    _choice(restore, RESTORES, "restore")
    image = np.asarray(image, dtype=np.float64)
    if restore == "minmax":
        low, high = float(image.min()), float(image.max())
        span = high - low
        image = (image - low) * (255.0 / span) if span > 0 else np.zeros_like(image)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def log_spectrum(image: np.ndarray) -> np.ndarray:
    """``log(1 + |FFT|)`` with DC at the centre, averaged over the channels: H x W float64 (Fig. 5's second
    column, the frequency-domain view of an image)."""
    image = _check_image(image).astype(np.float64)
    magnitude = np.abs(np.fft.fftshift(np.fft.fft2(image, axes=(0, 1)), axes=(0, 1)))
    if magnitude.ndim == 3:
        magnitude = magnitude.mean(axis=2)
    return np.log1p(magnitude)


__all__ = [
    "KINDS",
    "READINGS",
    "RESTORES",
    "FrequencyFilter",
    "box_blur",
    "centred_window",
    "log_spectrum",
    "spectrum_filter",
    "to_uint8",
]
