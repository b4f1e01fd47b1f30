"""The CASIA-SURF loader: layout, validation messages, preprocessing and reproducible augmentation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mwam_harness.datasets.casia_surf import MODALITIES, SPLITS
from mwam_harness.datasets.casia_surf.loader import (
    CasiaSurfDataset,
    CasiaSurfError,
    augment,
    augment_rng,
    read_split,
    rotate,
)
from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf


@pytest.fixture(scope="module")
def surf_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_casia_surf(tmp_path_factory.mktemp("surf") / "CASIA-SURF", 8, 4, 8, size=32, seed=3)


def _image(path: Path, value: int = 100, size: int = 40) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    cv2.imwrite(str(path), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return path.name


def _root(tmp_path: Path, train_lines: list[str], others: bool = True) -> Path:
    """A hand-made root with images a.jpg, b.jpg, c.jpg and the given train list."""
    for name in ("a", "b", "c"):
        _image(tmp_path / "img" / f"{name}.jpg", value=ord(name))
    (tmp_path / SPLITS["train"]).write_text("\n".join(train_lines) + "\n")
    if others:
        for split in ("val", "test"):
            (tmp_path / SPLITS[split]).write_text("img/a.jpg img/b.jpg img/c.jpg 1\n")
    return tmp_path


GOOD = "img/a.jpg img/b.jpg img/c.jpg 1"


# ---------------------------------------------------------------- loading synthetic data with the real loader


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_items_shapes_dtypes_range(surf_root: Path, split: str) -> None:
    ds = CasiaSurfDataset(surf_root, split)
    assert ds.train == (split == "train")
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {*MODALITIES, "label", "index"}
        for m in MODALITIES:
            x = item[m]
            assert x.shape == (3, 112, 112) and x.dtype == torch.float32
            assert x.min() >= -127.5 / 128 and x.max() <= 127.5 / 128
        assert item["label"].dtype == torch.long and item["label"].ndim == 0
        assert int(item["label"]) == ds.labels[i] and item["index"] == i


def test_labels_balanced_and_repr(surf_root: Path) -> None:
    for split in SPLITS:
        ds = CasiaSurfDataset(surf_root, split)
        assert set(ds.labels) == {0, 1} and abs(sum(ds.labels) - len(ds) / 2) <= 1
        assert str(surf_root) in repr(ds) and repr(split) in repr(ds) and f"size={len(ds)}" in repr(ds)
    assert len(CasiaSurfDataset(surf_root, "val")) == 4


def test_read_split_paths_are_absolute_and_exist(surf_root: Path) -> None:
    samples = read_split(surf_root, "train")
    assert len(samples) == 8
    for sample in samples:
        for m in MODALITIES:
            assert sample.path(m).is_absolute() and sample.path(m).is_file()
    assert "color" in samples[0].rgb.parts and "depth" in samples[0].depth.parts and "ir" in samples[0].ir.parts


def _equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[m], b[m]) for m in MODALITIES)


def test_augmentation_reproducible_per_seed_epoch_index(surf_root: Path) -> None:
    ds = CasiaSurfDataset(surf_root, "train", seed=5)
    ds.set_epoch(2)
    first = [ds[i] for i in range(len(ds))]
    other = CasiaSurfDataset(surf_root, "train", seed=5)
    other.set_epoch(2)
    for i in reversed(range(len(ds))):  # order of reading does not matter
        assert _equal(other[i], first[i])
    ds.set_epoch(3)
    assert sum(not _equal(ds[i], first[i]) for i in range(len(ds))) >= len(ds) - 1
    reseeded = CasiaSurfDataset(surf_root, "train", seed=6)
    reseeded.set_epoch(2)
    assert any(not _equal(reseeded[i], first[i]) for i in range(len(ds)))


def test_augmentation_same_in_worker_processes(surf_root: Path) -> None:
    ds = CasiaSurfDataset(surf_root, "train", seed=1)
    ds.set_epoch(4)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    batches = list(loader)
    for batch in batches:
        for j, index in enumerate(batch["index"].tolist()):
            direct = ds[index]
            assert all(torch.equal(batch[m][j], direct[m]) for m in MODALITIES)


def test_test_mode_is_deterministic_resize_and_normalise(surf_root: Path) -> None:
    ds = CasiaSurfDataset(surf_root, "test")
    ds.set_epoch(7)
    sample = read_split(surf_root, "test")[0]
    item = ds[0]
    assert _equal(item, CasiaSurfDataset(surf_root, "test", seed=99)[0])
    for m in MODALITIES:
        image = cv2.resize(cv2.imread(str(sample.path(m)), cv2.IMREAD_COLOR), (112, 112))
        expected = (torch.from_numpy(image).permute(2, 0, 1).float() - 127.5) / 128
        assert torch.equal(item[m], expected)
    train_mode_test_split = CasiaSurfDataset(surf_root, "test", train=True)
    assert not _equal(train_mode_test_split[0], item)


def test_one_geometry_for_the_three_modalities(tmp_path: Path) -> None:
    root = _root(tmp_path, ["img/a.jpg img/a.jpg img/a.jpg 0"] * 4)
    ds = CasiaSurfDataset(root, "train")
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert torch.equal(item["rgb"], item["depth"]) and torch.equal(item["rgb"], item["ir"])


def test_augment_follows_the_authors_geometry() -> None:
    image = np.full((144, 144, 3), 200, np.uint8)
    assert rotate(image, 0).shape == (115, 115, 3)  # int(0.8 * 144): the authors' 0.8-scaled canvas
    assert rotate(image, 30).shape[0] == int(144 * 0.5 * 0.8 + 144 * np.cos(np.pi / 6) * 0.8)
    assert rotate(image, 30)[0, 0, 0] == 0  # constant-0 border
    out = augment({m: image for m in MODALITIES}, augment_rng(0, 0, 0))
    assert all(x.shape == (112, 112, 3) and x.dtype == np.uint8 for x in out.values())
    angles = {int(augment_rng(0, 0, i).integers(-30, 31)) for i in range(400)}
    assert min(angles) == -30 and max(angles) == 30


def test_smaller_resize_and_crop(surf_root: Path) -> None:
    train = CasiaSurfDataset(surf_root, "train", resize=42, crop=32)
    test = CasiaSurfDataset(surf_root, "test", resize=42, crop=32)
    assert train[0]["rgb"].shape == test[0]["ir"].shape == (3, 32, 32)
    assert train.resized(0)["depth"].shape == (42, 42, 3) and test.resized(0)["depth"].shape == (32, 32, 3)
    for resize, crop in ((40, 32), (144, 4), (144.0, 112)):  # int(0.8 * 40) = 32 leaves no room to crop
        with pytest.raises(CasiaSurfError, match="crop"):
            CasiaSurfDataset(surf_root, "train", resize=resize, crop=crop)


def test_cache_keeps_decoded_images(surf_root: Path, tmp_path: Path) -> None:
    root = _root(tmp_path, [GOOD, "img/b.jpg img/c.jpg img/a.jpg 0"])
    cached = CasiaSurfDataset(root, "train", cache=True)
    plain = CasiaSurfDataset(root, "train")
    first = cached[0]
    assert _equal(first, plain[0])
    (root / "img" / "a.jpg").unlink()  # served from memory now
    assert _equal(cached[0], first)
    assert cached.resized(0)["rgb"].shape == (144, 144, 3)
    with pytest.raises(CasiaSurfError, match=r"a\.jpg: missing image"):
        cached[1]


def test_index_errors(surf_root: Path) -> None:
    ds = CasiaSurfDataset(surf_root, "val")
    assert ds[-1]["index"] == len(ds) - 1
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_blank_lines_and_crlf_are_accepted(tmp_path: Path) -> None:
    root = _root(tmp_path, ["", GOOD + "\r", "   ", "img/c.jpg img/b.jpg img/a.jpg 0"])
    samples = read_split(root, "train")
    assert [s.label for s in samples] == [1, 0]


# ---------------------------------------------------------------- bad input: clear errors naming file and line


def test_missing_list_file(tmp_path: Path) -> None:
    root = _root(tmp_path, [GOOD], others=False)
    with pytest.raises(CasiaSurfError) as error:
        read_split(root, "test")
    message = str(error.value)
    assert str(root / "test_private_list.txt") in message
    assert all(name in message for name in SPLITS.values())


def test_malformed_line(tmp_path: Path) -> None:
    root = _root(tmp_path, [GOOD, "img/a.jpg img/b.jpg 1"])
    with pytest.raises(CasiaSurfError, match=r"train_list\.txt.*\n.*line 2: expected 4 fields") as error:
        read_split(root, "train")
    assert str(root / "train_list.txt") in str(error.value)


def test_unknown_label(tmp_path: Path) -> None:
    root = _root(tmp_path, [GOOD, GOOD, "img/a.jpg img/b.jpg img/c.jpg 2"])
    with pytest.raises(CasiaSurfError, match=r"train_list\.txt.*\n.*line 3: unknown label '2'"):
        read_split(root, "train")


def test_missing_image(tmp_path: Path) -> None:
    root = _root(tmp_path, [GOOD, "img/a.jpg img/nope.jpg img/c.jpg 0"])
    with pytest.raises(CasiaSurfError) as error:
        read_split(root, "train")
    message = str(error.value)
    assert "train_list.txt" in message and "line 2" in message
    assert f"depth image {root / 'img' / 'nope.jpg'}" in message


def test_all_bad_lines_reported(tmp_path: Path) -> None:
    root = _root(tmp_path, ["x 1", GOOD, "img/a.jpg img/b.jpg img/c.jpg real", "img/q.jpg img/b.jpg img/c.jpg 1"])
    with pytest.raises(CasiaSurfError, match=r"3 bad line") as error:
        read_split(root, "train")
    assert all(f"line {n}:" in str(error.value) for n in (1, 3, 4))


def test_unreadable_image(tmp_path: Path) -> None:
    root = _root(tmp_path, [GOOD, "img/a.jpg img/b.jpg img/empty.jpg 0"])
    (root / "img" / "empty.jpg").write_bytes(b"")
    ds = CasiaSurfDataset(root, "train")
    ds[0]
    with pytest.raises(CasiaSurfError, match="unreadable or empty image") as error:
        ds[1]
    assert str(root / "img" / "empty.jpg") in str(error.value)


def test_corrupt_image(tmp_path: Path) -> None:
    root = _root(tmp_path, ["img/a.jpg img/bad.jpg img/c.jpg 1"])
    (root / "img" / "bad.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(CasiaSurfError, match=r"bad\.jpg: unreadable"):
        CasiaSurfDataset(root, "train")[0]


def test_empty_split(tmp_path: Path) -> None:
    root = _root(tmp_path, ["", "  "])
    with pytest.raises(CasiaSurfError, match=r"train_list\.txt: empty split 'train'"):
        CasiaSurfDataset(root, "train")


def test_unknown_split_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(CasiaSurfError, match="unknown CASIA-SURF split 'dev'"):
        read_split(tmp_path, "dev")
    with pytest.raises(CasiaSurfError, match="is not a directory"):
        read_split(tmp_path / "absent", "train")
