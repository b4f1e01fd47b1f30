"""BraTS2020 data: the authors' preprocessing, prepare (raw NIfTI and preprocessed layouts, splits, idempotence,
every bad input), the loader and its MONAI augmentation, check-data, the synthetic set and the CLI."""

import gzip
import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from mwam_harness.datasets import dataset_spec
from mwam_harness.datasets.brats2020 import MODALITIES
from mwam_harness.datasets.brats2020.layout import case_name, label_path, raw_files, read_split, volume_path
from mwam_harness.datasets.brats2020.loader import Brats2020Dataset
from mwam_harness.datasets.brats2020.prepare import PrepareError, default_split_sizes, prepare_brats2020
from mwam_harness.datasets.brats2020.preprocess import (
    crop_window,
    normalize,
    preprocess_subject,
    remap_labels,
    widen_window,
)
from mwam_harness.datasets.brats2020.synthetic import write_brats2020
from mwam_harness.datasets.brats2020.transforms import RandIntensityScaleShiftd, RandPlaneRotated, training_transforms
from mwam_harness.datasets.registry import read_synthetic_marker
from reproduce.cli import main

SHAPE = (40, 40, 32)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A synthetic set (raw NIfTI + its prepared root) shared by the read-only tests of this module."""
    return write_brats2020(tmp_path_factory.mktemp("brats") / "set", num_cases=6, shape=SHAPE, split=(3, 1, 2))


def raw_copy(synthetic, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(synthetic / "raw", raw)
    return raw


# ---------------------------------------------------------------- the authors' preprocessing
def test_the_window_is_widened_as_sup_128_does():
    assert widen_window(20, 120) == (6, 135)  # 100 long: 14 below, 15 above -> 129
    assert widen_window(20, 121) == (7, 135)  # 101 long: 13 below, 14 above -> 128
    assert widen_window(5, 100) == (0, 128)  # 95 long: 16 below (to -11), 17 above, then shifted up by 11
    assert widen_window(10, 200) == (10, 200)  # long enough: unchanged


def test_the_crop_cuts_the_last_nonzero_voxel_and_clamps_like_slicing():
    volume = np.zeros((4, 200, 200, 200), np.float32)
    volume[1, 50:150, 40:180, 60:190] = 1.0
    window = crop_window(volume)
    assert window[1] == slice(40, 179)  # the last non-zero index (179) used as an exclusive bound
    assert window[0] == slice(36, 164)  # 50 .. 149: 99 long -> 14 below, 15 above
    with pytest.raises(ValueError, match="every voxel is zero"):
        crop_window(np.zeros((4, 3, 3, 3)))


def test_normalize_is_a_z_score_over_the_brain_applied_to_every_voxel():
    rng = np.random.default_rng(0)
    volume = np.zeros((4, 10, 10, 10), np.float32)
    volume[:, 2:8, 2:8, 2:8] = rng.uniform(1, 5, size=(4, 6, 6, 6))
    background = volume[0, 0, 0, 0]
    expected = (background - volume[0, 2:8, 2:8, 2:8].mean()) / volume[0, 2:8, 2:8, 2:8].std()
    out = normalize(volume.copy())
    brain = out[:, 2:8, 2:8, 2:8].reshape(4, -1)
    np.testing.assert_allclose(brain.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(brain.std(axis=1), 1, atol=1e-5)
    assert out[0, 0, 0, 0] == pytest.approx(expected, rel=1e-5), "the background is shifted and scaled too"
    flat = volume.copy()
    flat[2, 2:8, 2:8, 2:8] = 3.0
    with pytest.raises(ValueError, match="t1 is constant over the brain"):
        normalize(flat)


def test_labels_map_4_to_3_and_reject_anything_else():
    assert remap_labels(np.array([0, 1, 2, 4])).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"labels outside \{0, 1, 2, 4\}: \[3\]"):
        remap_labels(np.array([0, 3]))


def test_preprocess_subject_equals_the_steps_written_out():
    rng = np.random.default_rng(1)
    shape = (150, 140, 130)
    volumes = {m: np.zeros(shape, np.int16) for m in MODALITIES}
    for m in MODALITIES:
        volumes[m][10:140, 20:135, 5:120] = rng.integers(1, 1000, size=(130, 115, 115))
    segmentation = np.zeros(shape, np.int16)
    segmentation[60:80, 60:80, 60:80] = 4
    volume, labels, window = preprocess_subject(volumes, segmentation)
    # x: 10 .. 139 is 129 long (kept); y: 20 .. 134 -> 13 .. 142; z: 5 .. 119 -> -2 .. 127, shifted to 0 .. 129
    stack = np.stack([volumes[m] for m in MODALITIES]).astype(np.float32)[:, 10:139, 13:142, 0:129]
    brain = stack.sum(0) > 0
    expected = np.stack([(stack[k] - stack[k][brain].mean()) / stack[k][brain].std() for k in range(4)], axis=-1)
    assert window == (slice(10, 139), slice(13, 142), slice(0, 129)) and volume.dtype == np.float32
    np.testing.assert_allclose(volume, expected, rtol=1e-5, atol=1e-5)
    assert labels.dtype == np.uint8 and labels.shape == volume.shape[:3] and set(np.unique(labels)) == {0, 3}


# ---------------------------------------------------------------- prepare
def test_prepare_writes_the_authors_layout_a_seeded_split_and_a_fingerprint(synthetic):
    cases = read_split(synthetic, "train") + read_split(synthetic, "val") + read_split(synthetic, "test")
    assert len(cases) == len(set(cases)) == 6 and [len(read_split(synthetic, s)) for s in ("train", "val", "test")] == [
        3,
        1,
        2,
    ]
    assert any(c.startswith("LG_") for c in cases) and all(c[:3] in ("HG_", "LG_") for c in cases)
    volume, labels = np.load(volume_path(synthetic, cases[0])), np.load(label_path(synthetic, cases[0]))
    assert volume.shape == (*SHAPE, 4) and volume.dtype == np.float32 and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2, 3} and 3 in labels
    fingerprint = json.loads((synthetic / "fingerprint.json").read_text())
    entry = fingerprint["cases"][cases[0]]
    assert fingerprint["subjects"] == 6 and fingerprint["splits"] == {"train": 3, "val": 1, "test": 2}
    assert (
        entry["spacing"] == [1.0, 1.0, 1.0]
        and entry["shape"] == list(SHAPE)
        and set(entry["intensity"]) == set(MODALITIES)
    )
    assert default_split_sizes(369) == (219, 50, 100) and sum(default_split_sizes(10)) == 10


def test_prepare_is_idempotent_and_redoes_a_subject_whose_source_changed(synthetic, tmp_path):
    raw = raw_copy(synthetic, tmp_path)
    out = prepare_brats2020(raw, tmp_path / "out", split_sizes=(3, 1, 2), progress=False)
    files = sorted((out / "vol").iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    prepare_brats2020(raw, out, split_sizes=(3, 1, 2), progress=False)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps, "nothing is rewritten"
    subject = sorted(d.name for d in (raw / "MICCAI_BraTS2020_TrainingData").iterdir())[0]
    flair = raw_files(raw, subject)["flair"]
    image = nib.load(str(flair))
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj) * 2, image.affine), str(flair))
    prepare_brats2020(raw, out, split_sizes=(3, 1, 2), progress=False)
    changed = [p for p in files if p.stat().st_mtime_ns != stamps[p]]
    assert changed == [volume_path(out, case_name(subject))]
    assert not list(out.rglob("*.tmp*")), "no temporary file is left"


def _break(raw, subject, how):
    files = raw_files(raw, subject)
    image = nib.load(str(files["flair"]))
    data, affine = np.asanyarray(image.dataobj), image.affine
    if how == "missing":
        files["t1ce"].unlink()
        return "missing file(s)", "t1ce.nii.gz"
    if how == "truncated":
        blob = files["t2"].read_bytes()
        files["t2"].write_bytes(blob[: len(blob) // 2])
        return "unreadable NIfTI", "t2.nii.gz"
    if how == "shape":
        nib.save(nib.Nifti1Image(data[:-2], affine), str(files["t1"]))
        return "different shapes", subject
    if how == "affine":
        shifted = affine.copy()
        shifted[0, 3] += 5
        nib.save(nib.Nifti1Image(data, shifted), str(files["t1"]))
        return "affines differ", "t1.nii.gz"
    if how == "nan":
        bad = data.astype(np.float32)
        bad[3, 3, 3] = np.nan
        nib.save(nib.Nifti1Image(bad, affine), str(files["flair"]))
        return "NaN voxels", "flair.nii.gz"
    if how == "labels":
        seg = np.asanyarray(nib.load(str(files["seg"])).dataobj).copy()
        seg[0, 0, 0] = 3
        nib.save(nib.Nifti1Image(seg, affine), str(files["seg"]))
        return "labels outside", subject
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing", "truncated", "shape", "affine", "nan", "labels"])
def test_bad_input_names_the_subject_and_file_and_writes_nothing_half(synthetic, tmp_path, how):
    raw = raw_copy(synthetic, tmp_path)
    subject = sorted(d.name for d in (raw / "MICCAI_BraTS2020_TrainingData").iterdir())[1]
    message, where = _break(raw, subject, how)
    out = tmp_path / "out"
    with pytest.raises(PrepareError) as error:
        prepare_brats2020(raw, out, split_sizes=(3, 1, 2), progress=False)
    text = str(error.value)
    assert "1 of 6 subjects" in text and subject in text and message in text and where in text
    assert not volume_path(out, case_name(subject)).exists() and not list(out.rglob("*.tmp*"))
    assert not (out / "train.txt").exists(), "no split is written for an incomplete set"
    problems = dataset_spec("brats2020").check(raw, progress=False)
    assert len(problems) == 1 and subject in str(problems[0]) and message in str(problems[0])


def test_the_authors_preprocessed_layout_is_linked_with_their_split(synthetic, tmp_path):
    theirs = tmp_path / "BRATS2020_Training_none_npy"
    for sub in ("vol", "seg"):
        shutil.copytree(synthetic / sub, theirs / sub)
    cases = sorted(p.name[: -len("_vol.npy")] for p in (theirs / "vol").iterdir())
    (theirs / "train.txt").write_text("\n".join(cases[:4]) + "\n")
    (theirs / "test.txt").write_text("\n".join(cases[4:]) + "\n")
    out = prepare_brats2020(theirs, tmp_path / "out", progress=False)
    assert (out / "vol" / f"{cases[0]}_vol.npy").is_symlink()
    assert read_split(out, "test") == cases[4:] and len(read_split(out, "val")) == 1
    assert sorted(read_split(out, "train") + read_split(out, "val")) == cases[:4]
    # their lists may name subjects without the HG_ / LG_ prefix; an unknown name is an error with its line
    (tmp_path / "t.txt").write_text("\n".join(c[3:] for c in cases[4:]) + "\n")
    (tmp_path / "bad.txt").write_text(cases[0] + "\nBraTS20_Training_999\n")
    again = prepare_brats2020(theirs, tmp_path / "out2", split_files=[theirs / "train.txt", tmp_path / "t.txt"])
    assert read_split(again, "test") == cases[4:]
    with pytest.raises(PrepareError, match=r"bad.txt:2: 'BraTS20_Training_999' is not a prepared case"):
        prepare_brats2020(theirs, tmp_path / "out3", split_files=[tmp_path / "bad.txt", tmp_path / "t.txt"])
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(PrepareError, match="the split list is empty"):
        prepare_brats2020(theirs, tmp_path / "out4", split_files=[theirs / "train.txt", tmp_path / "empty.txt"])


def test_neither_layout_is_a_clear_error(tmp_path):
    with pytest.raises(PrepareError, match="neither a raw BraTS2020 folder"):
        prepare_brats2020(tmp_path, tmp_path / "out", progress=False)


# ---------------------------------------------------------------- loader and augmentation
def test_training_samples_are_crops_seeded_by_seed_epoch_and_index(synthetic):
    data = Brats2020Dataset(synthetic, "train", seed=0, crop=24)
    first = data[1]
    assert set(first) == {*MODALITIES, "label", "case"} and first["flair"].shape == (1, 24, 24, 24)
    assert first["label"].shape == (24, 24, 24) and first["label"].dtype == torch.int64
    assert torch.equal(Brats2020Dataset(synthetic, "train", seed=0, crop=24)[1]["t2"], first["t2"])
    data.set_epoch(1)
    assert not torch.equal(data[1]["t2"], first["t2"])
    test = Brats2020Dataset(synthetic, "test")
    whole = test[0]
    assert whole["flair"].shape == (1, *SHAPE)
    raw = np.load(volume_path(synthetic, test.cases[0]))
    assert torch.equal(whole["t1ce"][0], torch.from_numpy(raw[..., 1])), "evaluation: the prepared volume unchanged"
    with pytest.raises(ValueError, match="smaller than the 64"):
        Brats2020Dataset(synthetic, "train", crop=64)[0]


def test_augmentation_moves_image_and_label_together():
    rng = np.random.default_rng(0)
    label = rng.integers(1, 4, size=(1, 20, 20, 20))
    image = np.repeat(label.astype(np.float32), 4, axis=0)
    transform = training_transforms(16, shift=0.0, scale=0.0)
    for seed in range(5):
        transform.set_random_state(seed=seed)
        out = transform({"image": image.copy(), "label": label.copy()})
        img, lab = np.asarray(out["image"]), np.asarray(out["label"])
        inside = lab[0] > 0
        assert inside.any() and np.array_equal(img[0][inside], lab[0][inside].astype(np.float32))
        assert set(np.unique(img[0][~inside])) <= {-1.0}, "rotated-in corners: image -1, label 0"


def test_rotation_draws_a_plane_and_an_integer_angle_in_minus_10_to_9():
    rotation = RandPlaneRotated(("image",), angle=10)
    rotation.set_random_state(seed=0)
    seen = set()
    for _ in range(400):
        rotation.randomize()
        seen.add((rotation.plane, rotation.degrees))
    angles = {a for _, a in seen}
    assert min(angles) == -10 and max(angles) == 9 and {p for p, _ in seen} == {(1, 0), (2, 1), (2, 0)}


@pytest.mark.parametrize(("per", "shape"), [("slice", (4, 6, 1, 1)), ("channel", (4, 1, 1, 1))])
def test_intensity_factors_per_channel_and_first_axis_as_the_authors_or_per_channel(per, shape):
    transform = RandIntensityScaleShiftd(("image",), per=per)
    transform.set_random_state(seed=0)
    out = transform({"image": np.ones((4, 6, 5, 5), np.float32)})["image"]
    scale, shift = transform.factors
    assert scale.shape == shift.shape == shape
    assert np.all((0.9 <= scale) & (scale <= 1.1)) and np.all(np.abs(shift) <= 0.1)
    np.testing.assert_allclose(out, np.broadcast_to(scale + shift, (4, 6, 5, 5)), rtol=1e-6)
    with pytest.raises(ValueError, match="per must be one of"):
        RandIntensityScaleShiftd(("image",), per="voxel")


# ---------------------------------------------------------------- check-data, synthetic, CLI
def test_check_data_reports_every_problem_of_a_prepared_root(synthetic, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(synthetic, root, ignore=shutil.ignore_patterns("raw"))
    spec = dataset_spec("brats2020")
    assert spec.check(root, progress=False) == []
    train, test = read_split(root, "train"), read_split(root, "test")
    label_path(root, train[0]).unlink()
    np.save(label_path(root, test[0]), np.full(SHAPE, 7, np.uint8))
    with (root / "val.txt").open("a") as handle:
        handle.write(train[1] + "\n")
    problems = [str(p) for p in spec.check(root, progress=False)]
    assert len(problems) == 3
    assert any("missing file of case " + train[0] in p for p in problems)
    assert any("labels outside 0-3: [7]" in p for p in problems)
    assert any("val.txt:2: case " + train[1] + " is also in train.txt" in p for p in problems)


def test_synthetic_contrast_follows_mri_and_the_marker_makes_it_reusable(synthetic):
    subject = sorted(d.name for d in (synthetic / "raw" / "MICCAI_BraTS2020_TrainingData").iterdir())[0]
    files = raw_files(synthetic / "raw", subject)
    seg = np.asanyarray(nib.load(str(files["seg"])).dataobj)
    brain = np.asanyarray(nib.load(str(files["flair"])).dataobj) > 0
    regions = {0: (seg == 0) & brain, 1: seg == 1, 2: seg == 2, 4: seg == 4}  # 0: healthy brain
    mean = {m: {r: np.asanyarray(nib.load(str(files[m])).dataobj)[where].mean() for r, where in regions.items()}
            for m in MODALITIES}  # fmt: skip
    assert mean["flair"][2] > 1.6 * mean["flair"][0] and mean["t2"][2] > 1.6 * mean["t2"][0]  # oedema bright
    assert mean["t1ce"][4] > 2 * mean["t1ce"][0] and mean["t1ce"][1] < 0.5 * mean["t1ce"][0]  # rim, dark core
    assert abs(mean["t1"][2] / mean["t1"][0] - 1) < 0.15, "T1 shows little"
    assert dataset_spec("brats2020").is_synthetic(synthetic)
    stamp = (synthetic / "train.txt").stat().st_mtime_ns
    write_brats2020(synthetic, num_cases=6, shape=SHAPE, split=(3, 1, 2))
    assert (synthetic / "train.txt").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="must sum to num_cases"):
        write_brats2020(synthetic.parent / "x", num_cases=6, split=(3, 1, 1))
    assert gzip.open(files["t1"]).read(4)  # real gzip-compressed NIfTI


def test_prepare_and_check_data_commands(synthetic, tmp_path, capsys):
    raw = raw_copy(synthetic, tmp_path)
    assert main(["prepare", "brats2020", str(raw), str(tmp_path / "out"), "--no-progress", "--workers", "2"]) == 0
    assert "prepared at" in capsys.readouterr().out
    assert main(["check-data", "brats2020", str(tmp_path / "out"), "--no-progress"]) == 0
    _break(raw, sorted(d.name for d in (raw / "MICCAI_BraTS2020_TrainingData").iterdir())[0], "missing")
    assert main(["prepare", "brats2020", str(raw), str(tmp_path / "out2"), "--no-progress"]) == 1
    assert "missing file(s)" in capsys.readouterr().err
    assert main(["check-data", "brats2020", str(raw), "--no-progress"]) == 1


def test_a_synthetic_set_with_other_parameters_is_replaced_whole_and_other_folders_are_refused(tmp_path):
    first = write_brats2020(tmp_path / "set", num_cases=5, shape=(24, 24, 16), split=(3, 1, 1))
    write_brats2020(first, num_cases=4, shape=(24, 24, 16), split=(2, 1, 1), seed=1)
    subjects = list((first / "raw" / "MICCAI_BraTS2020_TrainingData").iterdir())
    assert len(subjects) == 4 and len(list((first / "vol").iterdir())) == 4, "no subject of the old set is left"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("not a data set")
    with pytest.raises(FileExistsError, match="not a synthetic data set"):
        write_brats2020(other, num_cases=4, shape=(24, 24, 16), split=(2, 1, 1))


def test_tumour_size_sets_the_tumour_share_and_only_a_non_default_range_enters_the_marker(tmp_path):
    from mwam_harness.datasets.brats2020.synthetic import TUMOUR_SIZE

    def share(root):
        return np.mean([(np.load(f) > 0).mean() for f in sorted((root / "seg").glob("*_seg.npy"))])

    small = write_brats2020(tmp_path / "small", num_cases=3, shape=(24, 24, 16), split=(1, 1, 1))
    large = write_brats2020(
        tmp_path / "large", num_cases=3, shape=(24, 24, 16), split=(1, 1, 1), tumour_size=(0.5, 0.65)
    )
    assert share(large) > 2 * share(small)
    assert "tumour_size" not in read_synthetic_marker(small)  # the default set's fingerprint is unchanged
    assert read_synthetic_marker(large)["tumour_size"] == [0.5, 0.65]
    assert write_brats2020(small, num_cases=3, shape=(24, 24, 16), split=(1, 1, 1), tumour_size=TUMOUR_SIZE) == small
    with pytest.raises(ValueError, match="tumour_size"):
        write_brats2020(tmp_path / "bad", num_cases=3, split=(1, 1, 1), tumour_size=(0.7, 0.5))
