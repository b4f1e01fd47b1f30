"""NYU-Depth V2 ``check-data`` is complete and the loader agrees with it (issue #23): each corruption of a small
synthetic set in the prepared layout (zero-byte and truncated PNGs, images of the wrong size or channel count,
duplicated list lines, images in both splits, list files that are not UTF-8, a torn class-weight cache or other JSON
file) is reported naming the file, every problem at once, and what the loader would refuse mid-run is refused with
the same file named."""

import json
import re
import shutil

import cv2
import numpy as np
import pytest

from mwam_harness.datasets import dataset_spec
from mwam_harness.datasets.nyuv2.class_weights import median_frequency_weights
from mwam_harness.datasets.nyuv2.layout import WEIGHTS_FILE, read_split, sample_paths
from mwam_harness.datasets.nyuv2.loader import Nyuv2Dataset, Nyuv2Error
from mwam_harness.datasets.nyuv2.synthetic import write_nyuv2
from reproduce.cli import main

SIZE = (32, 48)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_nyuv2(tmp_path_factory.mktemp("nyu") / "set", num_train=4, num_test=2, height=SIZE[0], width=SIZE[1])


@pytest.fixture
def root(synthetic, tmp_path):
    copy = tmp_path / "root"
    shutil.copytree(synthetic, copy)
    return copy


def check(path):
    return [str(p) for p in dataset_spec("nyuv2").check(path, progress=False)]


def loader(root, split="train", **options):
    return Nyuv2Dataset(root, split, height=SIZE[0], width=SIZE[1], **options)


# ---------------------------------------------------------------- images
@pytest.mark.parametrize("kind", ["rgb", "depth", "label"])
def test_a_zero_byte_png_is_reported_and_refused_by_the_loader(root, kind):
    index = read_split(root, "train")[0]
    path = sample_paths(root, "train", index)[kind]
    path.write_bytes(b"")
    assert check(root) == [f"{path}: empty file (0 bytes) ({kind} image of index {index}, train.txt, line 1)"]
    assert main(["check-data", "nyuv2", str(root), "--no-progress"]) == 1
    with pytest.raises(Nyuv2Error, match=re.escape(f"{path}: empty file (0 bytes)")):
        loader(root)[0]


def test_a_png_cut_short_is_named_as_truncated(root):
    index = read_split(root, "train")[1]
    path = sample_paths(root, "train", index)["rgb"]
    path.write_bytes(path.read_bytes()[:-12])  # only the IEND chunk lost
    problems = check(root)
    assert len(problems) == 1 and problems[0].startswith(f"{path}: truncated PNG"), problems
    with pytest.raises(Nyuv2Error, match=re.escape(f"{path}: truncated PNG")):
        loader(root)[1]


def test_an_image_of_the_wrong_size_is_reported_and_refused_before_it_reaches_a_batch(root):
    index = read_split(root, "test")[0]
    paths = sample_paths(root, "test", index)
    for kind, image in {"rgb": np.zeros((16, 24, 3), np.uint8), "depth": np.full((16, 24), 1000, np.uint16),
                        "label": np.ones((16, 24), np.uint8)}.items():  # fmt: skip
        cv2.imwrite(str(paths[kind]), image)  # one consistent sample, but not the root's size
    problems = check(root)
    assert problems == [
        f"{paths['rgb']}: image of 16 x 24, but every image of this root is 32 x 48 (synthetic.json); prepare it again"
    ]
    with pytest.raises(Nyuv2Error, match=re.escape(f"{paths['rgb']}: image of 16 x 24")):
        loader(root, "test")[0]


def test_an_image_with_the_wrong_channel_count_is_reported_and_refused(root):
    index = read_split(root, "train")[2]
    paths = sample_paths(root, "train", index)
    cv2.imwrite(str(paths["rgb"]), np.zeros((*SIZE, 4), np.uint8))  # BGRA
    cv2.imwrite(str(paths["label"]), np.ones((*SIZE, 3), np.uint8))  # a colour label image
    problems = check(root)
    assert f"{paths['rgb']}: an 8-bit 3-channel colour PNG expected, got uint8 (32, 48, 4)" in problems
    assert f"{paths['label']}: a uint8 single-channel label PNG expected, got uint8 (32, 48, 3)" in problems
    assert len(problems) == 2, problems
    with pytest.raises(Nyuv2Error, match=re.escape(str(paths["rgb"]))):
        loader(root)[2]


def test_a_root_without_a_marker_takes_its_size_from_the_first_training_image(root):
    (root / "synthetic.json").unlink()
    index = read_split(root, "test")[1]
    path = sample_paths(root, "test", index)["depth"]
    cv2.imwrite(str(path), np.full((10, 10), 1000, np.uint16))
    first = sample_paths(root, "train", read_split(root, "train")[0])["rgb"]
    assert any("depth 10 x 10" in p for p in check(root))
    for kind, image in {"rgb": np.zeros((20, 20, 3), np.uint8), "depth": np.full((20, 20), 1000, np.uint16),
                        "label": np.ones((20, 20), np.uint8)}.items():  # fmt: skip
        cv2.imwrite(str(sample_paths(root, "test", index)[kind]), image)
    assert check(root) == [
        f"{sample_paths(root, 'test', index)['rgb']}: image of 20 x 20, but every image of this root is 32 x 48 "
        f"({first}, the first training image); prepare it again"
    ]


# ---------------------------------------------------------------- split lists
def test_a_training_image_in_the_test_split_is_reported_and_refused_by_both_loaders(root):
    index = read_split(root, "train")[3]
    with (root / "test.txt").open("a") as handle:
        handle.write(index + "\n")
    assert check(root) == [f"{root / 'test.txt'}:3: index {index} is also in train.txt"]
    for split in ("train", "test"):
        with pytest.raises(ValueError, match=f"{index} \\(also in "):
            loader(root, split)


def test_a_duplicated_line_is_reported_and_refused(root):
    index = read_split(root, "train")[0]
    with (root / "train.txt").open("a") as handle:
        handle.write(index + "\n")
    assert check(root) == [f"{root / 'train.txt'}:5: index {index} is listed twice (first on line 1)"]
    with pytest.raises(ValueError, match=r"line 5: index .* is listed twice"):
        loader(root)


def test_a_list_file_that_is_not_utf8_is_named_by_check_data_and_the_loader(root):
    path = root / "test.txt"
    path.write_bytes(b"\xff\xfe" + path.read_bytes())
    problems = check(root)
    assert len(problems) == 1 and problems[0].startswith(f"{path}:1: not valid UTF-8 text"), problems
    assert "prepare nyuv2" in problems[0]
    for split in ("test", "train"):  # the train loader reads test.txt for images in both splits
        with pytest.raises(ValueError, match=re.escape(f"{path}: not valid UTF-8")):
            loader(root, split)


# ---------------------------------------------------------------- JSON files
def test_a_torn_class_weight_cache_is_named_with_how_to_rebuild_it(root):
    path = root / WEIGHTS_FILE
    path.write_text(path.read_text()[:100])
    problems = check(root)
    assert len(problems) == 1 and problems[0].startswith(f"{path}: unreadable class-weight cache, torn"), problems
    assert "delete it and it is computed again" in problems[0]
    data = loader(root)
    with pytest.raises(ValueError, match=re.escape(f"{path}: unreadable class-weight cache")) as error:
        _ = data.class_weights
    assert "appear in no image" not in str(error.value)
    # deleted, it is computed again with the synthetic set's policy (absent classes weigh 0), as the generator did
    assert json.loads((root / "synthetic.json").read_text())["kind"] == "nyuv2"
    path.unlink()
    weights = median_frequency_weights(root)
    assert weights.shape == (40,) and weights[0] > 0 and (weights == 0).any()
    assert check(root) == []


@pytest.mark.parametrize("name", ["prepare.json", "synthetic.json"])
def test_other_torn_json_files_are_named(root, name):
    path = root / name
    if name == "prepare.json":
        path.write_text('{"shape": [32, ')
    else:
        path.write_text(path.read_text()[:10])
    problems = check(root)
    assert any(p.startswith(f"{path}: unreadable or torn JSON file") for p in problems), problems
    assert len(problems) == 1, problems


def test_every_problem_is_reported_not_only_the_first(root):
    train, test = read_split(root, "train"), read_split(root, "test")
    sample_paths(root, "train", train[0])["rgb"].write_bytes(b"")
    sample_paths(root, "train", train[0])["depth"].write_bytes(b"")
    depth = sample_paths(root, "test", test[0])["depth"]
    depth.write_bytes(depth.read_bytes()[:-12])
    (root / WEIGHTS_FILE).write_text("{")
    with (root / "test.txt").open("a") as handle:
        handle.write(f"{train[1]}\n{test[1]}\n")
    problems = check(root)
    assert sum("empty file" in p for p in problems) == 2
    assert any(p.startswith(f"{depth}: truncated PNG") for p in problems)
    assert any("unreadable class-weight cache" in p for p in problems)
    assert any(f"index {train[1]} is also in train.txt" in p for p in problems)
    assert any(f"index {test[1]} is listed twice" in p for p in problems)
    assert len(problems) == 6, problems
