"""The part every data set's checker shares: the problems of many listed items, read in a thread pool with a
progress bar (decoding images and volumes releases the GIL)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from mwam_harness.datasets.registry import Problem

T = TypeVar("T")


def gather_problems(
    items: Sequence[T], problems_of: Callable[[T], list[Problem]], workers: int, progress: bool, description: str
) -> list[Problem]:
    """``problems_of(item)`` for every item, in ``workers`` threads, concatenated in item order."""
    from tqdm.auto import tqdm

    found: list[Problem] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for item_problems in tqdm(
            pool.map(problems_of, items), total=len(items), desc=description, disable=not progress
        ):
            found += item_problems
    return found


# ---------------------------------------------------------------- files of every kind (BraTS2020, NYU-Depth V2)
#: The last 12 bytes of every complete PNG: the IEND chunk (length 0, type, CRC).
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_list_lines(path: str | Path, hint: str = "") -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of every non-blank line of the UTF-8 list file ``path``; ListFileError (a
    ValueError, :func:`read_list_text`) naming the file, the line and the byte when it is not UTF-8 or cannot be read
    (``hint``: how to write it again, added to the message)."""
    try:
        text = read_list_text(path)
    except ListFileError as error:
        if not hint:
            raise
        raise ListFileError(f"{error}; {hint}", error.line) from None
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def unique_list_entries(
    lines: Sequence[tuple[int, str]], noun: str, invalid: Callable[[str], str | None] | None = None
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Split list lines (``read_list_lines``) into the entries, ``(line number, text)`` in file order, each text once,
    and the problems, ``(line number, what is wrong)``: ``invalid(text)``'s message when it returns one, or "<noun>
    <text> is listed twice (first on line N)" for a repeat."""
    entries: list[tuple[int, str]] = []
    problems: list[tuple[int, str]] = []
    first: dict[str, int] = {}
    for number, text in lines:
        wrong = invalid(text) if invalid is not None else None
        if wrong is not None:
            problems.append((number, wrong))
        elif text in first:
            problems.append((number, f"{noun} {text} is listed twice (first on line {first[text]})"))
        else:
            first[text] = number
            entries.append((number, text))
    return entries, problems


def refuse_split_overlap(
    list_file: str | Path, split: str, shared: Sequence[tuple[str, str]], noun: str, dataset: str
) -> None:
    """A loader's refusal of a split whose entries are listed in another split too (``shared``: ``(entry, other
    list file)``): ValueError naming the list, the first five and the ``check-data`` command; nothing when empty.
    ``noun``: what an entry is, with its article (``"a case"``, ``"an image"``)."""
    if not shared:
        return
    name = noun.split(" ", 1)[1]
    listed = ", ".join(f"{entry} (also in {other})" for entry, other in shared[:5])
    raise ValueError(
        f"{list_file}: {len(shared)} {name}(s) of the {split} split are in another split too: {listed}; "
        f"{noun} belongs to one split only (python -m reproduce check-data {dataset} ROOT lists them)"
    )


def file_problem(path: str | Path, what: str) -> str | None:
    """What is wrong with the existence of file ``path`` (``what``: e.g. ``"label file of case X"``): missing, not a
    file, or empty (0 bytes); None when it is a non-empty file."""
    path = Path(path)
    if not path.exists():
        return f"missing {what}"
    if not path.is_file():
        return f"{what} is not a file"
    if path.stat().st_size == 0:
        return f"empty file (0 bytes): the {what} was never written or was truncated"
    return None


def json_problem(path: str | Path, rebuild: str) -> str | None:
    """What is wrong with the JSON file ``path`` when it exists: unreadable or torn (does not parse), with
    ``rebuild`` (how to write it again); None when it is absent or parses."""
    import json

    path = Path(path)
    if not path.exists():
        return None
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"unreadable or torn JSON file ({type(error).__name__}: {error}); {rebuild}"
    return None


# ---------------------------------------------------------------- images and list files (CASIA-SURF, DroneVehicle)
#: The first and the last bytes of a complete JPEG (start- and end-of-image markers).
JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"


def image_file_problem(path: str | Path) -> str | None:
    """What is wrong with the image file at ``path`` before decoding it (None: nothing found): missing, empty
    (0 bytes), or a JPEG / PNG without its end marker (JPEG ``FF D9``, PNG ``IEND``, as the last bytes: a file
    cut short, which OpenCV decodes with only a warning, filling the lost part with grey). Reads the first and last
    few bytes only; other formats are left to the decoder."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file (0 bytes)"
        with path.open("rb") as handle:
            head = handle.read(len(PNG_SIGNATURE))
            handle.seek(max(0, size - len(PNG_END)))
            tail = handle.read()
    except FileNotFoundError:
        return "missing file"
    except OSError as error:
        return f"cannot read the file ({error.strerror or error})"
    if head.startswith(JPEG_START) and not tail.endswith(JPEG_END):
        return (
            f"truncated JPEG: no end-of-image marker (FF D9) at the end of its {size} bytes (a copy cut short? "
            "OpenCV would decode it with only a warning); copy the file again"
        )
    if head.startswith(PNG_SIGNATURE) and not tail.endswith(PNG_END):
        return (
            f"truncated PNG: no IEND chunk at the end of its {size} bytes (a copy cut short? OpenCV would decode it "
            "with only a warning); copy the file again"
        )
    return None


class ListFileError(ValueError):
    """A list file that cannot be read as text; the message names the file, ``line`` the line of a decoding error
    (None when the file cannot be read at all)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def read_list_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The whole text of the list file at ``path`` (``encoding``: ``utf-8``, or ``utf-8-sig`` where a byte-order mark
    is allowed, as ultralytics reads its lists); ListFileError naming the file, the line and the byte when it is not
    valid UTF-8, or naming the file when it cannot be read."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ListFileError(f"{path}: cannot read the list file ({error.strerror or error})") from error
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ListFileError(
            f"{path}: not valid UTF-8 text (line {line}, byte {error.start}: {error.reason}); list files must be "
            "UTF-8: re-save it as UTF-8",
            line,
        ) from None


def shared_cases(splits: Mapping[str, tuple[str | Path, Sequence[tuple[int, Sequence[Hashable]]]]]) -> list[Problem]:
    """Duplicates within a split and cases shared between splits, as Problems naming the list file and line.

    ``splits``: split name -> (its list file, ``(line number, keys)`` of each parsed line). A line's keys identify
    its case (e.g. the normalised paths of its images): a line sharing a key with an earlier line of the same split
    is a duplicate; a line sharing a key with a line of an earlier split is a case in two splits (train and val /
    test: the test scores would be on training data). Each line is reported once, naming the first line it repeats.
    """
    problems: list[Problem] = []
    seen: dict[Hashable, tuple[str, Path, int]] = {}  # key -> (split, list file, line) of its first listing
    for split, (list_file, lines) in splits.items():
        list_file = Path(list_file)
        for number, keys in lines:
            first = next((seen[key] for key in keys if key in seen), None)
            if first is not None:
                other_split, other_file, other_line = first
                key = next(key for key in keys if key in seen)
                if other_split == split:
                    message = f"duplicate: {key} is already listed on line {other_line}; remove one of the two lines"
                else:
                    message = (
                        f"in two splits: {key} is also in split {other_split!r} ({other_file.name}, line "
                        f"{other_line}); a case must be in one split only"
                    )
                problems.append(Problem(str(list_file), message, number))
            for key in keys:
                seen.setdefault(key, (split, list_file, number))
    return problems


#: At most this many problems are listed in one :func:`prepare_error` (the rest are counted).
MAX_LISTED = 30


class PrepareError(ValueError):
    """Input that cannot be prepared; the message names every file at fault."""


def prepare_error(what: str, problems: Sequence[str]) -> PrepareError:
    """``what`` and the problems, one a line (the first :data:`MAX_LISTED`, then how many more), as the error a
    ``prepare`` step raises once it has looked at every input."""
    listed = list(problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        listed.append(f"... and {len(problems) - MAX_LISTED} more")
    return PrepareError(f"{what}:\n  " + "\n  ".join(listed))
