"""NYU-Depth V2 data: prepare from a small v7.3-like download (transposes, millimetres, the 894 -> 40 map, splits,
idempotence, atomicity, every bad input), median-frequency class weights, the loader and the authors'
augmentation, check-data, the synthetic indoor scenes and the CLI."""

import json
import pickle
import shutil
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest
import torch
from scipy.io import savemat

from mwam_harness.datasets import dataset_spec
from mwam_harness.datasets.nyuv2 import CLASS_NAMES, DEPTH_MEAN, DEPTH_STD, PRESETS, SPLIT_SIZES
from mwam_harness.datasets.nyuv2.class_weights import median_frequency, median_frequency_weights
from mwam_harness.datasets.nyuv2.layout import ESANET_WEIGHTS_FILE, WEIGHTS_FILE, read_split, sample_paths
from mwam_harness.datasets.nyuv2.loader import Nyuv2Dataset
from mwam_harness.datasets.nyuv2.prepare import PrepareError, prepare_nyuv2
from mwam_harness.datasets.nyuv2.synthetic import CABINET, DOOR, PICTURE, WALL, WINDOW, render_scene, write_nyuv2
from mwam_harness.datasets.nyuv2.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TrainingAugmentation,
    draw_hsv,
    hsv_jitter,
    random_crop,
    random_flip,
    random_rescale,
)
from reproduce.cli import main

N, W, H = 6, 24, 16  # the test download: 6 images of 16 x 24 (height x width)
TRAIN, TEST = [1, 3, 4, 6], [2, 5]
SIZE = (48, 64)  # the synthetic set's images


def nyu_mapping() -> np.ndarray:
    """A stand-in for classMapping40.mat's mapClass: NYU class c (1-894) -> (c - 1) % 40 + 1."""
    return (np.arange(894) % 40 + 1).astype(np.uint8)


def write_download(folder, labels_override=None):
    """A labelled .mat laid out as MATLAB v7.3 stores it (h5py sees (N, 3, W, H) / (N, W, H)), splits.mat and
    classMapping40.mat; returns the arrays as (H, W) images."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 9.5, size=(N, H, W)).astype(np.float32)
    depth[0, 0, 0] = np.float32(1.2345)  # -> 1234 mm: truncated, as ESANet's astype('uint16')
    labels = rng.integers(0, 895, size=(N, H, W)).astype(np.uint16)
    labels[0].flat[:41] = np.arange(41)  # every 40-class label occurs in the first training image
    if labels_override is not None:
        labels_override(labels, depth)
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "nyu_depth_v2_labeled.mat", "w") as mat:
        mat.create_dataset("images", data=rgb.transpose(0, 3, 2, 1))  # (N, H, W, 3) -> (N, 3, W, H)
        mat.create_dataset("depths", data=depth.transpose(0, 2, 1))
        mat.create_dataset("labels", data=labels.transpose(0, 2, 1))
    savemat(folder / "splits.mat", {"trainNdxs": np.array(TRAIN, np.uint16)[:, None],
                                    "testNdxs": np.array(TEST, np.uint16)[:, None]})  # fmt: skip
    savemat(folder / "classMapping40.mat", {"mapClass": nyu_mapping()[None]})
    return rgb, depth, labels


@pytest.fixture(scope="module")
def download(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nyu") / "download"
    return folder, write_download(folder)


@pytest.fixture(scope="module")
def prepared(download, tmp_path_factory):
    return prepare_nyuv2(download[0], tmp_path_factory.mktemp("nyu") / "prepared", progress=False)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_nyuv2(tmp_path_factory.mktemp("nyu") / "synthetic", num_train=8, num_test=4, height=48, width=64)


def png(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def pngs(root):
    return sorted(p for p in root.rglob("*.png"))


# ---------------------------------------------------------------- prepare
def test_prepare_writes_esanet_layout_transposed_in_millimetres_with_the_40_classes(download, prepared):
    _, (rgb, depth, labels) = download
    assert read_split(prepared, "train") == [f"{n:04d}" for n in TRAIN]
    assert (prepared / "test.txt").read_text() == "0002\n0005\n"
    mapping = np.concatenate([[0], nyu_mapping()])
    for split, numbers in (("train", TRAIN), ("test", TEST)):
        for n in numbers:
            paths = sample_paths(prepared, split, f"{n:04d}")
            stored_rgb, stored_depth, stored_label = (png(paths[k]) for k in ("rgb", "depth", "label"))
            assert stored_rgb.shape == (H, W, 3) and stored_depth.dtype == np.uint16 and stored_label.dtype == np.uint8
            np.testing.assert_array_equal(stored_rgb, rgb[n - 1][..., ::-1])  # the PNG holds BGR
            np.testing.assert_array_equal(stored_depth, (depth[n - 1] * 1e3).astype(np.uint16))
            np.testing.assert_array_equal(stored_label, mapping[labels[n - 1]])
    assert png(sample_paths(prepared, "train", "0001")["depth"])[0, 0] == 1234
    assert (prepared / "class_names_1+40.txt").read_text().splitlines() == list(CLASS_NAMES)
    assert len(CLASS_NAMES) == 41 and CLASS_NAMES[22] == "ceiling"


def test_class_weights_are_esanets_median_frequency(prepared):
    pixels, image_pixels = np.zeros(41), np.zeros(41)
    for index in read_split(prepared, "train"):
        label = png(sample_paths(prepared, "train", index)["label"])
        for c in range(41):
            pixels[c] += (label == c).sum()
            image_pixels[c] += label.size if (label == c).any() else 0
    frequency = pixels[1:] / image_pixels[1:]
    expected = np.median(frequency) / frequency
    weights = median_frequency_weights(prepared)
    assert weights.shape == (40,) and weights.dtype == np.float64
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    with (prepared / ESANET_WEIGHTS_FILE).open("rb") as handle:
        np.testing.assert_allclose(pickle.load(handle), expected, rtol=1e-12)
    record = json.loads((prepared / WEIGHTS_FILE).read_text())
    assert record["absent"] == [] and record["images"] == 4 and record["pixels"] == pixels.astype(int).tolist()
    # a class in no image: 0 / 0 -- ESANet raises; "zero" takes the median of the present ones and gives it 0
    pixels[5] = image_pixels[5] = 0
    with pytest.raises(ValueError, match=r"classes \[5\] appear in no image"):
        median_frequency(pixels, image_pixels)
    zero, absent = median_frequency(pixels, image_pixels, absent="zero")
    present = np.delete(frequency, 4)
    assert absent == [5] and zero[4] == 0
    np.testing.assert_allclose(np.delete(zero, 4), np.median(present) / present, rtol=1e-12)


def test_prepare_is_idempotent_and_redoes_only_what_is_missing(download, tmp_path):
    out = prepare_nyuv2(download[0], tmp_path / "out", progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in pngs(out)}
    weights = (out / WEIGHTS_FILE).stat().st_mtime_ns
    assert len(stamps) == 3 * N
    prepare_nyuv2(download[0], out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in pngs(out)} == stamps, "nothing is rewritten"
    assert (out / WEIGHTS_FILE).stat().st_mtime_ns == weights
    lost = sample_paths(out, "test", "0005")["depth"]
    lost.unlink()
    prepare_nyuv2(download[0], out, progress=False)
    changed = [p for p in pngs(out) if p.stat().st_mtime_ns != stamps.get(p)]
    assert sorted(changed) == sorted(sample_paths(out, "test", "0005").values()), "only the incomplete image"
    assert not list(out.rglob("*.tmp*"))


def test_bad_images_are_all_reported_and_leave_no_partial_files(tmp_path, monkeypatch):
    def spoil(labels, depth):
        labels[3, 2, 2] = 900  # image 4 (train): an NYU class that does not exist
        depth[4, 1, 1] = np.nan  # image 5 (test)

    source = tmp_path / "download"
    write_download(source, spoil)
    out = tmp_path / "out"
    with pytest.raises(PrepareError) as error:
        prepare_nyuv2(source, out, progress=False)
    text = str(error.value)
    assert "2 of 6 images" in text and "train 0004 (image 4 of nyu_depth_v2_labeled.mat)" in text
    assert "labels outside 0-894: [900]" in text and "test 0005" in text and "1 non-finite depth values" in text
    for split, index in (("train", "0004"), ("test", "0005")):
        assert not any(p.exists() for p in sample_paths(out, split, index).values())
    assert all(p.is_file() for p in sample_paths(out, "train", "0003").values())
    assert not (out / "train.txt").exists() and not (out / WEIGHTS_FILE).exists(), "no lists for an incomplete set"
    assert not list(out.rglob("*.tmp*"))
    # a write that fails half-way through an image (its depth PNG) leaves none of its three files
    good = tmp_path / "good"
    write_download(good)
    real_imwrite = cv2.imwrite
    failing = sample_paths(tmp_path / "out2", "train", "0003")["depth"]

    def imwrite(name, image):
        return False if failing.name in name and "/depth/" in name else real_imwrite(name, image)

    monkeypatch.setattr(cv2, "imwrite", imwrite)
    with pytest.raises(PrepareError, match=r"(?s)1 of 6 images .*train 0003 .*cv2.imwrite failed"):
        prepare_nyuv2(good, tmp_path / "out2", progress=False)
    assert not any(p.exists() for p in sample_paths(tmp_path / "out2", "train", "0003").values())
    assert not list((tmp_path / "out2").rglob("*.tmp*"))
    monkeypatch.setattr(cv2, "imwrite", real_imwrite)
    before = {p: p.stat().st_mtime_ns for p in pngs(tmp_path / "out2")}
    prepare_nyuv2(good, tmp_path / "out2", progress=False)
    after = pngs(tmp_path / "out2")
    assert len(after) == 3 * N and [p for p in after if before.get(p) != p.stat().st_mtime_ns] == sorted(
        sample_paths(tmp_path / "out2", "train", "0003").values()
    )


def test_a_bad_download_is_reported_whole_and_check_data_sees_the_same(download, tmp_path):
    source = tmp_path / "download"
    shutil.copytree(download[0], source)
    (source / "classMapping40.mat").unlink()
    savemat(source / "splits.mat", {"trainNdxs": np.array([[1], [7]]), "testNdxs": np.array([[2]])})
    with pytest.raises(PrepareError) as error:
        prepare_nyuv2(source, tmp_path / "out", progress=False)
    text = str(error.value)
    assert "classMapping40.mat: missing (NYU's 894 -> 40 class map: ESANet's src/datasets/nyuv2/" in text
    assert "splits.mat: trainNdxs names images outside 1-6 (1-based): [7]" in text
    problems = [str(p) for p in dataset_spec("nyuv2").check(source, progress=False)]
    assert len(problems) == 2 and any("classMapping40.mat: missing" in p for p in problems)
    assert dataset_spec("nyuv2").check(download[0], progress=False) == []
    with pytest.raises(PrepareError, match="neither an NYU-Depth V2 download"):
        prepare_nyuv2(tmp_path / "nothing", tmp_path / "out", progress=False)


def test_an_esanet_prepared_folder_is_linked_and_split_lists_can_replace_splits_mat(download, prepared, tmp_path):
    linked = prepare_nyuv2(prepared, tmp_path / "linked", progress=False)
    rgb = sample_paths(linked, "train", "0003")["rgb"]
    assert rgb.is_symlink() and rgb.resolve() == sample_paths(prepared, "train", "0003")["rgb"].resolve()
    assert read_split(linked, "test") == read_split(prepared, "test")
    np.testing.assert_array_equal(median_frequency_weights(linked), median_frequency_weights(prepared))
    (tmp_path / "train.txt").write_text("1\n2\n3\n")
    (tmp_path / "test.txt").write_text("4\n5\n6\n")
    split = [tmp_path / "train.txt", tmp_path / "test.txt"]
    other = prepare_nyuv2(download[0], tmp_path / "other", split_files=split, progress=False)
    assert read_split(other, "train") == ["0001", "0002", "0003"] and read_split(other, "test") == [
        "0004",
        "0005",
        "0006",
    ]
    (tmp_path / "test.txt").write_text("3\n")
    with pytest.raises(PrepareError, match=r"images in both the train and the test split: \[3\]"):
        prepare_nyuv2(download[0], tmp_path / "bad", split_files=split, progress=False)


# ---------------------------------------------------------------- loader and augmentation
def test_evaluation_samples_are_normalised_resized_images_and_the_full_size_label(synthetic):
    data = Nyuv2Dataset(synthetic, "test", height=SIZE[0], width=SIZE[1])
    sample = data[1]
    assert set(sample) == {"rgb", "depth", "label", "index", "name"} and sample["name"] == data.indices[1]
    paths = sample_paths(synthetic, "test", data.indices[1])
    rgb = cv2.cvtColor(png(paths["rgb"]), cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1) / 255
    expected = (rgb - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
    assert sample["rgb"].dtype == torch.float32 and sample["rgb"].shape == (3, *SIZE)
    np.testing.assert_allclose(sample["rgb"].numpy(), expected, rtol=1e-6, atol=1e-6)
    depth = (png(paths["depth"]).astype(np.float32) - DEPTH_MEAN) / DEPTH_STD
    np.testing.assert_allclose(sample["depth"].numpy(), depth[None], rtol=1e-6, atol=1e-6)
    assert sample["label"].dtype == torch.int64 and torch.equal(
        sample["label"], torch.from_numpy(png(paths["label"])).long()
    )
    small = Nyuv2Dataset(synthetic, "test", height=32, width=40)[1]
    assert small["rgb"].shape == (3, 32, 40) and small["depth"].shape == (1, 32, 40) and small["label"].shape == SIZE
    stored_depth = set(np.unique(png(paths["depth"])).tolist())
    assert set(np.unique(small["depth"].numpy() * DEPTH_STD + DEPTH_MEAN).round().astype(int).tolist()) <= stored_depth
    assert data.class_weights.shape == (40,) and data.class_weights[WALL - 1] > 0


def test_training_samples_depend_only_on_seed_epoch_and_index(synthetic):
    data = Nyuv2Dataset(synthetic, "train", seed=0, height=40, width=56)
    first = data[2]
    assert (
        first["rgb"].shape == (3, 40, 56) and first["depth"].shape == (1, 40, 56) and first["label"].shape == (40, 56)
    )
    again = Nyuv2Dataset(synthetic, "train", seed=0, height=40, width=56)[2]
    assert all(torch.equal(first[k], again[k]) for k in ("rgb", "depth", "label"))
    data.set_epoch(1)
    assert not torch.equal(data[2]["rgb"], first["rgb"])
    assert not torch.equal(Nyuv2Dataset(synthetic, "train", seed=1, height=40, width=56)[2]["rgb"], first["rgb"])
    assert int(first["label"].max()) <= 40 and Nyuv2Dataset(synthetic, "train", train=False)[0]["label"].shape == SIZE
    with pytest.raises(ValueError, match="hsv must be one of"):
        Nyuv2Dataset(synthetic, "train", hsv="hls")


def test_rescale_crop_and_flip_move_rgb_depth_and_label_together():
    label = np.repeat(np.repeat(np.arange(12, dtype=np.uint8).reshape(3, 4), 10, 0), 10, 1)  # 30 x 40 blocks
    depth = (label.astype(np.uint16) + 1) * 100
    rgb = np.repeat((label * 20)[..., None], 3, axis=2).astype(np.uint8)  # grey: HSV jitter keeps it grey
    for seed in range(6):
        rng = np.random.default_rng(seed)
        r, d, lab = random_rescale((rgb, depth, label), rng)
        assert r.shape[:2] == d.shape == lab.shape and 30 <= lab.shape[0] <= 42
        assert set(np.unique(d)) <= set(np.unique(depth)) and set(np.unique(lab)) <= set(np.unique(label))
        np.testing.assert_array_equal(d, (lab.astype(np.uint16) + 1) * 100)  # nearest for both
        for augmentation in (TrainingAugmentation(24, 32, scale=(1.0, 1.0), hsv=hsv) for hsv in ("mmanet", "esanet")):
            r, d, lab = augmentation(rgb, depth, label, np.random.default_rng(seed))
            assert r.shape == (24, 32, 3) and d.shape == lab.shape == (24, 32)
            np.testing.assert_array_equal(d, (lab.astype(np.uint16) + 1) * 100)
            grey = r[..., 0]
            for value in np.unique(lab):  # one grey level per label block, increasing with the label
                assert np.ptp(grey[lab == value]) < 1e-3
            means = [grey[lab == v].mean() for v in np.unique(lab)]
            assert means == sorted(means)
    flipped = random_flip((rgb, depth, label), np.random.default_rng(1))  # first draw 0.51 > 0.5: flipped
    assert all(np.array_equal(a, b[:, ::-1]) for a, b in zip(flipped, (rgb, depth, label), strict=True))
    small = random_crop((rgb, depth, label), np.random.default_rng(0), 30, 50)  # not larger: resized instead
    assert small[0].shape[:2] == (30, 50) and set(np.unique(small[2])) <= set(np.unique(label))


def test_hsv_jitter_is_mmanets_or_esanets_random_hsv():
    import matplotlib.colors

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    factors = (1.07, 0.93, 1.05)
    # ESANet: H, S, V x factors on rgb / 255, clipped to [0, 1], back, x 255 truncated to uint8
    hsv = matplotlib.colors.rgb_to_hsv(rgb.astype(np.float32) / 255.0)
    hsv = np.stack([np.clip(hsv[..., k] * factors[k], 0, 1) for k in range(3)], axis=2)
    esanet = (matplotlib.colors.hsv_to_rgb(hsv) * 255).astype(np.uint8)
    ours = hsv_jitter(rgb, factors, "esanet")
    assert ours.dtype == np.uint8 and np.abs(ours.astype(int) - esanet).max() <= 1 and (ours != esanet).mean() < 0.01
    # MMANet: HSV of the 0-255 image (V in 0-255), H, S x factor, V + shift clipped to [0, 255], float, unrounded
    shift = -17.5
    hsv = matplotlib.colors.rgb_to_hsv(rgb.astype(np.float32) / 255.0)
    hsv[..., 2] *= 255
    hsv = np.stack([np.clip(hsv[..., 0] * 1.07, 0, 1), np.clip(hsv[..., 1] * 0.93, 0, 1),
                    np.clip(hsv[..., 2] + shift, 0, 255)], axis=2)  # fmt: skip
    mmanet = matplotlib.colors.hsv_to_rgb(hsv / [1, 1, 255]) * 255
    ours = hsv_jitter(rgb, (1.07, 0.93, shift), "mmanet")
    assert ours.dtype == np.float32 and np.abs(ours - mmanet).max() < 2e-3
    draws = np.array([draw_hsv(np.random.default_rng(s), "mmanet") for s in range(200)])
    assert (
        draws[:, :2].min() >= 0.9
        and draws[:, :2].max() <= 1.1
        and -25 <= draws[:, 2].min() < -20 < 20 < draws[:, 2].max() <= 25
    )
    assert 0.9 <= min(draw_hsv(np.random.default_rng(s), "esanet")[2] for s in range(50))


# ---------------------------------------------------------------- check-data
def test_check_data_names_the_file_of_every_bad_input(synthetic, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(synthetic, root)
    spec = dataset_spec("nyuv2")
    assert spec.check(root, progress=False) == []
    train, test = read_split(root, "train"), read_split(root, "test")
    paths = {i: sample_paths(root, "train", i) for i in train} | {i: sample_paths(root, "test", i) for i in test}
    paths[train[0]]["depth"].unlink()  # RGB without depth
    paths[train[1]]["label"].unlink()  # ... or without label
    cv2.imwrite(str(paths[train[2]]["depth"]), np.full((10, 10), 1000, np.uint16))  # another size
    cv2.imwrite(str(paths[train[3]]["depth"]), np.full(SIZE, 100, np.uint8))  # not uint16
    cv2.imwrite(str(paths[test[0]]["label"]), np.full(SIZE, 41, np.uint8))  # outside 0-40
    paths[test[1]]["rgb"].write_bytes(b"not a png")
    with (root / "test.txt").open("a") as handle:
        handle.write(f"9999\n{test[2]}\n{train[4]}\n12a\n")
    problems = [str(p) for p in spec.check(root, progress=False)]
    expected = [
        f"train/depth/{train[0]}.png: missing depth image of index {train[0]} (train.txt, line 1)",
        f"train/labels_40/{train[1]}.png: missing label image of index {train[1]} (train.txt, line 2)",
        f"train/rgb/{train[2]}.png: sizes differ within index {train[2]}: rgb 48 x 64, depth 10 x 10, label 48 x 64",
        f"train/depth/{train[3]}.png: a uint16 single-channel depth PNG (mm) expected, got uint8 (48, 64)",
        f"test/labels_40/{test[0]}.png: labels outside 0-40: [41]",
        f"test/rgb/{test[1]}.png: unreadable rgb image",
        "test/rgb/9999.png: missing rgb image of index 9999 (test.txt, line 5)",
        f"test.txt:6: index {test[2]} is listed twice (first on line 3)",
        f"test.txt:7: index {train[4]} is also in train.txt",
        "test.txt:8: '12a' is not a four-digit image index",
    ]
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    assert len(problems) == len(expected) + 2, problems  # 9999 misses its depth and label too
    (root / WEIGHTS_FILE).write_text("{}")
    assert any("unreadable class-weight cache" in str(p) for p in spec.check(root, progress=False))


# ---------------------------------------------------------------- synthetic set, registry, CLI
def test_synthetic_scenes_make_both_modalities_informative_and_differently():
    stats = {c: {"colour": [], "behind_wall": []} for c in (DOOR, CABINET, WINDOW, PICTURE)}
    for n in range(40):
        rgb, depth, label = render_scene(np.random.default_rng([7, n]), *SIZE)
        wall = np.percentile(depth[label == WALL], 95)  # the back wall: the farthest wall pixels
        for c, values in stats.items():
            mask = label == c
            if mask.sum() > 20:
                values["colour"].append(rgb[mask].mean(0))
                values["behind_wall"].append(wall - np.median(depth[mask]))
    assert all(len(v["colour"]) >= 8 for v in stats.values())
    colour = {c: np.array(v["colour"]) for c, v in stats.items()}
    behind = {c: np.array(v["behind_wall"]) for c, v in stats.items()}
    # door vs cabinet: the same colours, told apart by depth only (flush vs 0.35-0.8 m in front of the wall)
    spread = np.concatenate([colour[DOOR], colour[CABINET]]).std(0)
    assert np.all(np.abs(colour[DOOR].mean(0) - colour[CABINET].mean(0)) < 0.5 * spread)
    assert np.abs(behind[DOOR]).max() < 80 and behind[CABINET].min() > 300
    # window vs picture: both flush with the wall, told apart by colour only
    assert np.abs(behind[WINDOW]).max() < 80 and np.abs(behind[PICTURE]).max() < 80
    assert colour[WINDOW].mean(0).min() > 150 and np.linalg.norm(colour[WINDOW].mean(0) - colour[PICTURE].mean(0)) > 60


def test_synthetic_set_is_the_prepared_layout_reused_or_replaced_whole(synthetic, tmp_path):
    spec = dataset_spec("nyuv2")
    assert spec.is_synthetic(synthetic) and spec.listed_samples(synthetic, "train") == 8
    assert sorted(map(int, read_split(synthetic, "train") + read_split(synthetic, "test"))) == list(range(1, 13))
    assert json.loads((synthetic / WEIGHTS_FILE).read_text())["absent_policy"] == "zero"
    stamp = (synthetic / "train.txt").stat().st_mtime_ns
    write_nyuv2(synthetic, num_train=8, num_test=4, height=48, width=64)
    assert (synthetic / "train.txt").stat().st_mtime_ns == stamp
    other = write_nyuv2(tmp_path / "set", num_train=3, num_test=2, height=32, width=32)
    write_nyuv2(other, num_train=2, num_test=2, height=32, width=32, seed=1)
    assert len(pngs(other)) == 12 and png(sample_paths(other, "train", read_split(other, "train")[0])["rgb"]).shape == (
        32,
        32,
        3,
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a data set")
    with pytest.raises(FileExistsError, match="not a synthetic data set"):
        write_nyuv2(tmp_path / "mine")


def test_nyuv2_is_registered_torch_free_with_the_papers_settings():
    code = (
        "import sys; from mwam_harness.datasets import dataset_spec; s = dataset_spec('nyuv2');"
        "print(s.modalities, s.task, s.num_classes, s.metric, sorted(s.presets), s.preparer is not None,"
        " any(m in sys.modules for m in ('torch', 'cv2', 'h5py', 'numpy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "('rgb', 'depth') segmentation2d 40 miou ['demo', 'paper', 'smoke'] True False"
    from reproduce.runs.config import OptimConfig, ScheduleConfig, TrainConfig

    run = PRESETS["paper"].run
    assert TrainConfig(**run["train"]).amp == "fp16" and OptimConfig(**run["optim"]).nesterov
    schedule = ScheduleConfig(**run["schedule"])
    assert (schedule.name, schedule.interval, schedule.pct_start, schedule.div_factor) == ("onecycle", "epoch", 0.1, 25)
    assert SPLIT_SIZES == {"train": 795, "test": 654}
    # no validation split: the test split is monitored (every 10 epochs), never a selection split
    assert PRESETS["paper"].runtime == {"val_split": "test", "val_subsets": "all", "val_every": 10}
    assert PRESETS["paper"].run["eval"]["select"] == "epoch:298"
    assert PRESETS["smoke"].run["optim"]["lr"] == 0.01 * 4 / 8, "the authors' lr * batch / 8"
    for name in ("smoke", "demo"):
        options = PRESETS[name].run["data"]["options"]
        assert options["height"] % 32 == 0 and options["width"] % 32 == 0, "ESANet downsamples 32-fold"
        assert (options["height"], options["width"]) == (
            PRESETS[name].generator["height"],
            PRESETS[name].generator["width"],
        )


def test_prepare_and_check_data_commands(download, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["prepare", "nyuv2", str(download[0]), str(out), "--no-progress", "--workers", "2"]) == 0
    assert "NYU-Depth V2 prepared at" in capsys.readouterr().out and (out / WEIGHTS_FILE).is_file()
    assert main(["check-data", "nyuv2", str(out), "--no-progress"]) == 0
    assert "train 4, test 2 samples" in capsys.readouterr().out
    assert main(["check-data", "nyuv2", str(download[0]), "--no-progress"]) == 0
    sample_paths(out, "test", "0002")["label"].unlink()
    assert main(["check-data", "nyuv2", str(out), "--no-progress"]) == 1
    assert "missing label image of index 0002" in capsys.readouterr().out
    assert main(["prepare", "nyuv2", str(tmp_path / "nowhere"), str(tmp_path / "o"), "--no-progress"]) == 1
    assert "neither an NYU-Depth V2 download" in capsys.readouterr().err
