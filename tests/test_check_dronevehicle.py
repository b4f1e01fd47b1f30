"""``check-data dronevehicle``: one test per corruption kind on a copy of a tiny synthetic set in the prepared layout,
each asserting the Problem names the file (and the list line); and the loader refusing the same when it is built,
before ultralytics reads (or rewrites) anything."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mwam_harness.datasets.checking import ListFileError
from mwam_harness.datasets.dronevehicle.check import check_data
from mwam_harness.datasets.dronevehicle.layout import read_list
from mwam_harness.datasets.dronevehicle.synthetic import write_dronevehicle


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dronevehicle(tmp_path_factory.mktemp("dv") / "dv", num_train=3, num_val=1, num_test=1)


@pytest.fixture
def root(clean: Path, tmp_path: Path) -> Path:
    """A copy of the clean set (without its release copy, checked elsewhere), to corrupt."""
    return Path(shutil.copytree(clean, tmp_path / "dv", ignore=shutil.ignore_patterns("source", "*.cache")))


def _found(root: Path) -> list[tuple[str, int | None, str]]:
    """(file relative to the root, line, message) of every problem."""
    return [(Path(p.file).relative_to(root).as_posix(), p.line, p.message) for p in check_data(root, progress=False)]


def _loader(root: Path, split: str):  # a DroneVehicleDataset (imports ultralytics)
    from mwam_harness.datasets.dronevehicle.loader import DroneVehicleDataset

    return DroneVehicleDataset(root, split, imgsz=64)


def _line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def _append(path: Path, line: str) -> None:
    with path.open("a") as handle:
        handle.write(line + "\n")


def test_the_clean_set_has_no_problem_though_each_split_numbers_from_00001(clean: Path) -> None:
    assert (clean / "images" / "train" / "00001.jpg").is_file() and (clean / "images" / "test" / "00001.jpg").is_file()
    assert check_data(clean, progress=False) == []


@pytest.mark.parametrize(("folder", "kind"), [("images", "RGB"), ("image", "IR")])
def test_a_jpeg_cut_in_half_is_reported_and_refused_untouched(root: Path, folder: str, kind: str) -> None:
    image = root / folder / "train" / "00002.jpg"
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(image)) is not None  # OpenCV decodes it, with only a warning
    ((file, _, message),) = _found(root)
    assert file == f"{folder}/train/00002.jpg" and f"{kind} image: truncated JPEG" in message
    assert "train.txt, line 2" in message
    with pytest.raises(ValueError, match=rf"{folder}/train/00002.jpg: {kind} image: truncated JPEG"):
        _loader(root, "train")
    assert image.read_bytes() == data[: len(data) // 2]  # ultralytics would have re-encoded it in place


def test_zero_byte_files(root: Path) -> None:
    (root / "image" / "val" / "00001.jpg").write_bytes(b"")
    (root / "labels" / "train" / "00003.txt").write_bytes(b"")  # an image without objects: fine
    (root / "test.txt").write_bytes(b"")
    found = _found(root)
    assert [(f, line) for f, line, _ in found] == [("test.txt", None), ("image/val/00001.jpg", None)]
    assert found[0][2] == "empty split 'test'"
    assert "IR image: empty file (0 bytes)" in found[1][2] and "val.txt, line 1" in found[1][2]
    with pytest.raises(ValueError, match=r"image/val/00001.jpg: IR image: empty file \(0 bytes\)"):
        _loader(root, "val")


def test_duplicated_lines(root: Path) -> None:
    _append(root / "train.txt", "./images/train/00002.jpg")
    _append(root / "train.txt", "./images/../images/train/00003.jpg")  # the same file, spelt otherwise
    found = _found(root)
    assert [(f, line) for f, line, _ in found] == [("train.txt", 4), ("train.txt", 5)]
    assert "duplicate" in found[0][2] and "already listed on line 2" in found[0][2]
    assert "already listed on line 3" in found[1][2]


def test_the_same_image_in_train_and_test_or_val(root: Path) -> None:
    _append(root / "test.txt", "./images/train/00003.jpg")
    _append(root / "val.txt", "./images/train/00001.jpg")
    found = _found(root)
    assert [(f, line) for f, line, _ in found] == [("val.txt", 2), ("test.txt", 2)]
    assert all("in two splits" in m and "'train'" in m for _, _, m in found)
    assert "train.txt, line 1" in found[0][2] and "train.txt, line 3" in found[1][2]


def test_list_and_label_files_that_are_not_utf8_are_named_with_their_line(root: Path) -> None:
    (root / "val.txt").write_bytes(b"./images/val/00001.jpg\n./images/val/caf\xe9.jpg\n")
    label = root / "labels" / "test" / "00001.txt"
    label.write_bytes(label.read_bytes() + b"0 0.5 0.5 0.1 0.1 \xff\n")
    found = _found(root)
    assert [(f, line) for f, line, _ in found] == [("val.txt", 2), ("labels/test/00001.txt", _line_count(label))]
    assert all("not valid UTF-8" in m for _, _, m in found)
    with pytest.raises(ListFileError, match=r"val.txt: not valid UTF-8 text \(line 2"):
        read_list(root, "val")
    with pytest.raises(ValueError, match=r"val.txt: not valid UTF-8 text \(line 2"):
        _loader(root, "val")
    with pytest.raises(ValueError, match=r"labels/test/00001.txt: not valid UTF-8 text"):
        _loader(root, "test")


def test_images_of_the_wrong_size(root: Path) -> None:
    for folder in ("images", "image"):  # an unprepared release pair (840 x 712, with its border): labels misplaced
        cv2.imwrite(str(root / folder / "train" / "00001.jpg"), np.full((712, 840, 3), 200, np.uint8))
    cv2.imwrite(str(root / "image" / "val" / "00001.jpg"), np.zeros((100, 120, 3), np.uint8))
    found = _found(root)
    assert [(f, line) for f, line, _ in found] == [("images/train/00001.jpg", None), ("images/val/00001.jpg", None)]
    assert found[0][2].startswith("RGB is 840 x 712, expected DroneVehicle's prepared 640 x 512")
    assert found[1][2].startswith("RGB is 640 x 512 but its IR twin") and "is 120 x 100" in found[1][2]
    # the loader refuses the pair when it is built, not when it first reads it mid-run
    with pytest.raises(ValueError, match=r"images/val/00001.jpg is 640 x 512 but its IR twin .* is 120 x 100"):
        _loader(root, "val")


def test_any_channel_count_is_read_alike(root: Path) -> None:
    """Both read every image as 3 channels (cv2.imread IMREAD_COLOR): a grey IR image is no problem for either."""
    cv2.imwrite(str(root / "image" / "test" / "00001.jpg"), np.full((512, 640), 77, np.uint8))
    assert check_data(root, progress=False) == []
    assert _loader(root, "test").load_image(0)[0].shape[2] == 6


def test_torn_json_and_label_caches(root: Path) -> None:
    (root / "synthetic.json").write_text('{"num_train": 3, "num')
    (root / "prepare.json").write_bytes(b"")
    found = _found(root)
    assert [(f, line) for f, line, _ in found] == [("synthetic.json", None), ("prepare.json", None)]
    assert all("torn JSON" in m for _, _, m in found)
    _loader(root, "val")  # writes labels/val.cache
    cache = root / "labels" / "val.cache"
    cache.write_bytes(cache.read_bytes()[:40])  # torn: ultralytics scans the labels again
    assert len(_loader(root, "val")) == 1


def test_every_problem_is_reported_at_once(root: Path) -> None:
    rgb = root / "images" / "train" / "00001.jpg"
    rgb.write_bytes(rgb.read_bytes()[:300])
    (root / "image" / "val" / "00001.jpg").write_bytes(b"")
    (root / "labels" / "train" / "00002.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    _append(root / "train.txt", "./images/train/00003.jpg")
    _append(root / "test.txt", "./images/train/00002.jpg")
    found = _found(root)
    assert len(found) == 5, found
