"""``check-data casia_surf``: one test per corruption kind on a copy of a tiny synthetic set in the real layout, each
asserting the Problem names the file and the line; and the loader refusing what check-data reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mwam_harness.datasets.casia_surf import SPLITS
from mwam_harness.datasets.casia_surf.check import check_data
from mwam_harness.datasets.casia_surf.loader import CasiaSurfDataset, CasiaSurfError, read_split
from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf
from reproduce.cli import main


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_casia_surf(tmp_path_factory.mktemp("surf") / "CASIA-SURF", 8, 4, 8, size=32, seed=3)


@pytest.fixture
def root(clean: Path, tmp_path: Path) -> Path:
    """A copy of the clean set, to corrupt."""
    return Path(shutil.copytree(clean, tmp_path / "surf"))


def _lines(root: Path, split: str) -> list[str]:
    return (root / SPLITS[split]).read_text().splitlines()


def _image(root: Path, split: str, line: int, field: int = 0) -> Path:
    return root / _lines(root, split)[line - 1].split()[field]


def _found(root: Path) -> list[tuple[str, int | None, str]]:
    """(file relative to the root, line, message) of every problem."""
    return [(Path(p.file).relative_to(root).as_posix(), p.line, p.message) for p in check_data(root, progress=False)]


def test_the_clean_set_has_no_problem(clean: Path) -> None:
    assert check_data(clean, progress=False) == []


def test_a_jpeg_cut_in_half_is_reported_and_refused(root: Path) -> None:
    image = _image(root, "train", 1)
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(image)) is not None  # OpenCV decodes it, with only a warning
    relative = image.relative_to(root).as_posix()
    ((file, line, message),) = _found(root)
    assert line is None and file == relative and "truncated JPEG" in message and "train_list.txt, line 1" in message
    with pytest.raises(CasiaSurfError, match=r"truncated JPEG") as error:
        CasiaSurfDataset(root, "train", resize=52, crop=40)[0]
    assert str(image) in str(error.value)


def test_a_png_cut_short_is_reported_and_refused(root: Path) -> None:
    lines = _lines(root, "val")
    fields = lines[1].split()
    png = root / Path(fields[2]).with_suffix(".png")
    data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (32, 32), np.uint8))[1].tobytes()
    png.write_bytes(data[:-6])
    lines[1] = " ".join([*fields[:2], png.relative_to(root).as_posix(), fields[3]])
    (root / SPLITS["val"]).write_text("\n".join(lines) + "\n")
    ((file, _, message),) = _found(root)
    assert file == png.relative_to(root).as_posix() and "truncated PNG" in message and "line 2" in message
    with pytest.raises(CasiaSurfError, match="truncated PNG"):
        CasiaSurfDataset(root, "val", resize=52, crop=40)[1]


def test_zero_byte_files(root: Path) -> None:
    image = _image(root, "test", 3, field=1)
    image.write_bytes(b"")
    (root / SPLITS["val"]).write_bytes(b"")
    found = _found(root)
    assert ("val_private_list.txt", None, "empty split 'val' (no samples listed)") in found
    ((message,),) = [[m] for f, _, m in found if f == image.relative_to(root).as_posix()]
    assert message.startswith("empty file (0 bytes)") and "test_private_list.txt, line 3" in message
    assert len(found) == 2
    with pytest.raises(CasiaSurfError, match=r"empty file \(0 bytes\)"):
        CasiaSurfDataset(root, "test", resize=52, crop=40)[2]


def test_duplicated_lines(root: Path) -> None:
    lines = _lines(root, "train")
    shared_rgb = lines[4].split()[0] + " " + " ".join(lines[5].split()[1:])  # one image of line 5, others of 6
    (root / SPLITS["train"]).write_text("\n".join([*lines, lines[1], shared_rgb]) + "\n")
    found = _found(root)
    assert [(f, line) for f, line, _ in found] == [("train_list.txt", 9), ("train_list.txt", 10)]
    assert "duplicate" in found[0][2] and "already listed on line 2" in found[0][2]
    assert "already listed on line 5" in found[1][2]


def test_the_same_case_in_train_and_test_or_val(root: Path) -> None:
    train = _lines(root, "train")
    with (root / SPLITS["test"]).open("a") as handle:
        handle.write(train[2] + "\n")
    for name in ("depth", "ir"):  # new images of a val sample whose RGB image is a training sample's: one is enough
        shutil.copy(_image(root, "val", 1, field=1), root / "Val" / f"new-{name}.jpg")
    with (root / SPLITS["val"]).open("a") as handle:
        handle.write(f"{train[6].split()[0]} Val/new-depth.jpg Val/new-ir.jpg 1\n")
    found = _found(root)
    assert [(f, line) for f, line, _ in found] == [("val_private_list.txt", 5), ("test_private_list.txt", 9)]
    assert all("in two splits" in m and "'train'" in m for _, _, m in found)
    assert "train_list.txt, line 7" in found[0][2] and "train_list.txt, line 3" in found[1][2]


def test_a_list_file_that_is_not_utf8_is_named_with_its_line(root: Path) -> None:
    lines = _lines(root, "val")
    (root / SPLITS["val"]).write_bytes(("\n".join(lines[:2]) + "\n").encode() + b"caf\xe9 x y 1\n")
    found = _found(root)
    assert [(f, line) for f, line, _ in found] == [("val_private_list.txt", 3)]
    assert "not valid UTF-8" in found[0][2]
    with pytest.raises(CasiaSurfError, match=r"val_private_list\.txt: not valid UTF-8 text \(line 3"):
        read_split(root, "val")


def test_a_torn_synthetic_marker(root: Path) -> None:
    (root / "synthetic.json").write_text('{"kind": "casia_surf", "for')
    ((file, line, message),) = _found(root)
    assert file == "synthetic.json" and line is None and "torn JSON" in message


def test_any_size_and_channel_count_is_read_alike_by_checker_and_loader(root: Path) -> None:
    """The loader reads every image as 3 channels and resizes it (the authors' cv2.imread(IMREAD_COLOR) and
    cv2.resize): a grey 20 x 30 RGB image is no problem for either, so check-data reports none."""
    image = _image(root, "test", 1)
    cv2.imwrite(str(image), np.full((30, 20), 90, np.uint8))
    assert check_data(root, progress=False) == []
    assert CasiaSurfDataset(root, "test", resize=52, crop=40)[0]["rgb"].shape == (3, 40, 40)


def test_every_problem_is_reported_at_once(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truncated = _image(root, "train", 2)
    truncated.write_bytes(truncated.read_bytes()[:200])
    _image(root, "val", 1, field=2).write_bytes(b"")
    train = _lines(root, "train")
    (root / SPLITS["train"]).write_text("\n".join([*train, train[0]]) + "\n")
    with (root / SPLITS["test"]).open("a") as handle:
        handle.write(train[3] + "\n")
    found = _found(root)
    assert len(found) == 4, found
    assert main(["check-data", "casia_surf", str(root), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "train_list.txt:9: duplicate" in out and "test_private_list.txt:9: in two splits" in out
    assert "truncated JPEG" in out and "empty file (0 bytes)" in out
