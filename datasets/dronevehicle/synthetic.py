"""A synthetic DroneVehicle: written in the release's layout, then prepared into the layout runs read.

``write_dronevehicle(out_dir)`` writes the raw set to ``out_dir/source/{train,val,test}/{split}img``, ``{split}imgr``
(840 x 712 JPEGs with the release's 100-px white border, OpenCV), ``{split}label`` and ``{split}labelr`` (VOC-like
XML, the same objects in both: rotated ``<polygon>`` corners, about 10 % as ``<bndbox>``, freight cars under the
release's misspellings ``feright_car`` / ``feright car`` / ``feright`` / ``*`` as well), then converts it with the
preparer's code (``prepare.inspect_release`` + ``prepare.convert_release``, IR annotations) into ``out_dir`` itself:
``out_dir/{images,image,labels}/<split>/``, the list files, ``dronevehicle.yaml`` and ``synthetic.json`` (the
parameters). The set is built in a folder beside ``out_dir`` and moved into place; a directory whose marker holds
the same parameters is reused as is.

Generative model, per image (a generator seeded from ``(seed, split, image number)``), in the 640 x 512 crop:

- **Scene**: ground of a random earthy colour with smooth low-frequency texture and pixel noise; 1-2 asphalt roads
  (90-140 px wide, horizontal, vertical or diagonal) with white dashed centre lines.
- **Vehicles**: 2-8 rotated rectangles at random angles, kept apart; in a quarter of the images one straddles the
  crop's edge (its box is clipped by ``prepare``), and in some an annotated vehicle lies in the white border only
  (dropped by ``prepare``). Class frequencies car 0.4, truck / bus / van / freight car 0.15 each. Sizes (length x
  width, px at 640 x 512) come in IR groups: car and van 60-90 x 30-40; truck and freight car 110-160 x 40-52; bus
  120-160 x 40-50.
- **RGB** (``cv2`` BGR on disk), distinguishing all five classes by day: car -- one saturated random hue, dark
  windscreen and rear window; van -- white / light grey with two dark roof rails and a windscreen; bus -- yellow-
  orange, a row of dark windows along both sides, light roof units; truck -- a coloured cab (front quarter) and a
  brown open bed with dark transverse slats; freight car -- a coloured cab and a bright silver / white box with
  longitudinal ribs.
- **IR** (one intensity, written as 3 equal channels as the release's IR JPEGs are): ground 80-110 with smooth
  texture; vehicles are warm blobs (blurred) whose signature depends on the group only: **car = van** (a warm body
  +45 with a hot engine spot +90 at the front), **truck = freight car** (a hot cab +85, a mild cargo area +25),
  **bus** distinct (a uniformly warm body +60 with a hot band +100 at the rear). So IR alone cannot tell car from
  van nor truck from freight car.
- **Day / night**: a fraction ``night_fraction`` of the images is night. By day the RGB image is as above (a
  brightness U(0.85, 1.1)) and the IR image has lower contrast (vehicle signatures x 0.6, a stronger sun-heated
  ground texture); at night the RGB image is dark and noisy (x U(0.06, 0.12), Gaussian noise of 6 grey levels:
  the vehicles nearly vanish) and the IR image is as above, at full contrast.

So dropping RGB costs the car / van and truck / freight-car distinctions, and dropping IR costs the night scenes
(as the paper's Table 12: RGB-only 0.215, IR-only 0.669, both 0.790 mAP50). **Synthetic data**: it tests the
pipeline; nothing measured on it says anything about DroneVehicle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mwam_harness.datasets.dronevehicle import BORDER, CLASS_NAMES, IMAGE_SIZE, RAW_SIZE, SPLITS
from mwam_harness.datasets.dronevehicle.layout import is_prepared, raw_dir
from mwam_harness.datasets.dronevehicle.prepare import convert_release, inspect_release
from mwam_harness.datasets.files import built_beside, write_text_atomic
from mwam_harness.datasets.registry import SYNTHETIC_MARKER, read_synthetic_marker

SYNTHETIC_FORMAT = 1
SOURCE_DIR = "source"
CAR, TRUCK, BUS, VAN, FREIGHT = range(5)
CLASS_PROBABILITIES = (0.4, 0.15, 0.15, 0.15, 0.15)
#: The IR group of each class: classes of one group share their size distribution and IR signature.
IR_GROUP = {CAR: "small", VAN: "small", TRUCK: "long", FREIGHT: "long", BUS: "bus"}
#: (length range, width range) in px of the 640 x 512 crop, per IR group.
SIZES = {"small": ((60, 90), (30, 40)), "long": ((110, 160), (40, 52)), "bus": ((120, 160), (40, 50))}
#: Per IR group: a list of (u0, u1, warmth) -- a span along the length (0 = rear, 1 = front) and its warmth above
#: the ground (grey levels at full contrast).
IR_SIGNATURE = {
    "small": ((0.0, 1.0, 45.0), (0.7, 0.95, 90.0)),
    "long": ((0.0, 0.72, 25.0), (0.75, 1.0, 85.0)),
    "bus": ((0.0, 1.0, 60.0), (0.02, 0.18, 100.0)),
}
FREIGHT_NAMES = ("freight_car", "feright_car", "feright car", "feright", "*")
DAY_IR_CONTRAST = 0.6


def _smooth(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Smooth noise in about [-1, 1] with features of ``cell`` pixels."""
    coarse = rng.uniform(-1, 1, size=(shape[0] // cell + 2, shape[1] // cell + 2)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _hue(rng: np.random.Generator, hue: float, saturation: float, value: float) -> np.ndarray:
    """A BGR colour (0-255 floats) from hue in degrees, saturation and value in [0, 1]."""
    hsv = np.array([[[hue, saturation, value]]], np.float32)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0] * 255


def _part(centre: np.ndarray, axis: np.ndarray, normal: np.ndarray, length: float, width: float,
          u: tuple[float, float], v: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:  # fmt: skip
    """Corners (4, 2) of the sub-rectangle ``u`` (along the length, 0 = rear, 1 = front) x ``v`` (across)."""
    us = [(u[0] - 0.5) * length, (u[1] - 0.5) * length]
    vs = [(v[0] - 0.5) * width, (v[1] - 0.5) * width]
    return np.array([centre + a * axis + b * normal for a, b in ((us[0], vs[0]), (us[1], vs[0]),
                                                                 (us[1], vs[1]), (us[0], vs[1]))])  # fmt: skip


def _fill(image: np.ndarray, corners: np.ndarray, value: Any) -> None:
    cv2.fillConvexPoly(image, np.round(corners * 4).astype(np.int32), value, lineType=cv2.LINE_AA, shift=2)


def _draw_rgb(image: np.ndarray, cls: int, rng: np.random.Generator, part: Any) -> None:
    """One vehicle of class ``cls`` in the BGR float image (``part(u, v)`` gives a sub-rectangle's corners)."""
    dark = (30.0, 30.0, 35.0)
    if cls == CAR:
        body = _hue(rng, rng.uniform(0, 360), rng.uniform(0.7, 1.0), rng.uniform(0.55, 0.9))
        _fill(image, part((0, 1)), body.tolist())
        _fill(image, part((0.62, 0.78), (0.1, 0.9)), dark)
        _fill(image, part((0.08, 0.2), (0.12, 0.88)), dark)
    elif cls == VAN:
        _fill(image, part((0, 1)), [float(rng.uniform(205, 240))] * 3)
        _fill(image, part((0.78, 0.9), (0.1, 0.9)), dark)
        for v in ((0.18, 0.26), (0.74, 0.82)):
            _fill(image, part((0.05, 0.72), v), (70.0, 70.0, 75.0))
    elif cls == BUS:
        body = _hue(rng, rng.uniform(35, 50), rng.uniform(0.8, 1.0), rng.uniform(0.8, 0.95))
        _fill(image, part((0, 1)), body.tolist())
        for v in ((0.0, 0.16), (0.84, 1.0)):
            _fill(image, part((0.06, 0.94), v), dark)
        _fill(image, part((0.35, 0.6), (0.3, 0.7)), (215.0, 215.0, 215.0))
    else:  # truck and freight car: a coloured cab, then the cargo area that tells them apart
        cab = _hue(rng, rng.uniform(0, 360), rng.uniform(0.6, 1.0), rng.uniform(0.5, 0.85))
        _fill(image, part((0.76, 1.0)), cab.tolist())
        if cls == TRUCK:
            _fill(image, part((0, 0.73)), (40.0, 80.0, 120.0))  # brown bed (BGR)
            for k in range(6):
                u0 = 0.02 + k * 0.12
                _fill(image, part((u0, u0 + 0.03)), (20.0, 40.0, 60.0))
        else:
            _fill(image, part((0, 0.73)), [float(rng.uniform(200, 235))] * 3)
            for v in ((0.3, 0.36), (0.64, 0.7)):
                _fill(image, part((0.02, 0.71), v), (150.0, 150.0, 155.0))


def _draw_ir(image: np.ndarray, cls: int, base: float, contrast: float, rng: np.random.Generator, part: Any) -> None:
    """One vehicle's warm blob in the IR float image: its group's signature above the ground level ``base``."""
    for u0, u1, warmth in IR_SIGNATURE[IR_GROUP[cls]]:
        _fill(image, part((u0, u1)), float(base + contrast * warmth * rng.uniform(0.9, 1.1)))


def _layout(rng: np.random.Generator, with_edge: bool) -> list[tuple[int, float, float, float, float, float]]:
    """``(class, cx, cy, angle, length, width)`` of the vehicles of one image, crop coordinates."""
    height, width = IMAGE_SIZE
    vehicles: list[tuple[int, float, float, float, float, float]] = []
    wanted = int(rng.integers(2, 9))
    for attempt in range(60):
        if len(vehicles) >= wanted:
            break
        cls = int(rng.choice(5, p=CLASS_PROBABILITIES))
        (l0, l1), (w0, w1) = SIZES[IR_GROUP[cls]]
        length, breadth = rng.uniform(l0, l1), rng.uniform(w0, w1)
        angle = rng.uniform(0, np.pi)
        if with_edge and attempt == 0:  # straddling the crop's edge
            side = int(rng.integers(4))
            along = rng.uniform(0.2, 0.8)
            cx, cy = [(along * width, 0.0), (along * width, height), (0.0, along * height), (width, along * height)][
                side
            ]
            cx += rng.uniform(-0.25, 0.25) * length
            cy += rng.uniform(-0.25, 0.25) * length
        else:
            margin = length / 2
            cx, cy = rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)
        if any(np.hypot(cx - x, cy - y) < 0.5 * (length + other) + 4 for _, x, y, _, other, _ in vehicles):
            continue
        vehicles.append((cls, float(cx), float(cy), float(angle), float(length), float(breadth)))
    return vehicles


def _frame(cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, length axis and width axis of a vehicle."""
    axis, normal = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    return np.array([cx, cy]), axis, normal


def render_pair(rng: np.random.Generator, night: bool) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """One synthetic pair in the release's format: ``(rgb 712 x 840 x 3 uint8 BGR, ir 712 x 840 x 3 uint8, objects)``,
    each object ``{"cls", "corners" (4, 2) in 840 x 712 pixels}``; see the module docstring."""
    height, width = IMAGE_SIZE
    shape = (height, width)
    # ground and roads
    base = _hue(rng, rng.uniform(20, 100), rng.uniform(0.2, 0.45), rng.uniform(0.4, 0.6))
    texture = _smooth(rng, shape, 40)[..., None] * 18 + rng.normal(0, 4, (height, width, 1)).astype(np.float32)
    rgb = np.ascontiguousarray(np.broadcast_to(base.astype(np.float32), (height, width, 3)) + texture)
    ir_ground = rng.uniform(80, 110)
    ir = (ir_ground + _smooth(rng, shape, 48) * (14 if night else 24)).astype(np.float32)
    for _ in range(int(rng.integers(1, 3))):
        angle = [0.0, np.pi / 2, rng.uniform(0, np.pi)][int(rng.integers(3))]
        centre = np.array([rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height])
        axis, normal = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
        road_width = rng.uniform(90, 140)
        road = _part(centre, axis, normal, 2000.0, road_width, (0, 1))
        grey = float(rng.uniform(80, 105))
        _fill(rgb, road, (grey, grey, grey + 3))
        _fill(ir, road, float(ir_ground + (8 if night else -6)))
        for k in range(-20, 20):
            dash = _part(centre + k * 50 * axis, axis, normal, 50.0, road_width, (0.1, 0.6), (0.48, 0.52))
            _fill(rgb, dash, (225.0, 225.0, 225.0))
    # vehicles
    objects = []
    for cls, cx, cy, angle, length, breadth in _layout(rng, with_edge=rng.random() < 0.25):
        centre, axis, normal = _frame(cx, cy, angle)

        def part(u: tuple[float, float], v: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
            return _part(centre, axis, normal, length, breadth, u, v)  # noqa: B023

        _draw_rgb(rgb, cls, rng, part)
        _draw_ir(ir, cls, ir_ground, 1.0 if night else DAY_IR_CONTRAST, rng, part)
        objects.append({"cls": cls, "corners": part((0, 1)) + BORDER})
    if rng.random() < 0.15:  # annotated, but in the white border only: dropped by prepare
        cls = int(rng.choice(5, p=CLASS_PROBABILITIES))
        x, y = rng.uniform(150, 650), rng.uniform(8, BORDER - 30)
        objects.append({"cls": cls, "corners": np.array([[x, y], [x + 60, y], [x + 60, y + 20], [x, y + 20]])})
    # lighting, noise
    if night:
        rgb = rgb * rng.uniform(0.06, 0.12) + rng.normal(0, 6, rgb.shape).astype(np.float32)
    else:
        rgb = rgb * rng.uniform(0.85, 1.1)
    ir = cv2.GaussianBlur(ir, (5, 5), 1.5) + rng.normal(0, 3, shape).astype(np.float32)
    rgb_raw = np.full((*RAW_SIZE, 3), 255, np.uint8)
    ir_raw = np.full((*RAW_SIZE, 3), 255, np.uint8)
    rgb_raw[BORDER : BORDER + height, BORDER : BORDER + width] = np.clip(rgb, 0, 255).astype(np.uint8)
    ir_raw[BORDER : BORDER + height, BORDER : BORDER + width] = np.clip(ir, 0, 255).astype(np.uint8)[..., None]
    return rgb_raw, ir_raw, objects


def annotation_xml(name: str, objects: list[dict[str, Any]], rng: np.random.Generator) -> str:
    """The release's XML of one image: polygons (about 10 % as bndbox), freight cars under the release's spellings."""
    items = []
    for obj in objects:
        cls = obj["cls"]
        label = str(rng.choice(FREIGHT_NAMES)) if cls == FREIGHT else CLASS_NAMES[cls]
        corners = np.clip(np.round(obj["corners"]), [0, 0], [RAW_SIZE[1], RAW_SIZE[0]]).astype(int)
        if rng.random() < 0.1:
            (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
            shape = f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>"
        else:
            shape = "<polygon>" + "".join(f"<x{i}>{x}</x{i}><y{i}>{y}</y{i}>" for i, (x, y) in enumerate(corners, 1))
            shape += "</polygon>"
        items.append(
            f"\t<object>\n\t\t<name>{label}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
            f"\t\t<difficult>0</difficult>\n\t\t{shape}\n\t</object>\n"
        )
    return (
        f"<annotation>\n\t<filename>{name}</filename>\n\t<source><database>synthetic DroneVehicle</database></source>\n"
        f"\t<size>\n\t\t<width>{RAW_SIZE[1]}</width>\n\t\t<height>{RAW_SIZE[0]}</height>\n\t\t<depth>3</depth>\n"
        f"\t</size>\n{''.join(items)}</annotation>\n"
    )


def write_release(source: Path, counts: dict[str, int], seed: int, night_fraction: float) -> None:
    """The raw synthetic set in the release's layout under ``source``."""
    for split_id, split in enumerate(SPLITS):
        folders = {kind: raw_dir(source, split, kind) for kind in ("rgb", "ir", "rgb_xml", "ir_xml")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for number in range(1, counts[split] + 1):
            rng = np.random.default_rng([seed, split_id, number])
            night = bool(rng.random() < night_fraction)
            rgb, ir, objects = render_pair(rng, night)
            name = f"{number:05d}"
            if not (cv2.imwrite(str(folders["rgb"] / f"{name}.jpg"), rgb) and
                    cv2.imwrite(str(folders["ir"] / f"{name}.jpg"), ir)):  # fmt: skip
                raise OSError(f"{folders['rgb'] / name}.jpg: cv2.imwrite failed")
            xml = annotation_xml(f"{name}.jpg", objects, rng)
            for kind in ("rgb_xml", "ir_xml"):
                (folders[kind] / f"{name}.xml").write_text(xml, encoding="utf-8")


def write_dronevehicle(
    out_dir: str | Path,
    num_train: int = 8,
    num_val: int = 4,
    num_test: int = 6,
    seed: int = 0,
    night_fraction: float = 0.6,
    progress: bool = False,
) -> Path:
    """Write (or reuse) a synthetic DroneVehicle at ``out_dir`` (prepared; the raw release-layout copy in
    ``out_dir/source``); returns ``out_dir``. See the module docstring."""
    out_dir = Path(out_dir)
    counts = {"train": int(num_train), "val": int(num_val), "test": int(num_test)}
    if min(counts.values()) < 1:
        raise ValueError(f"every split needs at least one image, got {counts}")
    if not 0.0 <= night_fraction <= 1.0:
        raise ValueError(f"night_fraction must lie in [0, 1], got {night_fraction}")
    parameters = {"dataset": "dronevehicle", "format": SYNTHETIC_FORMAT, **{f"num_{k}": v for k, v in counts.items()},
                  "seed": int(seed), "night_fraction": float(night_fraction)}  # fmt: skip
    if read_synthetic_marker(out_dir) == parameters and is_prepared(out_dir):
        return out_dir
    ours, complete = (
        (lambda d: read_synthetic_marker(d) is not None),
        (lambda d: read_synthetic_marker(d) == parameters and is_prepared(d)),
    )
    with built_beside(out_dir, ours, complete, SYNTHETIC_MARKER) as build:
        write_release(build / SOURCE_DIR, counts, int(seed), float(night_fraction))
        triples, problems = inspect_release(build / SOURCE_DIR, "ir")
        if problems:  # a bug of this generator
            raise RuntimeError("synthetic DroneVehicle: " + "; ".join(problems[:5]))
        convert_release(triples, build, progress=progress, workers=1)
        write_text_atomic(build / SYNTHETIC_MARKER, json.dumps(parameters, indent=1) + "\n")
    return out_dir
