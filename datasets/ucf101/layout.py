"""UCF-101's on-disk layouts: names, paths and the list files (no heavy imports).

**Download** (what ``prepare`` reads): ``SOURCE/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` (``UCF101.rar``) and
``SOURCE/ucfTrainTestlist/`` (``UCF101TrainTestSplits-RecognitionTask.zip``): ``classInd.txt`` (``1 ApplyEyeMakeup``
... ``101 YoYo``), ``trainlist0N.txt`` (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``) and ``testlist0N.txt``
(``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi``, no label) for the splits N = 1, 2, 3. Videos are grouped (``gXX``:
clips of one group share actor and scene); a split never puts one group in both its lists. The class folder of a
list line names the class (``HandstandPushups/v_HandStandPushups_g01_c01.avi``: the file names of that class spell
it differently); its label is the class's ``classInd.txt`` number - 1, the name matched without regard to case.

**Prepared** (what runs read): the list files at ``ROOT`` and the frames of one or both layouts:

- ``balancebenchmark``: ``ROOT/ucf101-frames-1fps/video-set/<video>/frame_00001.jpg`` ... ``frame_00006.jpg`` (6 RGB
  frames, BalanceBenchmark's ``file_num = 6``) and ``ROOT/u/<video>/frame000001.jpg`` ..., ``ROOT/v/<video>/...``
  (grayscale JPEGs of the horizontal / vertical flow) -- the folders of BalanceBenchmark's ``dataset_config.yaml``
  (``visual_path``, ``flow_path_u``, ``flow_path_v``) relative to its UCF-101 folder;
- ``dimml``: ``ROOT/jpegs_256/<video>/frame000001.jpg`` ... (every frame) and ``ROOT/tvl1_flow/{u,v}/<video>/
  frame000001.jpg`` ... (Feichtenhofer's twostreamfusion release, as DI-MML's ``UCFDataset.py`` reads it).

``<video>`` is the list line's file name without ``.avi`` (``v_ApplyEyeMakeup_g08_c01``). Names starting with a dot
(``prepare``'s temporary folders) are never read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mwam_harness.datasets.ucf101 import SPLITS

CLASS_INDEX = "classInd.txt"
FOLDS: tuple[int, ...] = (1, 2, 3)
KINDS: dict[str, str] = {"train": "train", "test": "test"}  # split name -> the list file's prefix
#: The download's folders inside SOURCE.
RAW_VIDEOS = "UCF-101"
RAW_LISTS = "ucfTrainTestlist"
#: BalanceBenchmark's fixed number of RGB frames per video (``file_num = 6`` in its ``ucf101_dataset.py``).
BB_RGB_FRAMES = 6
VIDEO_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$")
FLOW_FILE = re.compile(r"^frame(\d{6})\.jpg$")
LIST_HINT = "UCF-101's list files are UTF-8 (ASCII) text; take them again from ucfTrainTestlist/"


@dataclass(frozen=True)
class Layout:
    """Where one prepared layout keeps a video's RGB frames and flows (folders relative to the root)."""

    name: str
    rgb: str
    u: str
    v: str
    #: ``str.format`` pattern of the k-th (1-based) RGB frame's file name.
    rgb_file: str
    flow_file: str = "frame{:06d}.jpg"
    #: RGB frames a video has: a fixed number, or None for every frame of the video.
    rgb_frames: int | None = None

    def rgb_dir(self, root: Path, video: str) -> Path:
        return Path(root) / self.rgb / video

    def flow_dir(self, root: Path, video: str, component: str) -> Path:
        if component not in ("u", "v"):
            raise ValueError(f"flow component must be u or v, got {component!r}")
        return Path(root) / (self.u if component == "u" else self.v) / video

    def rgb_path(self, root: Path, video: str, k: int) -> Path:
        return self.rgb_dir(root, video) / self.rgb_file.format(k)

    def flow_path(self, root: Path, video: str, component: str, k: int) -> Path:
        return self.flow_dir(root, video, component) / self.flow_file.format(k)

    def folders(self, root: Path) -> list[Path]:
        return [Path(root) / folder for folder in (self.rgb, self.u, self.v)]

    def present(self, root: Path) -> bool:
        """Whether ``root`` holds any folder of this layout."""
        return any(folder.is_dir() for folder in self.folders(root))


LAYOUTS: dict[str, Layout] = {
    "balancebenchmark": Layout(
        "balancebenchmark", "ucf101-frames-1fps/video-set", "u", "v", "frame_{:05d}.jpg", rgb_frames=BB_RGB_FRAMES
    ),
    "dimml": Layout("dimml", "jpegs_256", "tvl1_flow/u", "tvl1_flow/v", "frame{:06d}.jpg"),
}


def layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise ValueError(f"unknown UCF-101 layout {name!r}; expected one of {sorted(LAYOUTS)}")
    return LAYOUTS[name]


def list_name(split: str, fold: int = 1) -> str:
    """``trainlist0N.txt`` / ``testlist0N.txt`` of ``split`` (train / test) and UCF-101 split ``fold`` (1-3)."""
    if split not in KINDS:
        raise ValueError(f"UCF-101 has the splits {sorted(KINDS)} (no validation split), not {split!r}")
    if fold not in FOLDS:
        raise ValueError(f"UCF-101 has the splits (fold) 1, 2 and 3, not {fold!r}")
    return f"{KINDS[split]}list{fold:02d}.txt"


def list_files() -> list[str]:
    """Every list file of the download, ``classInd.txt`` first."""
    return [CLASS_INDEX] + [list_name(split, fold) for fold in FOLDS for split in KINDS]


@dataclass(frozen=True)
class Video:
    """One listed video: its name (the file name without ``.avi``), class folder, label (0-100), the list line's path
    (``Class/v_Class_gXX_cYY.avi``) and its group (None when the name does not follow UCF-101's pattern)."""

    name: str
    folder: str
    label: int
    path: str
    group: int | None


def group_of(name: str) -> int | None:
    """The group number of a video name ``v_<Class>_gXX_cYY`` (None for another pattern)."""
    match = VIDEO_NAME.match(name)
    return int(match["group"]) if match else None


def parse_class_index(path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """The class names of ``classInd.txt`` in label order and its problems ``(line, what is wrong)``: a line that is
    not ``NUMBER NAME``, numbers that are not 1, 2, 3, ... in order, a name listed twice (without regard to case).
    FileNotFoundError naming the file when it is missing; ListFileError (a ValueError) when it is not UTF-8."""
    from mwam_harness.datasets.checking import read_list_lines

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing class index of UCF-101 (ucfTrainTestlist/{CLASS_INDEX})")
    names: list[str] = []
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, text in read_list_lines(path, LIST_HINT):
        fields = text.split()
        if len(fields) != 2 or not fields[0].isdigit():
            problems.append((number, f"expected 'NUMBER CLASSNAME', got {text!r}"))
            continue
        if int(fields[0]) != len(names) + 1:
            expected = len(names) + 1
            problems.append((number, f"class number {fields[0]}, expected {expected} (numbered 1, 2, ... in order)"))
            continue
        key = fields[1].casefold()
        if key in seen:
            problems.append((number, f"class {fields[1]} is listed twice (first on line {seen[key]})"))
            continue
        seen[key] = number
        names.append(fields[1])
    if not names and not problems:
        problems.append((1, "no classes listed"))
    return names, problems


def parse_video_list(path: Path, classes: list[str]) -> tuple[list[tuple[int, Video]], list[tuple[int, str]]]:
    """The videos of a ``trainlist0N`` / ``testlist0N`` file, ``(line, Video)`` in file order, and its problems
    ``(line, what is wrong)``: a line that is not ``Class/name.avi [label]``, a class not in ``classInd.txt``, a label
    that disagrees with it, a video listed twice. FileNotFoundError naming the file when it is missing."""
    from mwam_harness.datasets.checking import read_list_lines

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing UCF-101 list file")
    index = {name.casefold(): label for label, name in enumerate(classes)}
    videos: list[tuple[int, Video]] = []
    problems: list[tuple[int, str]] = []
    first: dict[str, int] = {}
    for number, text in read_list_lines(path, LIST_HINT):
        fields = text.split()
        listed = fields[0] if fields else ""
        folder, _, file_name = listed.partition("/")
        if len(fields) > 2 or not folder or not file_name or "/" in file_name or not file_name.endswith(".avi"):
            problems.append((number, f"expected 'Class/v_Class_gXX_cYY.avi [label]', got {text!r}"))
            continue
        label = index.get(folder.casefold())
        if label is None:
            problems.append((number, f"class {folder!r} is not in {CLASS_INDEX}"))
            continue
        if len(fields) == 2 and fields[1] != str(label + 1):
            problems.append((number, f"label {fields[1]} but {CLASS_INDEX} numbers {folder} {label + 1}"))
            continue
        name = file_name[: -len(".avi")]
        if name in first:
            problems.append((number, f"video {name} is listed twice (first on line {first[name]})"))
            continue
        first[name] = number
        videos.append((number, Video(name, folder, label, listed, group_of(name))))
    return videos, problems


def read_videos(root: Path, split: str, fold: int = 1) -> tuple[list[str], list[Video]]:
    """The classes (``classInd.txt``) and the videos of ``split`` in UCF-101 split ``fold``; ValueError naming the
    file and its bad lines, FileNotFoundError naming a missing file."""
    root = Path(root)
    classes, class_problems = parse_class_index(root / CLASS_INDEX)
    path = root / list_name(split, fold)
    numbered, problems = parse_video_list(path, classes)
    for file, found in ((root / CLASS_INDEX, class_problems), (path, problems)):
        if found:
            shown = "\n  ".join(f"line {n}: {message}" for n, message in found[:20])
            more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
            raise ValueError(f"{file}: {len(found)} bad line(s):\n  {shown}{more}")
    if not numbered:
        raise ValueError(f"{path}: the {split} list of split {fold} names no video")
    return classes, [video for _, video in numbered]


def numbered_files(folder: Path, pattern: re.Pattern[str] = FLOW_FILE) -> list[int]:
    """The frame numbers of the files in ``folder`` whose names match ``pattern`` (``frame000001.jpg``), sorted;
    names starting with a dot are skipped. [] when the folder is missing."""
    try:
        names = [entry.name for entry in Path(folder).iterdir() if not entry.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(m.group(1)) for name in names if (m := pattern.match(name)))


def is_download(source: Path) -> bool:
    """Whether ``source`` looks like the download (``UCF-101/`` or ``ucfTrainTestlist/``)."""
    source = Path(source)
    return (source / RAW_VIDEOS).is_dir() or (source / RAW_LISTS).is_dir()


def is_prepared(root: Path) -> bool:
    """Whether ``root`` holds the class index or a list file at its top, or a folder of a prepared layout."""
    root = Path(root)
    return (
        (root / CLASS_INDEX).is_file()
        or any((root / name).is_file() for name in SPLITS.values())
        or any(spec.present(root) for spec in LAYOUTS.values())
    )
