"""BraTS2020 ``check-data`` is complete and the loader agrees with it (issue #23): each corruption of a small
synthetic set in the real layouts (zero-byte and truncated files, NaN / +-Inf voxels, wrong shapes, duplicated list
lines, cases in two splits, list files that are not UTF-8, torn JSON files) is reported naming the file, every
problem at once, and what the loader or ``prepare`` would refuse mid-run is refused first with the same file named."""

import shutil
import warnings

import nibabel as nib
import numpy as np
import pytest

from mwam_harness.datasets import dataset_spec
from mwam_harness.datasets.brats2020.layout import label_path, raw_files, read_split, volume_path
from mwam_harness.datasets.brats2020.loader import Brats2020Dataset
from mwam_harness.datasets.brats2020.prepare import PrepareError, prepare_brats2020
from mwam_harness.datasets.brats2020.synthetic import write_brats2020
from reproduce.cli import main

SHAPE = (24, 24, 16)
SPLIT = (3, 1, 1)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_brats2020(tmp_path_factory.mktemp("brats") / "set", num_cases=5, shape=SHAPE, split=SPLIT)


@pytest.fixture
def root(synthetic, tmp_path):
    """A writable copy of the prepared root (without the raw folder)."""
    copy = tmp_path / "root"
    shutil.copytree(synthetic, copy, ignore=shutil.ignore_patterns("raw"))
    return copy


@pytest.fixture
def raw(synthetic, tmp_path):
    """A writable copy of the raw NIfTI folder and its first subject."""
    copy = tmp_path / "raw"
    shutil.copytree(synthetic / "raw", copy)
    subject = sorted(d.name for d in (copy / "MICCAI_BraTS2020_TrainingData").iterdir())[0]
    return copy, subject


def check(path):
    return [str(p) for p in dataset_spec("brats2020").check(path, progress=False)]


def has(problems, *parts):
    return any(all(part in p for part in parts) for p in problems)


# ---------------------------------------------------------------- files of a prepared root
@pytest.mark.parametrize("kind", ["vol", "seg"])
def test_a_zero_byte_npy_is_reported_and_refused_by_the_loader(root, kind):
    case = read_split(root, "train")[0]
    path = volume_path(root, case) if kind == "vol" else label_path(root, case)
    path.write_bytes(b"")
    problems = check(root)
    assert problems == [f"{path}: empty file (0 bytes): the file of case {case} was never written or was truncated"]
    assert main(["check-data", "brats2020", str(root), "--no-progress"]) == 1
    with pytest.raises(ValueError, match=f"{path}: empty file"):
        Brats2020Dataset(root, "train")


def test_a_truncated_npy_is_reported_and_refused_by_the_loader(root):
    case = read_split(root, "train")[1]
    path = volume_path(root, case)
    path.write_bytes(path.read_bytes()[:200])
    assert has(check(root), str(path), f"unreadable .npy file of case {case}")
    with pytest.raises(ValueError, match=r"unreadable \.npy"):
        Brats2020Dataset(root, "train")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_of_a_prepared_volume_are_reported_and_refused_when_read(root, value):
    case = read_split(root, "test")[0]
    path = volume_path(root, case)
    volume = np.load(path)
    volume[3, 4, 5, 2] = value
    np.save(path, volume)
    counts = {"nan": "1 NaN voxels", "inf": "1 +Inf voxels", "-inf": "1 -Inf voxels"}[str(value)]
    assert has(check(root), str(path), counts, "non-finite intensities")
    data = Brats2020Dataset(root, "test")
    with pytest.raises(ValueError, match="non-finite intensities"):
        data[0]


def test_wrong_channel_count_and_shapes_are_reported_and_refused_before_any_sample(root):
    train = read_split(root, "train")
    three = volume_path(root, train[0])
    np.save(three, np.load(three)[..., :3])  # three modalities
    labels = label_path(root, train[1])
    np.save(labels, np.load(labels)[:-2])  # labels that do not fit the volume
    smaller = volume_path(root, train[2])  # consistent with its labels, but not what prepare recorded
    np.save(smaller, np.load(smaller)[:20])
    np.save(label_path(root, train[2]), np.load(label_path(root, train[2]))[:20])
    problems = check(root)
    assert has(problems, str(three), "expected (H, W, D, 4)")
    assert has(problems, str(labels), "differs from the volume's")
    assert has(problems, str(smaller), "(20, 24, 16) differs from the (24, 24, 16) fingerprint.json records")
    assert len(problems) == 3, problems
    with pytest.raises(ValueError, match="2 problem") as error:
        Brats2020Dataset(root, "train", crop=8)  # refused when built: no sample is read
    assert str(three) in str(error.value) and str(volume_path(root, train[1])) in str(error.value)


def test_a_volume_smaller_than_the_training_crop_is_refused_when_the_loader_is_built(root):
    with pytest.raises(ValueError, match=r"volume \(24, 24, 16\) is smaller than the 20\^3 crop"):
        Brats2020Dataset(root, "train", crop=20)
    assert len(Brats2020Dataset(root, "test", train=False, crop=20)) == 1  # evaluation reads whole volumes


def test_labels_outside_0_3_are_refused_when_read(root):
    case = read_split(root, "val")[0]
    np.save(label_path(root, case), np.full(SHAPE, 4, np.uint8))
    assert has(check(root), str(label_path(root, case)), "labels outside 0-3: [4]")
    with pytest.raises(ValueError, match="labels outside 0-3"):
        Brats2020Dataset(root, "val", train=False)[0]


# ---------------------------------------------------------------- split lists
def test_a_training_case_in_the_test_split_is_reported_and_refused_by_both_loaders(root):
    case = read_split(root, "train")[0]
    with (root / "test.txt").open("a") as handle:
        handle.write(case + "\n")
    assert check(root) == [
        f"{root / 'test.txt'}:2: case {case} is also in train.txt (line 1): a case belongs to one split only"
    ]
    for split in ("train", "test"):
        with pytest.raises(ValueError, match=f"{case} \\(also in "):
            Brats2020Dataset(root, split)


def test_a_duplicated_line_is_reported_and_refused(root):
    case = read_split(root, "train")[1]
    with (root / "train.txt").open("a") as handle:
        handle.write(case + "\n")
    assert check(root) == [f"{root / 'train.txt'}:4: case {case} is listed twice (first on line 2)"]
    with pytest.raises(ValueError, match=r"train.txt: 1 bad line\(s\):\n  line 4: case .* is listed twice"):
        Brats2020Dataset(root, "train")


def test_a_list_file_that_is_not_utf8_is_named_by_check_data_and_the_loader(root):
    path = root / "val.txt"
    path.write_bytes(path.read_bytes() + b"HG_BraTS20_Training_\xff\xfe\n")
    problems = check(root)
    assert len(problems) == 1 and problems[0].startswith(f"{path}:2: not valid UTF-8 text"), problems
    assert "prepare brats2020" in problems[0]
    with pytest.raises(ValueError, match=r"val\.txt: not valid UTF-8"):
        Brats2020Dataset(root, "val")
    with pytest.raises(ValueError, match=r"val\.txt: not valid UTF-8"):
        Brats2020Dataset(root, "train")  # the other lists are read for cases in two splits


def test_every_problem_is_reported_not_only_the_first(root):
    train, test = read_split(root, "train"), read_split(root, "test")
    volume_path(root, train[0]).write_bytes(b"")
    label_path(root, train[0]).write_bytes(b"")
    volume = np.load(volume_path(root, test[0]))
    volume[0, 0, 0, 0] = np.nan
    np.save(volume_path(root, test[0]), volume)
    np.save(label_path(root, test[0]), np.full(SHAPE, 9, np.uint8))
    (root / "val.txt").write_text(f"{train[1]}\n{train[1]}\n")
    problems = check(root)
    assert has(problems, str(volume_path(root, train[0])), "empty file")
    assert has(problems, str(label_path(root, train[0])), "empty file")
    assert has(problems, str(volume_path(root, test[0])), "1 NaN voxels")
    assert has(problems, str(label_path(root, test[0])), "labels outside 0-3: [9]")
    assert has(problems, "val.txt:1", f"case {train[1]} is also in train.txt")
    assert has(problems, "val.txt:2", "listed twice")
    assert len(problems) == 6, problems


# ---------------------------------------------------------------- JSON files
@pytest.mark.parametrize("name", ["prepare.json", "fingerprint.json", "synthetic.json"])
def test_a_torn_json_file_is_named_with_how_to_write_it_again(root, name):
    path = root / name
    path.write_text(path.read_text()[:15])
    problems = check(root)
    assert len(problems) == 1 and problems[0].startswith(f"{path}: unreadable or torn JSON file"), problems
    assert "prepare brats2020" in problems[0] or "generated again" in problems[0]


def test_prepare_sets_a_torn_manifest_aside_with_a_warning_and_prepares_again(raw, tmp_path):
    source, _ = raw
    out = prepare_brats2020(source, tmp_path / "out", split_sizes=SPLIT, progress=False)
    (out / "prepare.json").write_text('{"subjects": {"BraTS')
    with pytest.warns(UserWarning, match="prepare.json: unreadable or torn"):
        prepare_brats2020(source, out, split_sizes=SPLIT, progress=False)
    assert check(out) == []


# ---------------------------------------------------------------- the raw NIfTI folder and prepare
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_nifti_voxels_are_reported_and_prepare_names_the_file(raw, tmp_path, value):
    source, subject = raw
    path = raw_files(source, subject)["t1ce"]
    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj).astype(np.float32)
    data[10, 10, 8] = value  # inside the brain
    nib.save(nib.Nifti1Image(data, image.affine), str(path))
    counts = {"nan": "1 NaN voxels", "inf": "1 +Inf voxels", "-inf": "1 -Inf voxels"}[str(value)]
    problems = check(source)
    assert len(problems) == 1 and has(problems, str(path), counts), problems
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value" RuntimeWarning on the way
        with pytest.raises(PrepareError) as error:
            prepare_brats2020(source, tmp_path / "out", split_sizes=SPLIT, progress=False)
    assert str(path) in str(error.value) and counts in str(error.value)
    assert "constant over the brain" not in str(error.value)


@pytest.mark.parametrize("name", ["flair", "seg"])
def test_a_zero_byte_nifti_is_reported_as_empty(raw, name):
    source, subject = raw
    path = raw_files(source, subject)[name]
    path.write_bytes(b"")
    assert check(source) == [f"{path}: empty file (0 bytes): the {name} NIfTI of {subject} was never written or was "
                             "truncated"]  # fmt: skip


def test_every_problem_of_a_raw_subject_is_reported(raw):
    source, subject = raw
    files = raw_files(source, subject)
    image = nib.load(str(files["flair"]))
    data = np.asanyarray(image.dataobj).astype(np.float32)
    data[1, 1, 1] = np.inf
    nib.save(nib.Nifti1Image(data, image.affine), str(files["flair"]))
    seg = np.asanyarray(nib.load(str(files["seg"])).dataobj).copy()
    seg[0, 0, 0] = 3
    nib.save(nib.Nifti1Image(seg, image.affine), str(files["seg"]))
    files["t2"].write_bytes(b"")
    problems = check(source)
    assert has(problems, str(files["flair"]), "1 +Inf voxels")
    assert has(problems, str(files["seg"]), "labels outside {0, 1, 2, 4}: [3]")
    assert has(problems, str(files["t2"]), "empty file")
    assert len(problems) == 3, problems
