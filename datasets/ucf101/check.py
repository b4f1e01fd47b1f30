"""``check-data`` for UCF-101: a prepared root (either layout, or both) or a download; every problem with its file.

**Prepared root** (what runs read; ``layout.py``):

- list files: ``classInd.txt`` (``NUMBER NAME``, numbered 1, 2, ... in order), split 1's ``trainlist01.txt`` and
  ``testlist01.txt`` (required) and the other splits' (optional, but a split's two lists come together): not UTF-8,
  bad lines, classes not in ``classInd.txt``, labels that disagree with it, a video listed twice, an empty list; per
  split, a video in both its lists and a group (``gXX`` of a class) in both -- UCF-101's splits never share one;
- frames, for each layout present (``balancebenchmark``: ``ucf101-frames-1fps/video-set/``, ``u/``, ``v/``;
  ``dimml``: ``jpegs_256/``, ``tvl1_flow/{u,v}/``): every listed video has its RGB folder and its u and v folders;
  ``balancebenchmark``'s RGB folder holds ``frame_00001.jpg`` ... ``frame_00006.jpg``, ``dimml``'s frames are numbered
  1 ... n without a gap; the u and v folders hold the same frames ``frame000001.jpg`` ... numbered without a gap;
  at least 3 of each (the loader's 3 segments); every file complete (JPEG end marker) and decodable, the RGB frames
  as colour, the flows single-channel with u and v of one size;
- ``synthetic.json`` and ``prepare.json`` readable.

**Download** (``UCF-101/`` and ``ucfTrainTestlist/``, what ``prepare`` reads): the list files as above, every listed
video present and opening with PyAV with a video stream whose first frame decodes.

What the loader refuses (``loader.py``), this reports first, every problem at once.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from mwam_harness.datasets.checking import ListFileError, gather_problems, image_file_problem, json_problem
from mwam_harness.datasets.registry import SYNTHETIC_MARKER, Problem
from mwam_harness.datasets.ucf101.layout import (
    CLASS_INDEX,
    FLOW_FILE,
    FOLDS,
    KINDS,
    LAYOUTS,
    Layout,
    Video,
    is_download,
    is_prepared,
    list_name,
    numbered_files,
    parse_class_index,
    parse_video_list,
)

#: The loader's default number of segments: a video needs at least this many frames of each kind.
MIN_FRAMES = 3
JSON_FILES = {
    SYNTHETIC_MARKER: "a synthetic set: delete the folder and it is generated again",
    "prepare.json": "delete it and run `python -m reproduce prepare ucf101 SOURCE ROOT` again",
}


def _image_problem(path: Path, flow: bool) -> tuple[str | None, tuple[int, int] | None]:
    """``(what is wrong, (height, width))`` of one frame: missing, cut short, not decodable, or of the wrong kind
    (RGB frames colour, flows single-channel)."""
    problem = image_file_problem(path)
    if problem is not None:
        return problem, None
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return "unreadable image (cv2.imread returned nothing)", None
    if flow and image.ndim != 2:
        return f"a flow image must be single-channel (grayscale), got {image.shape[2]} channels", None
    if not flow and (image.ndim != 3 or image.shape[2] != 3):
        channels = 1 if image.ndim == 2 else image.shape[2]
        return f"an RGB frame must have 3 colour channels, got {channels}", None
    return None, (int(image.shape[0]), int(image.shape[1]))


def _gaps(numbers: list[int]) -> list[int]:
    """The frame numbers missing from 1 ... max(numbers)."""
    present = set(numbers)
    return [k for k in range(1, max(numbers, default=0) + 1) if k not in present]


def video_problems(root: Path, layout: Layout, video: Video, listed: str) -> list[Problem]:
    """Problems of one listed video in one layout (``listed``: where it is listed, e.g. ``trainlist01.txt, line
    3``)."""
    problems: list[Problem] = []
    rgb_dir = layout.rgb_dir(root, video.name)
    if not rgb_dir.is_dir():
        problems.append(Problem(str(rgb_dir), f"missing RGB frame folder of video {video.name} ({listed})"))
    else:
        if layout.rgb_frames is not None:
            frames = list(range(1, layout.rgb_frames + 1))
        else:
            frames = numbered_files(rgb_dir, FLOW_FILE)
            gaps = _gaps(frames)
            if gaps:
                missing = ", ".join(layout.rgb_file.format(k) for k in gaps[:5])
                problems.append(Problem(str(rgb_dir), f"frames missing between 1 and {max(frames)}: {missing}"))
            if len(frames) < MIN_FRAMES:
                problems.append(Problem(str(rgb_dir), f"{len(frames)} RGB frame(s), fewer than {MIN_FRAMES}"))
        for k in frames:
            path = layout.rgb_path(root, video.name, k)
            if not path.is_file():
                problems.append(Problem(str(path), f"missing RGB frame {k} of video {video.name} ({listed})"))
                continue
            message, _ = _image_problem(path, flow=False)
            if message is not None:
                problems.append(Problem(str(path), f"{message} ({listed})"))
    flows: dict[str, list[int]] = {}
    for component in ("u", "v"):
        folder = layout.flow_dir(root, video.name, component)
        if not folder.is_dir():
            problems.append(Problem(str(folder), f"missing {component} flow folder of video {video.name} ({listed})"))
            continue
        numbers = numbered_files(folder)
        flows[component] = numbers
        gaps = _gaps(numbers)
        if gaps:
            missing = ", ".join(layout.flow_file.format(k) for k in gaps[:5])
            problems.append(Problem(str(folder), f"flows missing between 1 and {max(numbers)}: {missing}"))
        if len(numbers) < MIN_FRAMES:
            problems.append(Problem(str(folder), f"{len(numbers)} flow frame(s), fewer than {MIN_FRAMES}"))
    if len(flows) == 2 and flows["u"] != flows["v"]:
        u_dir = layout.flow_dir(root, video.name, "u")
        problems.append(
            Problem(str(u_dir), f"{len(flows['u'])} u flows but {len(flows['v'])} v flows (the same frames expected)")
        )
    for k in sorted(set(flows.get("u", [])) & set(flows.get("v", []))):
        sizes = {}
        for component in ("u", "v"):
            path = layout.flow_path(root, video.name, component, k)
            message, size = _image_problem(path, flow=True)
            if message is not None:
                problems.append(Problem(str(path), f"{message} ({listed})"))
            else:
                sizes[component] = size
        if len(sizes) == 2 and sizes["u"] != sizes["v"]:
            path = layout.flow_path(root, video.name, "v", k)
            problems.append(Problem(str(path), f"v flow of size {sizes['v']}, its u flow {sizes['u']}"))
    return problems


def list_problems(root: Path) -> tuple[dict[str, tuple[Video, str]], list[Problem]]:
    """``({video: (Video, where first listed)}, problems)`` of the list files at ``root`` (or of the download's
    ``ucfTrainTestlist/``: ``root`` is then that folder)."""
    index = root / CLASS_INDEX
    try:
        classes, bad = parse_class_index(index)
    except FileNotFoundError:
        return {}, [Problem(str(index), "missing class index (classInd.txt, from ucfTrainTestlist/)")]
    except ListFileError as error:
        return {}, [Problem(str(index), str(error).removeprefix(f"{index}: "), error.line)]
    problems = [Problem(str(index), message, line) for line, message in bad]
    videos: dict[str, tuple[Video, str]] = {}
    for fold in FOLDS:
        names = {split: list_name(split, fold) for split in KINDS}
        present = {split: name for split, name in names.items() if (root / name).is_file()}
        if fold == 1 or present:
            problems += [Problem(str(root / name), f"missing list file (split {fold})")
                         for split, name in names.items() if split not in present]  # fmt: skip
        parsed: dict[str, list[tuple[int, Video]]] = {}
        for split, name in present.items():
            path = root / name
            try:
                entries, bad = parse_video_list(path, classes)
            except ListFileError as error:
                problems.append(Problem(str(path), str(error).removeprefix(f"{path}: "), error.line))
                continue
            problems += [Problem(str(path), message, line) for line, message in bad]
            if not entries and not bad:
                problems.append(Problem(str(path), f"empty list: the {split} split of split {fold} names no video"))
            parsed[split] = entries
            for line, video in entries:
                videos.setdefault(video.name, (video, f"{name}, line {line}"))
        if len(parsed) == 2:
            problems += _shared(root, names, parsed)
    return videos, problems


def _shared(root: Path, names: dict[str, str], parsed: dict[str, list[tuple[int, Video]]]) -> list[Problem]:
    """Videos and groups one split lists for both training and testing."""
    trained = {video.name: line for line, video in parsed["train"]}
    groups = {(v.folder.casefold(), v.group): line for line, v in parsed["train"] if v.group is not None}
    problems, reported = [], set()
    test_file = str(root / names["test"])
    for line, video in parsed["test"]:
        if video.name in trained:
            message = f"in two splits: {video.name} is also in {names['train']} (line {trained[video.name]})"
            problems.append(Problem(test_file, message, line))
            continue
        key = (video.folder.casefold(), video.group)
        if key in groups and key not in reported:
            reported.add(key)
            problems.append(
                Problem(
                    test_file,
                    f"group g{video.group:02d} of {video.folder} is also trained on ({names['train']}, line "
                    f"{groups[key]}): UCF-101's splits never share a group between train and test",
                    line,
                )
            )
    return problems


def _video_file_problem(path: Path) -> str | None:
    """What is wrong with one ``.avi`` of the download: empty, or not opening with a decodable video stream."""
    import av

    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "unreadable video: no video stream"
            if next(iter(container.decode(container.streams.video[0])), None) is None:
                return "unreadable video: no frame decodes"
    except (av.FFmpegError, OSError) as error:
        return f"unreadable video ({type(error).__name__}: {error})"
    return None


def _download_problems(source: Path, progress: bool, workers: int) -> list[Problem]:
    from mwam_harness.datasets.ucf101.prepare import inspect_download

    _, videos, problems = inspect_download(source)

    def one(item: tuple[str, Path]) -> list[Problem]:
        message = _video_file_problem(item[1])
        return [] if message is None else [Problem(str(item[1]), message)]

    return problems + gather_problems(list(videos.items()), one, workers, progress, "check UCF-101 videos")


def check_data(root: str | Path, progress: bool = True, workers: int = 4) -> list[Problem]:
    """Problems of a prepared UCF-101 root or of a download folder (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        return [Problem(str(root), "not a directory (a prepared UCF-101 root or the download folder)")]
    if is_download(root) and not is_prepared(root):
        return _download_problems(root, progress, workers)
    if not is_prepared(root):
        return [
            Problem(
                str(root),
                "neither a prepared UCF-101 root (classInd.txt, trainlist01.txt, testlist01.txt and the frames of a "
                "layout) nor the download (UCF-101/, ucfTrainTestlist/)",
            )
        ]
    problems = [Problem(str(root / name), problem) for name, rebuild in JSON_FILES.items()
                if (problem := json_problem(root / name, rebuild)) is not None]  # fmt: skip
    videos, found = list_problems(root)
    problems += found
    layouts = [layout for layout in LAYOUTS.values() if layout.present(root)]
    if not layouts:
        folders = " or ".join(f"{', '.join(f'{f}/' for f in (s.rgb, s.u, s.v))} ({s.name})" for s in LAYOUTS.values())
        problems.append(Problem(str(root), f"no frames: a prepared root holds {folders}"))
    jobs = [(layout, video, where) for layout in layouts for video, where in videos.values()]
    problems += gather_problems(jobs, lambda job: video_problems(root, *job), workers, progress, "check UCF-101")
    return problems
