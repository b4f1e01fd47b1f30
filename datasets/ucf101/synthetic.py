"""A synthetic UCF-101 in the download's layout (real ``.avi`` files written with PyAV), prepared like the real one.

``write_ucf101(out_dir)`` writes ``out_dir/raw/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` (MPEG-4 part 2 in AVI, as
UCF-101's XviD files, 25 fps) and ``out_dir/raw/ucfTrainTestlist/{classInd.txt, trainlist0N.txt, testlist0N.txt}``
(N = 1, 2, 3; CRLF line ends and the formats of the real lists), then runs the real prepare step into ``out_dir``
(the ``balancebenchmark`` layout with its sampled flows: 6 frames and 6 flows a video) and marks it synthetic
(``synthetic.json``). The classes are UCF-101's first ``classes`` names, numbered as in ``classInd.txt``.

**Groups and splits**, as UCF-101's: ``groups`` groups of ``clips`` clips per class; the clips of a group share their
background and the moving object's shape and texture (UCF-101's groups share actor and scene). Split N tests a
block of ``b`` groups -- ``b = min(round(groups * 7 / 25), (groups - 1) // 3)``, at least 1 (UCF-101: 7 of 25) --
groups ``(N - 1) * b + 1 ... N * b``, and trains on the others: train and test never share a group.

**Generative model** (per clip, seeded by ``(seed, class, group, clip)``): a static textured background and a
textured disc or square (per group) moving with constant velocity, wrapping around the frame's edges (so that
neither its position nor its path in one frame tells its velocity). Two cues carry the class:

- **appearance** (what the RGB frames show): the object's hue, class ``c``'s hue ``360 * c / classes`` degrees plus
  Gaussian noise of ``hue_noise`` degrees (neighbouring classes' hues overlap);
- **motion** (what the flow shows, not one frame): the object's vertical speed -- flip-invariant, so that the loader's
  horizontal flips keep it --, evenly spaced in ``speed_step`` pixels a frame (``(i - (classes - 1) / 2) *
  speed_step``) plus Gaussian noise of ``speed_noise * speed_step``; a class's speed rank ``i`` interleaves the hue
  order (even classes first, then odd ones), so the classes one cue confuses are told apart by the other. The
  horizontal speed is noise (``N(0, 0.25)`` pixels a frame) and the object's brightness varies.

A 2-D host averaging per-frame features sees the hue but not the motion; the flow sees the motion but not the hue
(TV-L1 reads grayscale): video alone and flow alone each tell a class from its far neighbours, both together tell
every class (the measured accuracies are in docs/datasets.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mwam_harness.datasets.files import atomic_write, built_beside, write_text_atomic
from mwam_harness.datasets.registry import SYNTHETIC_MARKER, read_synthetic_marker
from mwam_harness.datasets.ucf101 import CLASS_NAMES
from mwam_harness.datasets.ucf101.layout import CLASS_INDEX, FOLDS, RAW_LISTS, RAW_VIDEOS, list_name

FPS = 25
#: MPEG-4 part 2 quantiser (2: near-lossless; UCF-101's XviD files are visibly compressed).
QUANTISER = 2


def block_size(groups: int) -> int:
    """How many groups each split tests (module docstring)."""
    return max(1, min(round(groups * 7 / 25), (groups - 1) // 3))


def split_test_groups(groups: int, fold: int) -> list[int]:
    """The groups (1-based) split ``fold`` tests."""
    b = block_size(groups)
    return list(range((fold - 1) * b + 1, fold * b + 1))


def speed_rank(label: int, classes: int) -> int:
    """The rank of class ``label``'s vertical speed: the classes in the order even first, then odd."""
    order = [*range(0, classes, 2), *range(1, classes, 2)]
    return order.index(label)


def class_speed(label: int, classes: int, speed_step: float) -> float:
    """Class ``label``'s mean vertical speed in pixels a frame (positive: downward)."""
    return (speed_rank(label, classes) - (classes - 1) / 2) * speed_step


def _smooth(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth noise scaled to [0, 1]."""
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(rng.random(shape), sigma, mode="wrap")
    low, high = noise.min(), noise.max()
    return (noise - low) / (high - low + 1e-12)


def _shift(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``image`` moved by (``dy``, ``dx``) pixels, each in [0, 1), with bilinear weights (zero coming in)."""
    out = (1 - dy) * (1 - dx) * image
    out[1:] += dy * (1 - dx) * image[:-1]
    out[:, 1:] += (1 - dy) * dx * image[:, :-1]
    out[1:, 1:] += dy * dx * image[:-1, :-1]
    return out


def _hsv_to_rgb(hue: float, saturation: float, value: np.ndarray) -> np.ndarray:
    """(H, W) values of one hue (degrees) and saturation -> (H, W, 3) RGB in [0, 1]."""
    h = (hue % 360.0) / 60.0
    c = value * saturation
    x = c * (1 - abs(h % 2 - 1))
    m = value - c
    zero = np.zeros_like(value)
    sector = int(h) % 6
    rgb = [(c, x, zero), (x, c, zero), (zero, c, x), (zero, x, c), (x, zero, c), (c, zero, x)][sector]
    return np.stack([channel + m for channel in rgb], axis=-1)


def render_clip(
    label: int,
    group: int,
    clip: int,
    classes: int,
    frames: int,
    width: int,
    height: int,
    hue_noise: float,
    speed_noise: float,
    speed_step: float,
    seed: int,
) -> tuple[np.ndarray, dict[str, float]]:
    """One clip as uint8 (frames, height, width, 3) RGB and its draws (``hue``, ``speed_x``, ``speed_y``)."""
    scene = np.random.default_rng([seed, label, group])
    draws = np.random.default_rng([seed, label, group, clip, 1])
    tint = scene.uniform(-0.08, 0.08, size=3)
    background = 0.25 + 0.5 * _smooth(scene, (height, width), 1.5)[..., None] + tint
    radius = round(scene.uniform(0.2, 0.3) * min(width, height))
    square = bool(scene.random() < 0.5)
    side = 2 * radius + 3  # one pixel of margin on each side for the sub-pixel shift
    yy, xx = np.mgrid[-radius - 1 : radius + 2, -radius - 1 : radius + 2]
    mask = (np.maximum(abs(yy), abs(xx)) <= radius) if square else (yy**2 + xx**2 <= radius**2)
    texture = _smooth(scene, (side, side), 0.8)
    hue = 360.0 * label / classes + draws.normal(0.0, hue_noise)
    brightness = draws.uniform(0.7, 1.0)
    patch = _hsv_to_rgb(hue, 0.85, brightness * (0.45 + 0.55 * texture))
    speed_y = class_speed(label, classes, speed_step) + draws.normal(0.0, speed_noise * speed_step)
    speed_x = draws.normal(0.0, 0.25)
    y0, x0 = draws.uniform(0, height), draws.uniform(0, width)
    video = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        y, x = y0 + speed_y * t, x0 + speed_x * t
        fy, fx = y - np.floor(y), x - np.floor(x)
        # the object at its sub-pixel position: patch and mask shifted bilinearly by the fractional part
        alpha = _shift(mask.astype(np.float64), fy, fx)
        colour = _shift(patch * mask[..., None], fy, fx) / np.maximum(alpha, 1e-6)[..., None]
        frame = background.copy()
        cy, cx = int(np.floor(y)) % height, int(np.floor(x)) % width
        for dy in (-height, 0, height):  # wrap around the edges: paste the copies that overlap the frame
            for dx in (-width, 0, width):
                top, left = cy + dy - radius - 1, cx + dx - radius - 1
                y_from, y_to = max(top, 0), min(top + side, height)
                x_from, x_to = max(left, 0), min(left + side, width)
                if y_from >= y_to or x_from >= x_to:
                    continue
                window = (slice(y_from - top, y_to - top), slice(x_from - left, x_to - left))
                a = alpha[window][..., None]
                region = frame[y_from:y_to, x_from:x_to]
                region[...] = region * (1 - a) + colour[window] * a
        video[t] = np.clip(np.round(frame * 255), 0, 255).astype(np.uint8)
    return video, {"hue": float(hue), "speed_x": float(speed_x), "speed_y": float(speed_y)}


def write_avi(path: Path, video: np.ndarray, fps: int = FPS) -> None:
    """``video`` (T, H, W, 3) uint8 RGB as an MPEG-4 part 2 ``.avi`` (PyAV), written atomically."""
    import av

    def write(tmp: Path) -> None:
        with av.open(str(tmp), "w", format="avi") as container:
            stream = container.add_stream("mpeg4", rate=fps)
            stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
            stream.codec_context.options = {"qmin": str(QUANTISER), "qmax": str(QUANTISER)}
            for image in video:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                # converted here in one thread: a threaded conversion would leave a thread pool that a process forked
                # later (prepare's workers) deadlocks on
                for packet in stream.encode(frame.reformat(format="yuv420p", threads=1)):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    atomic_write(path, write)


def _write_raw(raw: Path, parameters: dict) -> None:
    classes, groups, clips = parameters["classes"], parameters["groups"], parameters["clips"]
    names = CLASS_NAMES[:classes]
    lists = {list_name(split, fold): [] for fold in FOLDS for split in ("train", "test")}
    for label, name in enumerate(names):
        for group in range(1, groups + 1):
            for clip in range(1, clips + 1):
                video_name = f"v_{name}_g{group:02d}_c{clip:02d}"
                video, _ = render_clip(
                    label, group, clip, classes, parameters["frames"], parameters["width"], parameters["height"],
                    parameters["hue_noise"], parameters["speed_noise"], parameters["speed_step"], parameters["seed"],
                )  # fmt: skip
                write_avi(raw / RAW_VIDEOS / name / f"{video_name}.avi", video)
                listed = f"{name}/{video_name}.avi"
                for fold in FOLDS:
                    if group in split_test_groups(groups, fold):
                        lists[list_name("test", fold)].append(listed)
                    else:
                        lists[list_name("train", fold)].append(f"{listed} {label + 1}")
    lists_dir = raw / RAW_LISTS
    write_text_atomic(lists_dir / CLASS_INDEX, "".join(f"{k} {name}\r\n" for k, name in enumerate(names, 1)))
    for file_name, lines in lists.items():
        write_text_atomic(lists_dir / file_name, "".join(f"{line}\r\n" for line in lines))


def write_ucf101(
    out_dir: str | Path,
    classes: int = 6,
    groups: int = 8,
    clips: int = 5,
    frames: int = 24,
    width: int = 64,
    height: int = 48,
    hue_noise: float = 15.0,
    speed_noise: float = 0.45,
    speed_step: float = 1.0,
    seed: int = 0,
    workers: int = 2,
    progress: bool = False,
) -> Path:
    """Write (or reuse) the synthetic download and its prepared form at ``out_dir``; returns the prepared root. A set
    with other parameters is replaced whole; a non-empty directory that is not a synthetic set is refused.
    ``workers``: processes of the prepare step (not part of the set's identity)."""
    from mwam_harness.datasets.ucf101.prepare import prepare_ucf101

    out_dir = Path(out_dir)
    parameters = {
        "kind": "ucf101", "classes": int(classes), "groups": int(groups), "clips": int(clips),
        "frames": int(frames), "width": int(width), "height": int(height), "hue_noise": float(hue_noise),
        "speed_noise": float(speed_noise), "speed_step": float(speed_step), "seed": int(seed),
    }  # fmt: skip
    if read_synthetic_marker(out_dir) == parameters:
        return out_dir
    if not 2 <= classes <= len(CLASS_NAMES):
        raise ValueError(f"classes must lie in 2-{len(CLASS_NAMES)}, got {classes}")
    if groups < 4 or clips < 1:
        raise ValueError(f"need groups >= 4 (three splits testing other groups) and clips >= 1, got {groups}, {clips}")
    if frames < 7:
        raise ValueError(f"frames must be >= 7 (6 sampled frames and the one after the last), got {frames}")
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"width and height must be even and >= 16 (MPEG-4, yuv420p), got {width} x {height}")
    if hue_noise < 0 or speed_noise < 0 or not speed_step > 0:
        raise ValueError("hue_noise and speed_noise must be >= 0 and speed_step > 0")
    ours, complete = (
        (lambda d: read_synthetic_marker(d) is not None),
        (lambda d: read_synthetic_marker(d) == parameters),
    )
    with built_beside(out_dir, ours, complete, SYNTHETIC_MARKER) as built:
        _write_raw(built / "raw", parameters)
        prepare_ucf101(built / "raw", built, layout="balancebenchmark", flows="sampled", workers=workers,
                       progress=progress)  # fmt: skip
        write_text_atomic(built / SYNTHETIC_MARKER, json.dumps(parameters))
    return out_dir
