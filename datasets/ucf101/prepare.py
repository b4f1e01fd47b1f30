"""``python -m reproduce prepare ucf101 SOURCE OUT``: a prepared layout (``layout.py``) from UCF-101's ``.avi`` files.

``SOURCE`` is the download: a folder holding ``UCF-101/<Class>/*.avi`` (``UCF101.rar``, extracted) and
``ucfTrainTestlist/`` (``UCF101TrainTestSplits-RecognitionTask.zip``: ``classInd.txt``, ``trainlist0N.txt``,
``testlist0N.txt``; at least split 1's). Every video any list names is prepared, once.

**Decoding**: PyAV (its wheels bundle FFmpeg), every frame of the video as RGB, streamed -- only the frames a flow
still needs are kept in memory; the ``balancebenchmark`` layout counts the frames in a first pass. **Flow**: TV-L1
(scikit-image's ``skimage.registration.optical_flow_tvl1``, its default parameters, on grayscale frames scaled to
[0, 1]; OpenCV's ``DualTVL1OpticalFlow`` of the public recipes is in ``opencv-contrib``'s ``optflow`` module, which the
installed ``opencv-python`` lacks) from frame ``t`` to frame ``t + 1``: ``u`` horizontal (positive = rightward), ``v``
vertical (positive = downward) in pixels, each clipped to +-15 and mapped to uint8 as CRMT's
``pre-processing/extract_rgb_of.py``: ``round((f + 15) * 255 / 30)`` (0 = -15, 128 ~ 0, 255 = +15), written as
grayscale JPEG.

- ``layout="balancebenchmark"`` (default): **6 evenly spaced RGB frames**, the centres of 6 equal parts of the
  video: frame ``t_k = floor((k + 0.5) * n / 6)`` (0-based, k = 0 ... 5, of ``n`` decoded frames), written at the
  video's size as ``frame_0000{k+1}.jpg``. Flow (``flows``): ``"sampled"`` (default) -- 6 flows, flow ``k`` from
  decoded frame ``t_k`` to the frame after it (``n - 2`` to ``n - 1`` where ``t_k`` is the last frame), so that flow
  ``k`` shows the motion at RGB frame ``k``; ``"all"`` -- every consecutive pair, ``n - 1`` flows (the full flow of
  the pre-extracted releases, about 30 times the TV-L1 time).
- ``layout="dimml"``: every frame, resized to a shorter side of ``short_side`` (256: ``jpegs_256``; 320 x 240 ->
  341 x 256) as ``frame000001.jpg`` ...; the flow of every consecutive pair of the resized frames (``n - 1``).

**Time**: TV-L1 dominates. Measured with ``optical_flow_tvl1``'s defaults, one process on a 2-core AMD EPYC (AVX-512)
VM: 0.25-0.38 s per frame pair at 224 x 224, 0.39-0.48 s at 320 x 240 (UCF-101's size). For UCF-101 (13,320
videos, ~185 frames each) the sampled flows of the default layout are about 10 core-hours, every pair
(``flows="all"`` or ``dimml``) about 12 core-days: users with the common pre-extracted TV-L1 flows (Feichtenhofer's
``tvl1_flow``) skip this step and arrange those files as the ``dimml`` layout instead (docs/datasets.md).

**Parallel, resumable, atomic**: videos are prepared in ``workers`` processes with a progress bar. Each video's three
folders (RGB, u, v) are written into temporary folders beside their places (``.<video>.tmp-<random>``, never read
by the loader or ``check-data``) and renamed into place only when the whole video is encoded; a video whose three
folders are in place is skipped, so running it again resumes where it stopped, and an interrupted run leaves no
half-written folder a reader would take. ``OUT/prepare.json`` records each layout's settings: preparing a layout
again with other settings into the same ``OUT`` is refused. A video that cannot be read is reported by its path
(:class:`PrepareError`, after the others are prepared); the list files are copied to ``OUT`` only when every video is.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from mwam_harness.datasets.checking import PrepareError, prepare_error
from mwam_harness.datasets.files import atomic_write, write_text_atomic
from mwam_harness.datasets.registry import Problem
from mwam_harness.datasets.ucf101.layout import (
    CLASS_INDEX,
    FOLDS,
    KINDS,
    LAYOUTS,
    RAW_LISTS,
    RAW_VIDEOS,
    Layout,
    list_name,
    numbered_files,
    parse_class_index,
    parse_video_list,
)

MANIFEST = "prepare.json"
FORMAT = 1
#: The TV-L1 recipe's bound (pixels a frame): flows are clipped to +-BOUND before the uint8 mapping.
BOUND = 15.0
JPEG_QUALITY = 95
FLOWS = ("sampled", "all")
DIMML_SHORT_SIDE = 256
#: Temporary folders older than this (seconds) are left by a killed run and removed.
STALE_AFTER_S = 600.0


# ---------------------------------------------------------------- frames and flow
def sampled_frames(count: int, number: int = 6) -> list[int]:
    """``number`` evenly spaced frames of ``count`` (0-based): the centres of ``number`` equal parts,
    ``floor((k + 0.5) * count / number)``."""
    if count < 1:
        raise ValueError("a video without frames")
    return [int((k + 0.5) * count / number) for k in range(number)]


def flow_to_uint8(flow: Any, bound: float = BOUND) -> Any:
    """A flow component in pixels -> uint8: clipped to +-``bound``, ``round((f + bound) * 255 / (2 * bound))``."""
    import numpy as np

    clipped = np.clip(np.asarray(flow, dtype=np.float32), -bound, bound)
    return np.clip(np.round((clipped + bound) * (255.0 / (2 * bound))), 0, 255).astype(np.uint8)


def uint8_to_flow(image: Any, bound: float = BOUND) -> Any:
    """The inverse mapping (up to rounding): uint8 -> pixels a frame."""
    import numpy as np

    return np.asarray(image, dtype=np.float32) * (2 * bound / 255.0) - bound


def tvl1(previous: Any, following: Any) -> tuple[Any, Any]:
    """TV-L1 flow ``(u, v)`` in pixels from grayscale uint8 frame ``previous`` to ``following``: ``following(y + v, x
    + u) ~ previous(y, x)``, u positive rightward, v downward (scikit-image returns the row component first)."""
    import numpy as np
    from skimage.registration import optical_flow_tvl1

    flow = optical_flow_tvl1(np.asarray(previous, np.float32) / 255.0, np.asarray(following, np.float32) / 255.0)
    return flow[1], flow[0]


def _open_error(path: Path, error: Exception) -> ValueError:
    return ValueError(f"{path}: unreadable video ({type(error).__name__}: {error})")


def iter_frames(path: Path, convert: bool = True) -> Iterator[Any]:
    """The frames of the video at ``path`` in order, as uint8 (H, W, 3) RGB (``convert``) or PyAV frames; ValueError
    naming the file when it cannot be opened or decoded or has no video stream.

    The conversion to RGB runs in one thread (``threads=1``): FFmpeg's threaded pixel-format conversion leaves a
    thread pool behind whose locks a process forked later (the ``workers`` of :func:`prepare_ucf101`) deadlocks on."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: unreadable video: no video stream")
            for frame in container.decode(container.streams.video[0]):
                yield frame.to_ndarray(format="rgb24", threads=1) if convert else frame
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise _open_error(path, error) from None


def count_frames(path: Path) -> int:
    """How many frames of the video at ``path`` decode (decoded, not converted: the AVI header's count can differ)."""
    return sum(1 for _ in iter_frames(path, convert=False))


def decode_video(path: Path) -> list[Any]:
    """Every frame of the video at ``path`` as uint8 (H, W, 3) RGB (PyAV); ValueError naming the file when it cannot
    be opened or decoded, has no video stream, or fewer than 2 frames (no flow)."""
    frames = list(iter_frames(path))
    if len(frames) < 2:
        raise ValueError(f"{path}: unreadable video: {len(frames)} frame(s) decoded, at least 2 needed for the flow")
    return frames


def _resize_short_side(image: Any, short_side: int | None) -> Any:
    import cv2

    if not short_side:
        return image
    height, width = image.shape[:2]
    scale = short_side / min(height, width)
    size = (round(width * scale), round(height * scale))
    if size == (width, height):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _write_jpeg(path: Path, image: Any) -> None:
    import cv2

    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"{path}: cv2.imwrite failed")


def write_frames(path: Path, folders: dict[str, Path], layout: Layout, flows: str, short_side: int | None) -> int:
    """Decode the video at ``path`` and write its RGB frames and flows (the module docstring says which) into
    ``folders`` (``rgb``, ``u``, ``v``), streaming: only the frames a flow still needs are kept (the sampled flows'
    pairs, or the previous frame). Returns the number of flows; ValueError naming the video when it cannot be read
    or has fewer than 2 frames."""
    import cv2

    def write_flow(k: int, previous: Any, following: Any) -> None:
        u, v = tvl1(previous, following)
        _write_jpeg(folders["u"] / layout.flow_file.format(k), flow_to_uint8(u))
        _write_jpeg(folders["v"] / layout.flow_file.format(k), flow_to_uint8(v))

    sampled = layout.rgb_frames is not None
    chosen: dict[int, list[int]] = {}  # decoded frame -> the RGB frame numbers it is written as
    pairs: list[int] = []  # the first frame of each sampled flow
    if sampled:
        count = count_frames(path)
        if count < 2:
            raise ValueError(f"{path}: unreadable video: {count} frame(s) decoded, at least 2 needed for the flow")
        for k, t in enumerate(sampled_frames(count, layout.rgb_frames), start=1):
            chosen.setdefault(t, []).append(k)
        pairs = [min(t, count - 2) for t in sampled_frames(count, layout.rgb_frames)] if flows == "sampled" else []
    every_pair = not pairs
    kept: dict[int, Any] = {}
    previous, decoded = None, 0
    for t, frame in enumerate(iter_frames(path)):
        decoded = t + 1
        if not sampled:
            frame = _resize_short_side(frame, short_side)
        for k in chosen.get(t, []) if sampled else [t + 1]:
            _write_jpeg(folders["rgb"] / layout.rgb_file.format(k), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if every_pair and previous is not None:
            write_flow(t, previous, gray)
        elif t in pairs or t - 1 in pairs:
            kept[t] = gray
        previous = gray
    if decoded < 2:
        raise ValueError(f"{path}: unreadable video: {decoded} frame(s) decoded, at least 2 needed for the flow")
    if sampled and decoded != count:
        raise ValueError(f"{path}: unreadable video: {count} frames decoded on a first pass, {decoded} on a second")
    for k, t in enumerate(pairs, start=1):
        write_flow(k, kept[t], kept[t + 1])
    return len(pairs) if pairs else decoded - 1


# ---------------------------------------------------------------- one video
def _final_dirs(out_dir: Path, layout: Layout, video: str) -> dict[str, Path]:
    return {
        "rgb": layout.rgb_dir(out_dir, video),
        "u": layout.flow_dir(out_dir, video, "u"),
        "v": layout.flow_dir(out_dir, video, "v"),
    }


def video_done(out_dir: Path, layout: Layout, video: str) -> bool:
    """Whether ``video``'s three folders are in place (each is renamed into place complete), its RGB folder with the
    layout's number of frames and its u and v folders with the same number of flows."""
    dirs = _final_dirs(out_dir, layout, video)
    if not all(folder.is_dir() for folder in dirs.values()):
        return False
    rgb = len([p for p in dirs["rgb"].iterdir() if not p.name.startswith(".")])
    u, v = numbered_files(dirs["u"]), numbered_files(dirs["v"])
    wanted = layout.rgb_frames
    return rgb >= 1 and (wanted is None or rgb == wanted) and bool(u) and u == v


def prepare_video(
    path: Path, out_dir: Path, video: str, layout: Layout, flows: str = "sampled", short_side: int | None = None
) -> int:
    """Decode ``path``, write its frames and flows and put its three folders in place atomically (module
    docstring); returns the number of flows written. ValueError naming the video when it cannot be read."""
    finals = _final_dirs(out_dir, layout, video)
    token = uuid.uuid4().hex[:8]
    temporaries = {kind: final.parent / f".{video}.tmp-{token}" for kind, final in finals.items()}
    try:
        for folder in temporaries.values():
            folder.mkdir(parents=True)
        written = write_frames(path, temporaries, layout, flows, short_side)
        for kind in ("u", "v", "rgb"):  # the RGB folder last: a video is done when all three are in place
            final = finals[kind]
            if final.exists():  # left by a run killed between two renames: replaced whole
                shutil.rmtree(final)
            os.rename(temporaries[kind], final)
    finally:
        for folder in temporaries.values():
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
    return written


def _prepare_one(job: tuple[str, str, str, str, str, int | None]) -> tuple[str, str | None]:
    path, out_dir, video, layout_name, flows, short_side = job
    try:
        prepare_video(Path(path), Path(out_dir), video, LAYOUTS[layout_name], flows, short_side)
    except (ValueError, OSError) as error:
        return video, str(error)
    return video, None


# ---------------------------------------------------------------- the download
def download_folders(source: Path) -> tuple[Path, Path]:
    """``(videos folder, lists folder)`` of the download at ``source``: ``UCF-101/`` and ``ucfTrainTestlist/`` inside
    it, or ``source`` itself where it holds the class folders / ``classInd.txt`` directly."""
    source = Path(source)
    videos = source / RAW_VIDEOS if (source / RAW_VIDEOS).is_dir() else source
    lists = source / RAW_LISTS if (source / RAW_LISTS).is_dir() else source
    return videos, lists


def inspect_download(source: str | Path) -> tuple[dict[str, Path], dict[str, Path], list[Problem]]:
    """``(list files by name, {video: .avi path}, problems)`` of the download at ``source``, without decoding:
    missing or bad list files (split 1's train and test lists are required, another split's two lists come together)
    and listed videos missing on disk."""
    from mwam_harness.datasets.checking import ListFileError

    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder (the UCF-101 download: UCF-101/ and ucfTrainTestlist/)")
    videos_dir, lists_dir = download_folders(source)
    problems: list[Problem] = []
    index = lists_dir / CLASS_INDEX
    try:
        classes, bad = parse_class_index(index)
    except FileNotFoundError as error:
        return {}, {}, [Problem(str(index), str(error).removeprefix(f"{index}: "))]
    except ListFileError as error:
        return {}, {}, [Problem(str(index), str(error).removeprefix(f"{index}: "), error.line)]
    problems += [Problem(str(index), message, line) for line, message in bad]
    lists: dict[str, Path] = {CLASS_INDEX: index}
    videos: dict[str, Path] = {}
    missing: set[str] = set()
    for fold in FOLDS:
        names = [list_name(split, fold) for split in KINDS]
        present = [name for name in names if (lists_dir / name).is_file()]
        if fold == 1 or present:
            absent = [name for name in names if name not in present]
            problems += [Problem(str(lists_dir / name), f"missing list file (split {fold})") for name in absent]
        for name in present:
            path = lists_dir / name
            try:
                entries, bad = parse_video_list(path, classes)
            except ListFileError as error:
                problems.append(Problem(str(path), str(error).removeprefix(f"{path}: "), error.line))
                continue
            lists[name] = path
            problems += [Problem(str(path), message, line) for line, message in bad]
            for line, video in entries:
                avi = videos_dir / video.path
                if video.name in videos or video.name in missing:
                    continue
                if avi.is_file():
                    videos[video.name] = avi
                else:
                    missing.add(video.name)
                    problems.append(Problem(str(avi), f"missing video (listed in {name}, line {line})"))
    return lists, videos, problems


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": FORMAT, "layouts": {}}
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layouts"), dict):
        return {"format": FORMAT, "layouts": {}}
    return manifest


def _remove_stale_temporaries(out_dir: Path, layout: Layout) -> None:
    now = time.time()
    for folder in layout.folders(out_dir):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.startswith(".") and ".tmp-" in entry.name:
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > STALE_AFTER_S:
                        shutil.rmtree(entry, ignore_errors=True)


def prepare_ucf101(
    source: str | Path,
    out_dir: str | Path,
    layout: str = "balancebenchmark",
    flows: str = "sampled",
    short_side: int | None = DIMML_SHORT_SIDE,
    workers: int = 2,
    progress: bool = True,
    seed: int = 0,
) -> Path:
    """Prepare the download ``source`` into ``out_dir`` in ``layout`` (see the module docstring); returns
    ``out_dir``. ``flows``: the ``balancebenchmark`` layout's flows (``sampled`` / ``all``); ``short_side``: the
    ``dimml`` layout's frame size (None: the video's). ``seed`` is not used: UCF-101's splits are its own lists."""
    from tqdm.auto import tqdm

    del seed
    if layout not in LAYOUTS:
        raise PrepareError(f"unknown UCF-101 layout {layout!r}; expected one of {sorted(LAYOUTS)}")
    if flows not in FLOWS:
        raise PrepareError(f"flows must be one of {FLOWS}, not {flows!r}")
    spec = LAYOUTS[layout]
    settings: dict[str, Any] = {"jpeg_quality": JPEG_QUALITY, "bound": BOUND, "tvl1": "skimage defaults"}
    if layout == "balancebenchmark":
        settings["flows"] = flows
    else:
        settings["short_side"] = short_side
    source, out_dir = Path(source), Path(out_dir)
    if source.exists() and out_dir.exists() and source.resolve() == out_dir.resolve():
        raise PrepareError("SOURCE and OUT must differ")
    lists, videos, problems = inspect_download(source)
    if problems:
        raise prepare_error(f"cannot prepare UCF-101 from {source}", [str(problem) for problem in problems])
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    manifest = _read_manifest(manifest_path)
    known = manifest["layouts"].get(layout)
    if known is not None and known != settings:
        raise PrepareError(
            f"{out_dir} holds the {layout} layout prepared with {known}, not {settings}: choose another OUT or delete "
            f"its {', '.join(str(p.relative_to(out_dir)) for p in spec.folders(out_dir) if p.exists())} and "
            f"{MANIFEST}"
        )
    manifest["layouts"][layout] = settings
    manifest["source"] = str(source.resolve())
    write_text_atomic(manifest_path, json.dumps(manifest, indent=1))
    _remove_stale_temporaries(out_dir, spec)
    todo = [name for name in videos if not video_done(out_dir, spec, name)]
    jobs = [(str(videos[name]), str(out_dir), name, layout, flows, short_side) for name in todo]
    errors = []
    parallel = workers > 1 and len(jobs) > 1
    with ProcessPoolExecutor(max_workers=workers) if parallel else contextlib.nullcontext() as pool:
        results = pool.map(_prepare_one, jobs) if parallel else map(_prepare_one, jobs)
        for _, error in tqdm(results, total=len(jobs), desc=f"prepare UCF-101 ({layout})",
                             disable=not progress or not jobs):  # fmt: skip
            if error:
                errors.append(error)
    if errors:
        raise prepare_error(
            f"{len(errors)} of {len(videos)} videos cannot be prepared (the others are, in {out_dir}; run it again "
            "to resume)",
            errors,
        )
    for name, path in lists.items():
        data = path.read_bytes()
        target = out_dir / name
        if not target.is_file() or target.read_bytes() != data:
            atomic_write(target, lambda tmp, data=data: tmp.write_bytes(data))
    return out_dir
