"""``check-data`` for CASIA-SURF: every list line parsed and every listed image decoded, all problems reported."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

from datasets.casia_surf import MODALITIES, SPLITS
from datasets.casia_surf.loader import CasiaSurfError, list_file, parse_split
from datasets.registry import Problem


def _decode_problem(path: Path) -> str | None:
    """What is wrong with the image at ``path`` (None: it decodes to a non-empty image)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return "unreadable or empty image (cv2.imread returned nothing)"
    return None


def check_data(root: str | Path, progress: bool = True, workers: int = 4) -> list[Problem]:
    """Problems of the CASIA-SURF root: missing or unreadable list files, bad lines (field count, label, missing
    images) with their line numbers, empty splits, and listed images that do not decode. Every image is read once
    (``workers`` threads; OpenCV releases the GIL while decoding)."""
    if not Path(root).is_dir():
        return [Problem(str(root), "not a directory (the CASIA-SURF root holds the three list files)")]
    problems: list[Problem] = []
    images: list[tuple[Path, Path, int]] = []  # (image, list file, line)
    for split in SPLITS:
        try:
            path = list_file(root, split)
            samples, bad = parse_split(root, split)
        except CasiaSurfError as error:
            problems.append(Problem(str(Path(root) / SPLITS[split]), str(error).split(": ", 1)[-1]))
            continue
        problems += [Problem(str(path), message, line) for line, message in bad]
        if not samples and not bad:
            problems.append(Problem(str(path), f"empty split {split!r} (no samples listed)"))
        images += [(sample.path(m), path, line) for line, sample in samples for m in MODALITIES]
    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = pool.map(_decode_problem, (image for image, _, _ in images))
        for (image, listed_in, line), message in tqdm(
            zip(images, found, strict=True), total=len(images), desc="decode CASIA-SURF", disable=not progress
        ):
            if message is not None:
                problems.append(Problem(str(image), f"{message} (listed in {listed_in.name}, line {line})"))
    return problems
