"""``check-data`` for CASIA-SURF: every list line parsed and every listed image read, all problems reported.

Reported, each with the file (and the list line) at fault:

- list files: missing, not UTF-8, bad lines (field count, label, missing images), empty splits;
- duplicates and shared cases: a case is one listed sample, identified by its image files (normalised paths). A
  line listing an image that an earlier line of the same split lists is a duplicate; a line listing an image that
  another split lists is a case in two splits (the real lists name no subject in Val / Testing, so the image files
  are what two splits can share);
- images: empty (0 bytes), a JPEG / PNG cut short (no end-of-image marker: OpenCV decodes it with only a warning),
  or not decodable by ``cv2.imread`` -- what :func:`~.loader.read_image` refuses. Any size and
  channel count is what the loader reads (``IMREAD_COLOR`` and a resize, as the authors), so none is reported;
- ``synthetic.json`` torn (a synthetic root).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

from mwam_harness.datasets.casia_surf import MODALITIES, SPLITS
from mwam_harness.datasets.casia_surf.loader import CasiaSurfError, list_file, parse_split
from mwam_harness.datasets.checking import image_file_problem, json_problem, shared_cases
from mwam_harness.datasets.registry import SYNTHETIC_MARKER, Problem


def _decode_problem(path: Path) -> str | None:
    """What is wrong with the image at ``path`` (None: complete, and it decodes to a non-empty image)."""
    problem = image_file_problem(path)
    if problem is not None:
        return problem
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return "unreadable or empty image (cv2.imread returned nothing)"
    return None


def check_data(root: str | Path, progress: bool = True, workers: int = 4) -> list[Problem]:
    """Problems of the CASIA-SURF root (see the module docstring). Every listed image is read once (``workers``
    threads; OpenCV releases the GIL while decoding)."""
    if not Path(root).is_dir():
        return [Problem(str(root), "not a directory (the CASIA-SURF root holds the three list files)")]
    problems: list[Problem] = []
    marker = json_problem(Path(root) / SYNTHETIC_MARKER, "delete the folder and write the synthetic set again")
    if marker is not None:
        problems.append(Problem(str(Path(root) / SYNTHETIC_MARKER), marker))
    base = Path(root).resolve()  # the case keys: image paths relative to the root, normalised
    images: dict[str, tuple[Path, Path, int]] = {}  # case key -> (image, list file, first line)
    cases = {}
    for split in SPLITS:
        try:
            path = list_file(root, split)
            samples, bad = parse_split(root, split)
        except CasiaSurfError as error:
            line = getattr(error.__cause__, "line", None)  # a list file that is not UTF-8: the line at fault
            problems.append(Problem(str(Path(root) / SPLITS[split]), str(error).split(": ", 1)[-1], line))
            continue
        problems += [Problem(str(path), message, line) for line, message in bad]
        if not samples and not bad:
            problems.append(Problem(str(path), f"empty split {split!r} (no samples listed)"))
        keyed = [(line, tuple(os.path.relpath(sample.path(m), base) for m in MODALITIES)) for line, sample in samples]
        cases[split] = (path, keyed)
        for (line, keys), (_, sample) in zip(keyed, samples, strict=True):
            for key, modality in zip(keys, MODALITIES, strict=True):
                images.setdefault(key, (sample.path(modality), path, line))
    problems += shared_cases(cases)
    from tqdm.auto import tqdm

    listed = list(images.values())
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = pool.map(_decode_problem, (image for image, _, _ in listed))
        for (image, listed_in, line), message in tqdm(
            zip(listed, found, strict=True), total=len(listed), desc="decode CASIA-SURF", disable=not progress
        ):
            if message is not None:
                problems.append(Problem(str(image), f"{message} (listed in {listed_in.name}, line {line})"))
    return problems
