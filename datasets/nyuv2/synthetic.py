"""A synthetic NYU-Depth V2 in the exact prepared layout (real PNGs written with OpenCV), for tests and the demo.

``write_nyuv2(out_dir)`` writes ``out_dir/{train,test}/{rgb,depth,labels_40}/NNNN.png``, ``train.txt`` /
``test.txt`` (indices 1..N, the test split a seeded draw, both lists sorted as NYU's), ``class_names_1+40.txt``, the
class-weight cache of the training split (``class_weights.py``; the classes the scenes never show get weight 0) and
``synthetic.json`` (the parameters). The set is built in a temporary directory beside ``out_dir`` and moved into
place; a directory whose marker holds the same parameters is reused as is.

Generative model, per image (a generator seeded from ``(seed, image number)``): a room seen by a pinhole camera
(focal length 0.75 W, principal point at mid-width and 0.3-0.4 H), each pixel's depth (metres, along the optical
axis) from the nearest plane its ray meets -- the back wall at Z ~ U(3.5, 6) m, side walls at x = +-U(1.6, 2.6) m
(both **wall**, 1), the **floor** (2) U(1.1, 1.5) m below the camera, the **ceiling** (22) U(2.5, 2.9) m above the
floor. On the back wall, in 2-3 of three slots, a rectangle of U(0.5, 1.1) x U(0.6, 1.3) m, drawn in the image
from the same distribution whatever its class:

    class           colour / texture (RGB)                          depth
    door (8)        wood: brown, horizontal grain                   flush with the wall
    cabinet (3)     wood: the same colour model as door             0.35-0.8 m in front of the wall
    window (9)      bright, bluish, smooth                          flush with the wall
    picture (11)    one saturated random hue, blotchy texture       flush with the wall

so door and cabinet differ **only in depth**, window and picture (and both against the wall) **only in colour**.
On the floor, 1-2 fronto-parallel pieces of furniture at U(1.8, Z - 0.6) m, standing on the floor (their image
extent is their projection): **bed** (4, 1.4-2.0 m wide, 0.45-0.6 m high, cream fabric, a slight bulge), **sofa**
(6, 1.5-2.2 x 0.75-0.9 m, saturated fabric, a back 0.3 m behind the seat), **table** (7, 0.8-1.4 x 0.7-0.8 m, dark
wood: an 8 cm top and two legs, the room visible between them). Void (0): an unlabelled clutter blob in 60 % of the
images (random colour, 0.1-0.5 m in front of what it covers) and 70 % of the pixels on a label boundary.
The wall is beige, the floor brown or grey planks, the ceiling white; the lighting is a smooth gradient over the
image, never a function of depth (so colour does not betray depth), plus Gaussian noise (4 grey levels). Depth gets
Kinect-like noise (standard deviation 1.5 mm x z^2 with z in m) and is stored in millimetres (uint16).
**Synthetic data**: it tests the pipeline; nothing measured on it says anything about NYU-Depth V2.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from mwam_harness.datasets.files import built_beside, write_text_atomic
from mwam_harness.datasets.nyuv2 import SPLITS
from mwam_harness.datasets.nyuv2.class_weights import write_class_weights
from mwam_harness.datasets.nyuv2.prepare import write_lists, write_sample
from mwam_harness.datasets.registry import SYNTHETIC_MARKER, read_synthetic_marker

SYNTHETIC_FORMAT = 1
WALL, FLOOR, CABINET, BED, SOFA, TABLE, DOOR, WINDOW, PICTURE, CEILING = 1, 2, 3, 4, 6, 7, 8, 9, 11, 22
WALL_ITEMS = (DOOR, CABINET, WINDOW, PICTURE)
FLOOR_ITEMS = (BED, SOFA, TABLE)
#: Metres in front of the back wall of a wall item's face (the others are flush).
PROTRUSION = {CABINET: (0.35, 0.8)}
CLASSES = (WALL, FLOOR, CABINET, BED, SOFA, TABLE, DOOR, WINDOW, PICTURE, CEILING)


def _smooth(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Smooth noise in about [-1, 1] with features of ``cell`` pixels (a coarse grid upsampled bilinearly)."""
    coarse = rng.uniform(-1, 1, size=(max(2, round(shape[0] / cell) + 1), max(2, round(shape[1] / cell) + 1)))
    return cv2.resize(coarse.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _hue_colour(rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 360), rng.uniform(*saturation), rng.uniform(*value)]]], np.float32)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0] * 255


def _wood(rng: np.random.Generator, v: np.ndarray, base: tuple[float, float], amplitude: float) -> tuple:
    colour = rng.uniform(*base) * np.array([1.0, 0.72, 0.48])
    period, phase = rng.uniform(3, 6), rng.uniform(0, 2 * np.pi)
    return colour, amplitude * np.sin(2 * np.pi * v / period + phase)


def _look(cls: int, rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(colour (3,), texture (H, W))`` of one region of class ``cls`` (the texture is added to every channel)."""
    shape = u.shape
    if cls == WALL:
        return rng.uniform(175, 215) + np.array([6, 2, -6]) + rng.uniform(-8, 8, 3), 4 * _smooth(rng, shape, 8)
    if cls == FLOOR:
        tone = np.array([1.0, 0.85, 0.7]) if rng.random() < 0.6 else np.array([1.0, 1.0, 1.02])
        period, phase = rng.uniform(6, 12), rng.uniform(0, 2 * np.pi)
        return rng.uniform(105, 145) * tone, 14 * np.sin(2 * np.pi * u / period + phase) + 5 * _smooth(rng, shape, 3)
    if cls == CEILING:
        return np.full(3, rng.uniform(226, 242)), 2 * _smooth(rng, shape, 10)
    if cls in (DOOR, CABINET):  # one colour model for both: only depth tells them apart
        colour, grain = _wood(rng, v, (120, 160), 12)
        return colour, grain + 6 * _smooth(rng, shape, 2)
    if cls == WINDOW:
        return np.array([205, 220, 238]) + rng.uniform(-12, 12), 3 * _smooth(rng, shape, 6)
    if cls == PICTURE:
        return _hue_colour(rng, (0.6, 0.9), (0.45, 0.8)), 35 * _smooth(rng, shape, 3)
    if cls == BED:
        return rng.uniform(215, 240) * np.array([1.0, 0.97, 0.92]), 5 * _smooth(rng, shape, 2)
    if cls == SOFA:
        return _hue_colour(rng, (0.5, 0.8), (0.35, 0.6)), 10 * _smooth(rng, shape, 1.5)
    if cls == TABLE:
        colour, grain = _wood(rng, v, (70, 100), 8)
        return colour, grain
    raise ValueError(f"no look for class {cls}")


def render_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic image: ``(rgb (H, W, 3) uint8 RGB, depth (H, W) uint16 mm, label (H, W) uint8)``; see the
    module docstring."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    f, cx, cy = 0.75 * width, width / 2, height * rng.uniform(0.3, 0.4)
    back, side = rng.uniform(3.5, 6.0), rng.uniform(1.6, 2.6)
    camera, room = rng.uniform(1.1, 1.5), rng.uniform(2.5, 2.9)
    dx, dy = (u - cx) / f, -(v - cy) / f  # ray (dx, dy, 1): a point at depth z is (z dx, z dy, z)
    with np.errstate(divide="ignore"):
        candidates = {
            WALL: np.where(np.abs(dx) * back > side, side / np.abs(dx), back),  # back wall, or a side wall before it
            FLOOR: np.where(dy < 0, camera / -dy, np.inf),
            CEILING: np.where(dy > 0, (room - camera) / dy, np.inf),
        }
    names = list(candidates)
    stack = np.stack([candidates[n] for n in names])
    label = np.asarray(names, dtype=np.uint8)[stack.argmin(0)]
    depth = stack.min(0)
    back_wall = (label == WALL) & (np.abs(dx) * back <= side)
    regions: list[tuple[int, np.ndarray]] = [(cls, label == cls) for cls in names]

    def project(x: float, y: float, z: float) -> tuple[float, float]:
        return cx + f * x / z, cy - f * y / z  # y: height above the camera

    # wall items: 2-3 of three slots across the back wall, the same image-rectangle distribution for every class
    slot = 2 * side / 3
    for k in sorted(rng.choice(3, size=int(rng.integers(2, 4)), replace=False)):
        cls = int(rng.choice(WALL_ITEMS))
        w, h = rng.uniform(0.5, min(1.1, slot - 0.1)), rng.uniform(0.6, 1.3)
        x0 = -side + k * slot + rng.uniform(0.05, slot - w - 0.05)
        y0 = -camera + rng.uniform(0.3, max(0.31, room - h - 0.3))
        (u0, v1), (u1, v0) = project(x0, y0, back), project(x0 + w, y0 + h, back)
        mask = back_wall & (u >= u0) & (u < u1) & (v >= v0) & (v < v1)
        label[mask] = cls
        low, high = PROTRUSION.get(cls, (0.0, 0.0))
        depth[mask] = back - rng.uniform(low, high) if high else back
        regions.append((cls, mask))
    # furniture on the floor, far to near
    sizes = {BED: ((1.4, 2.0), (0.45, 0.6)), SOFA: ((1.5, 2.2), (0.75, 0.9)), TABLE: ((0.8, 1.4), (0.7, 0.8))}
    items = [(int(rng.choice(FLOOR_ITEMS)), rng.uniform(1.8, back - 0.6)) for _ in range(int(rng.integers(1, 3)))]
    for cls, z in sorted(items, key=lambda item: -item[1]):
        (w_range, h_range) = sizes[cls]
        w, h = rng.uniform(*w_range), rng.uniform(*h_range)
        x0 = rng.uniform(-side + 0.1, max(-side + 0.11, side - w - 0.1))
        (u0, v1), (u1, v0) = project(x0, -camera, z), project(x0 + w, -camera + h, z)
        face = (u >= u0) & (u < u1) & (v >= v0) & (v < v1)
        face_depth = np.full_like(depth, z)
        if cls == TABLE:
            top = project(x0, -camera + h - 0.08, z)[1]
            leg = 0.07 * f / z
            face &= (v < top) | (u < u0 + leg) | (u >= u1 - leg)
        elif cls == SOFA:
            back_top = project(x0, -camera + 0.45, z)[1]
            face_depth = np.where(v < back_top, z + 0.3, z)  # the back rises behind the seat
        elif cls == BED:
            face_depth = z - 0.05 * np.clip(1 - ((u - (u0 + u1) / 2) / max(1.0, (u1 - u0) / 2)) ** 2, 0, 1)
        label[face] = cls
        depth[face] = face_depth[face]
        for _, other in regions:
            other &= ~face
        regions.append((cls, face))
    # colours per region, then lighting and noise
    rgb = np.zeros((height, width, 3), np.float64)
    for cls, mask in regions:
        if mask.any():
            colour, texture = _look(cls, rng, u, v)
            rgb[mask] = np.asarray(colour)[None, :] + texture[mask][:, None]
    bars = (np.abs(u - np.round(u / 7) * 7) < 0.5) | (np.abs(v - np.round(v / 7) * 7) < 0.5)
    rgb[(label == WINDOW) & bars] *= 0.55  # the window frame's bars
    # void: a clutter blob (unlabelled stuff), then label boundaries
    if rng.random() < 0.6:
        radius = rng.uniform(0.03, 0.08) * width
        centre = rng.uniform([0.1 * width, 0.3 * height], [0.9 * width, 0.95 * height])
        blob = ((u - centre[0]) ** 2 + ((v - centre[1]) * 1.3) ** 2) < radius**2
        rgb[blob] = rng.uniform(30, 220, 3) + 10 * _smooth(rng, (height, width), 2)[blob][:, None]
        depth[blob] = np.maximum(depth[blob] - rng.uniform(0.1, 0.5), 0.5)
        label[blob] = 0
    boundary = np.zeros_like(label, dtype=bool)
    boundary[:, :-1] |= label[:, :-1] != label[:, 1:]
    boundary[:-1] |= label[:-1] != label[1:]
    label[boundary & (rng.random(label.shape) < 0.7)] = 0
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 + 0.2 * (np.cos(angle) * (u / width - 0.5) + np.sin(angle) * (v / height - 0.5))
    rgb = np.clip(rgb * light[..., None] + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    depth = depth + rng.normal(0, 1, depth.shape) * 0.0015 * depth**2
    depth_mm = np.clip(np.round(depth * 1000), 500, 10000).astype(np.uint16)
    return rgb, depth_mm, label


def split_numbers(num_train: int, num_test: int, seed: int) -> dict[str, list[int]]:
    """The image numbers (1-based) of each split: a seeded draw of ``num_test`` test images, both sorted."""
    order = np.random.default_rng([seed, 1449]).permutation(num_train + num_test) + 1
    return {"train": sorted(int(n) for n in order[num_test:]), "test": sorted(int(n) for n in order[:num_test])}


def write_nyuv2(
    out_dir: str | Path,
    num_train: int = 24,
    num_test: int = 8,
    height: int = 64,
    width: int = 96,
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Write (or reuse) the synthetic set at ``out_dir``; returns it. A set with other parameters is replaced whole;
    a non-empty directory that is not a synthetic set is refused."""
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    parameters = {"kind": "nyuv2", "format": SYNTHETIC_FORMAT, "num_train": int(num_train), "num_test": int(num_test),
                  "height": int(height), "width": int(width), "seed": int(seed)}  # fmt: skip
    if read_synthetic_marker(out_dir) == parameters:
        return out_dir
    if num_train < 1 or num_test < 1 or num_train + num_test > 9999:
        raise ValueError(f"need 1 <= num_train, num_test and num_train + num_test <= 9999, got {num_train}, {num_test}")
    if height < 16 or width < 16:
        raise ValueError(f"images must be at least 16 x 16, got {height} x {width}")
    ours, complete = (
        (lambda d: read_synthetic_marker(d) is not None),
        (lambda d: read_synthetic_marker(d) == parameters),
    )
    with built_beside(out_dir, ours, complete, SYNTHETIC_MARKER) as built:
        numbers = split_numbers(num_train, num_test, seed)
        jobs = [(split, n) for split in SPLITS for n in numbers[split]]
        for split, n in tqdm(jobs, desc="synthetic NYU-Depth V2", disable=not progress):
            rgb, depth, label = render_scene(np.random.default_rng([seed, n]), height, width)
            write_sample(built, split, f"{n:04d}", rgb, depth, label)
        write_lists(built, {split: [f"{n:04d}" for n in numbers[split]] for split in SPLITS})
        write_class_weights(built, absent="zero")
        write_text_atomic(built / SYNTHETIC_MARKER, json.dumps(parameters, indent=2) + "\n")
    return out_dir
