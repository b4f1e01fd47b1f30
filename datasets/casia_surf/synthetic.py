"""A small synthetic CASIA-SURF written in the exact on-disk layout of the real one (for tests and the demo).

CASIA-SURF (``write_casia_surf``; CLI ``python -m mwam_harness.datasets.synthetic casia_surf OUT_DIR``)
==========================================================================================

Every sample is one synthetic face seen by three registered cameras (same face ellipse, position and roll
in RGB, Depth and IR), with a binary label y (1 = real, 0 = attack, exactly balanced per split; subjects of
8 samples, disjoint between splits). Each modality m shows the label through a cue of amplitude ``A_m`` in
its own spatial-frequency band, under its own iid Gaussian pixel noise of standard deviation ``noise_m``
(grey levels, 0-255); everything else (position, size, roll, colours, lighting, distance, tilt, eyes and
mouth) is random and the same for both classes:

- **Depth** (grey; low frequency; easy): background exactly 0 (no depth, as CASIA-SURF's cropped depth
  maps); the face is a plane at distance L ~ U(110, 140) with a tilt of up to +-10 grey levels at the face
  border. Real: plus a smooth dome ``A sqrt(1 - rho^2)`` and a nose bump of height ``0.35 A``; attack: the
  flat plane of a print or screen. ``noise = 2`` on the face only.
- **IR** (grey; medium frequency; medium): dark background U(25, 55), bright shaded face with dark eyes.
  Attack: plus a halftone dot grid ``A/2 (cos(2 pi x'/P) + cos(2 pi y'/P))``, P ~ U(6, 10) px, random
  orientation, on the face. ``noise = 10``.
- **RGB** (BGR colour; high frequency; hard): random background colour and lighting gradient, skin-toned
  shaded face with eyes and mouth. On the face, in all three channels, a fine pattern of the same band
  (periods 3-5 px) and the same RMS ``A / sqrt(2)`` for both classes: real = isotropic random skin texture,
  attack = moire grating ``A cos(2 pi x'/P + phase)``, P ~ U(3, 5) px, one random orientation. Only the
  pattern's structure differs (its energy does not), under ``noise = 28``.

``imbalance`` b in [0, 1] sets, per modality, ``A = noise * snr_balanced^(1-b) * snr_imbalanced^b`` and the
fraction ``u = (1-b) u_balanced + b u_imbalanced`` of samples whose cue in that modality shows an
independent random label instead of y, so that modality alone is right on at most ``1 - u/2`` of them:

====== ===== ============================ ============================
m      noise A: b=0 -> b=1 (snr)           u: b=0 -> b=1 (ceiling)
====== ===== ============================ ============================
Depth  2     30 -> 50   (15 -> 25)          0.10 -> 0.02 (95% -> 99%)
IR     10    20 -> 16   (2 -> 1.6)          0.10 -> 0.10 (95%)
RGB    28    84 -> 56   (3 -> 2)            0.10 -> 0.16 (95% -> 92%)
====== ===== ============================ ============================

The amplitudes were calibrated with a small CNN (three stride-2 conv blocks per modality, concatenation,
Adam, 20 epochs on the default 384 training samples at 112 px; synthetic-data numbers, details in
docs/datasets.md): at b = 0 each modality alone reaches about the common 95% ceiling (test accuracy RGB
0.94, Depth 0.93, IR 0.94); at b = 1 Depth alone reaches 0.99, IR 0.91, RGB 0.75, and the network trained
on all three leans on Depth: 0.99 with it, 0.50 (chance) on RGB + IR without it -- the paper's phenomenon
(Table 1: missing Depth hurts most). At every b the FRM ordering is Depth > IR > RGB, as Table 1's FRM
column: it follows the spectra (Depth's exact-zero background and tiny noise give near-zero
high-frequency DCT coefficients, RGB's strong noise large ones), not the cue strengths.
Samples are JPEG (quality 95) written with ``cv2.imwrite``; everything is a deterministic function of the
parameters (the per-sample generator is seeded from ``(seed, split, index)``).

Layout (as CASIA-SURF): ``Training/{real,fake}_part/SYN_AS####/{real,attack}.rssdk/{color,depth,ir}/N.jpg``,
``Val/####/######-{color,depth,ir}.jpg``, ``Testing/####/######-{color,depth,ir}.jpg`` and the list files
``train_list.txt``, ``val_private_list.txt``, ``test_private_list.txt``. The set is built in a temporary
directory next to ``out_dir`` and renamed into place; ``synthetic.json`` (the parameters) is written last,
and a directory whose marker holds the same parameters is reused as is.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mwam_harness.datasets.casia_surf import MODALITIES, SPLITS
from mwam_harness.datasets.files import built_beside, write_text_atomic
from mwam_harness.datasets.registry import SYNTHETIC_MARKER as MARKER
from mwam_harness.datasets.registry import read_synthetic_marker

SURF_FORMAT = 1
JPEG_QUALITY = 95
FRAMES_PER_SUBJECT = 8
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_FILE_TAGS = {"rgb": "color", "depth": "depth", "ir": "ir"}
RGB_PERIOD = (3.0, 5.0)  # px, moire grating of RGB attacks
IR_PERIOD = (6.0, 10.0)  # px, halftone grid of IR attacks


@dataclass(frozen=True)
class SyntheticSurfConfig:
    """Parameters of a synthetic CASIA-SURF (see the module docstring for the generative model)."""

    num_train: int = 384
    num_val: int = 64
    num_test: int = 192
    size: int = 112
    imbalance: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_train", "num_val", "num_test"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 16 <= self.size <= 1024:
            raise ValueError(f"size must be an integer in [16, 1024], got {self.size!r}")
        if not isinstance(self.imbalance, int | float) or not 0.0 <= float(self.imbalance) <= 1.0:
            raise ValueError(f"imbalance must be a number in [0, 1], got {self.imbalance!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "imbalance", float(self.imbalance))

    def counts(self) -> dict[str, int]:
        """Number of samples per split."""
        return {"train": self.num_train, "val": self.num_val, "test": self.num_test}


@dataclass(frozen=True)
class CueModel:
    """How one modality shows the label: pixel noise, cue-to-noise ratio and uninformative fraction at b=0 / b=1."""

    noise: float
    snr_balanced: float
    snr_imbalanced: float
    uninformative_balanced: float
    uninformative_imbalanced: float

    def amplitude(self, imbalance: float) -> float:
        """Cue amplitude in grey levels: ``noise * snr_balanced^(1-b) * snr_imbalanced^b``."""
        return self.noise * self.snr_balanced ** (1.0 - imbalance) * self.snr_imbalanced**imbalance

    def uninformative(self, imbalance: float) -> float:
        """Fraction of samples whose cue shows a random label: linear in b."""
        return (1.0 - imbalance) * self.uninformative_balanced + imbalance * self.uninformative_imbalanced


SURF_CUES: dict[str, CueModel] = {
    "rgb": CueModel(noise=28.0, snr_balanced=3.0, snr_imbalanced=2.0, uninformative_balanced=0.10,
                    uninformative_imbalanced=0.16),
    "depth": CueModel(noise=2.0, snr_balanced=15.0, snr_imbalanced=25.0, uninformative_balanced=0.10,
                      uninformative_imbalanced=0.02),
    "ir": CueModel(noise=10.0, snr_balanced=2.0, snr_imbalanced=1.6, uninformative_balanced=0.10,
                   uninformative_imbalanced=0.10),
}  # fmt: skip


@dataclass(frozen=True)
class _Face:
    """Geometry shared by the three cameras: normalised face coordinates (u, v), rho^2 and pixel coordinates."""

    u: np.ndarray
    v: np.ndarray
    rho2: np.ndarray
    mask: np.ndarray
    xs: np.ndarray
    ys: np.ndarray


def _gauss(face: _Face, u0: float, v0: float, sigma: float) -> np.ndarray:
    return np.exp(-((face.u - u0) ** 2 + (face.v - v0) ** 2) / (2.0 * sigma**2))


def _face(size: int, subject: np.random.Generator, rng: np.random.Generator) -> _Face:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    cx, cy = size / 2 + rng.normal(0.0, 0.04 * size, 2)
    a = size * subject.uniform(0.24, 0.30)
    b = a * subject.uniform(1.15, 1.30)
    roll = rng.uniform(-0.2, 0.2)
    dx, dy = xs - cx, ys - cy
    u = (math.cos(roll) * dx + math.sin(roll) * dy) / a
    v = (-math.sin(roll) * dx + math.cos(roll) * dy) / b
    rho2 = u**2 + v**2
    return _Face(u=u, v=v, rho2=rho2, mask=(rho2 < 1.0).astype(np.float32), xs=xs, ys=ys)


def _wave(face: _Face, period: float, angle: float, phase: float) -> np.ndarray:
    along = face.xs * math.cos(angle) + face.ys * math.sin(angle)
    return np.cos(2.0 * math.pi * along / period + phase)


def _skin_texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """Isotropic random texture in the moire's frequency band (periods ``RGB_PERIOD``) with the grating's RMS."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    band = (radius >= 1.0 / RGB_PERIOD[1]) & (radius <= 1.0 / RGB_PERIOD[0])
    texture = np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * band).real
    return texture * (math.sqrt(0.5) / max(float(texture.std()), 1e-12))


def _depth(face: _Face, shown: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    tilt_u, tilt_v = rng.uniform(-10.0, 10.0, 2)
    z = rng.uniform(110.0, 140.0) + tilt_u * face.u + tilt_v * face.v
    if shown == 1:
        z = z + amplitude * (np.sqrt(np.clip(1.0 - face.rho2, 0.0, None)) + 0.35 * _gauss(face, 0.0, 0.05, 0.15))
    z = z + rng.normal(0.0, SURF_CUES["depth"].noise, z.shape)
    return np.clip(z, 1.0, 255.0) * face.mask


def _ir(face: _Face, shown: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    size = face.xs.shape[0]
    background = rng.uniform(25.0, 55.0) + rng.uniform(-10.0, 10.0) * (face.xs / size - 0.5)
    skin = rng.uniform(130.0, 175.0) * (1.0 - 0.3 * face.rho2)
    eyes = 1.0 - 0.6 * (_gauss(face, -0.38, -0.25, 0.09) + _gauss(face, 0.38, -0.25, 0.09))
    image = background * (1.0 - face.mask) + skin * eyes * face.mask
    if shown == 0:
        period, angle = rng.uniform(*IR_PERIOD), rng.uniform(0.0, math.pi)
        grid = _wave(face, period, angle, rng.uniform(0, 2 * math.pi))
        grid = grid + _wave(face, period, angle + math.pi / 2, rng.uniform(0, 2 * math.pi))
        image = image + 0.5 * amplitude * grid * face.mask
    return image + rng.normal(0.0, SURF_CUES["ir"].noise, image.shape)


def _rgb(face: _Face, tone: np.ndarray, shown: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    size = face.xs.shape[0]
    light = rng.uniform(-30.0, 30.0) * (face.xs / size - 0.5) + rng.uniform(-30.0, 30.0) * (face.ys / size - 0.5)
    background = rng.uniform(60.0, 190.0, 3)[None, None, :] + light[..., None]
    shading = (1.0 - 0.2 * face.rho2 + rng.uniform(-0.15, 0.15) * face.u)[..., None]
    features = 1.0 - 0.5 * (_gauss(face, -0.38, -0.25, 0.10) + _gauss(face, 0.38, -0.25, 0.10))
    features = features - 0.35 * np.exp(-((face.u / 2.5) ** 2 + (face.v - 0.5) ** 2) / (2.0 * 0.08**2))
    skin = tone[None, None, :] * shading * features[..., None]
    mask = face.mask[..., None]
    image = background * (1.0 - mask) + skin * mask
    if shown == 0:
        fine = _wave(face, rng.uniform(*RGB_PERIOD), rng.uniform(0.0, math.pi), rng.uniform(0, 2 * math.pi))
    else:
        fine = _skin_texture(size, rng)
    image = image + amplitude * (fine * face.mask)[..., None]
    return image + rng.normal(0.0, SURF_CUES["rgb"].noise, image.shape)


def shown_labels(config: SyntheticSurfConfig, split: str, index: int, label: int) -> dict[str, int]:
    """The label each modality's cue shows: ``label``, or for a fraction ``u`` of samples a random one."""
    rng = np.random.default_rng([config.seed, 30 + _SPLIT_CODES[split], index])
    shown = {}
    for modality in MODALITIES:
        informative = rng.random() >= SURF_CUES[modality].uninformative(config.imbalance)
        shown[modality] = label if informative else int(rng.integers(0, 2))
    return shown


def render_surf_sample(config: SyntheticSurfConfig, split: str, index: int, label: int) -> dict[str, np.ndarray]:
    """The three uint8 images (rgb: H x W x 3 BGR, depth / ir: H x W) of one sample; deterministic."""
    code = _SPLIT_CODES[split]
    rng = np.random.default_rng([config.seed, code, index])
    subject = np.random.default_rng([config.seed, 10 + code, index // FRAMES_PER_SUBJECT])
    tone = np.array([110.0, 140.0, 190.0]) * subject.uniform(0.7, 1.05)
    face = _face(config.size, subject, rng)
    b = config.imbalance
    shown = shown_labels(config, split, index, label)
    images = {
        "rgb": _rgb(face, tone, shown["rgb"], SURF_CUES["rgb"].amplitude(b), rng),
        "depth": _depth(face, shown["depth"], SURF_CUES["depth"].amplitude(b), rng),
        "ir": _ir(face, shown["ir"], SURF_CUES["ir"].amplitude(b), rng),
    }
    return {m: np.clip(np.rint(image), 0, 255).astype(np.uint8) for m, image in images.items()}


def _relative_paths(split: str, index: int, label: int) -> dict[str, str]:
    subject = index // FRAMES_PER_SUBJECT
    if split == "train":
        part, take = ("real_part", "real.rssdk") if label == 1 else ("fake_part", "attack.rssdk")
        return {m: f"Training/{part}/SYN_AS{subject:04d}/{take}/{_FILE_TAGS[m]}/{index}.jpg" for m in MODALITIES}
    top = "Val" if split == "val" else "Testing"
    return {m: f"{top}/{subject:04d}/{index:06d}-{_FILE_TAGS[m]}.jpg" for m in MODALITIES}


def split_labels(config: SyntheticSurfConfig, split: str) -> np.ndarray:
    """Exactly balanced labels (the extra one of an odd count is real) in a seeded random order."""
    count = config.counts()[split]
    labels = (np.arange(count) % 2 == 0).astype(np.int64)
    np.random.default_rng([config.seed, 20 + _SPLIT_CODES[split]]).shuffle(labels)
    return labels


def surf_model() -> dict:
    """The generative model's constants (stored in the marker: changing them invalidates cached sets)."""
    return {
        "cues": {m: asdict(cue) for m, cue in SURF_CUES.items()},
        "rgb_period": list(RGB_PERIOD),
        "ir_period": list(IR_PERIOD),
        "jpeg_quality": JPEG_QUALITY,
        "frames_per_subject": FRAMES_PER_SUBJECT,
    }


def _marker_payload(config: SyntheticSurfConfig) -> dict:
    return {"kind": "casia_surf", "format": SURF_FORMAT, "params": asdict(config), "model": surf_model()}


def is_complete(directory: str | Path, config: SyntheticSurfConfig) -> bool:
    """Whether ``directory`` holds a finished synthetic CASIA-SURF written with ``config``."""
    directory = Path(directory)
    if read_synthetic_marker(directory) != _marker_payload(config):
        return False
    return all((directory / name).is_file() for name in SPLITS.values())


def _write_surf(directory: Path, config: SyntheticSurfConfig, progress: bool) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    total = sum(config.counts().values())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="synthetic CASIA-SURF", unit="sample")
    for split, list_name in SPLITS.items():
        lines = []
        for index, label in enumerate(split_labels(config, split).tolist()):
            images = render_surf_sample(config, split, index, label)
            paths = _relative_paths(split, index, label)
            for modality in MODALITIES:
                target = directory / paths[modality]
                target.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(target), images[modality], params):
                    raise OSError(f"{target}: cv2.imwrite failed")
            lines.append(f"{paths['rgb']} {paths['depth']} {paths['ir']} {label}\n")
            if bar is not None:
                bar.update()
        write_text_atomic(directory / list_name, "".join(lines))
    if bar is not None:
        bar.close()


def write_casia_surf(
    out_dir: str | Path,
    num_train: int = 384,
    num_val: int = 64,
    num_test: int = 192,
    size: int = 112,
    imbalance: float = 1.0,
    seed: int = 0,
    *,
    progress: bool = False,
) -> Path:
    """Write (or reuse) a synthetic CASIA-SURF at ``out_dir`` and return its path.

    Reuses ``out_dir`` untouched when its ``synthetic.json`` holds the same parameters; replaces an older
    synthetic set (other parameters); refuses to touch a non-empty directory without a marker.
    """
    config = SyntheticSurfConfig(num_train, num_val, num_test, size, imbalance, seed)
    out = Path(out_dir)
    if is_complete(out, config):
        return out
    with built_beside(
        out, lambda d: read_synthetic_marker(d) is not None, lambda d: is_complete(d, config), MARKER
    ) as built:
        _write_surf(built, config, progress)
        write_text_atomic(built / MARKER, json.dumps(_marker_payload(config), indent=2) + "\n")
    return out
