"""``python -m reproduce predict`` on BraTS2020 runs (reproduce/predict/brats2020.py): raw NIfTI cases in, the label
map back in each scan's geometry, on the synthetic generator's raw cases and a freshly initialised small RFNet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from mwam_harness.datasets.brats2020.layout import RAW_FOLDER, case_name
from mwam_harness.datasets.brats2020.synthetic import write_brats2020
from mwam_harness.models.host import HostOutput
from reproduce.cli import main
from reproduce.tasks.segmentation3d import Segmentation3DTask
from tests.predict_fixtures import KEY, trained_run_folder

MODALITIES = ("flair", "t1ce", "t1", "t2")
#: Axis 0 is longer than the authors' 128-voxel minimum window, so the crop cuts the scan there.
SHAPE = (144, 24, 16)
SMALL = (32, 24, 16)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """A synthetic set (3 raw cases and their prepared form) written once for the module."""
    return write_brats2020(tmp_path_factory.mktemp("brats") / "set", num_cases=3, shape=SHAPE, split=(1, 1, 1))


def raw_cases(synthetic: Path) -> list[Path]:
    return sorted(p for p in (synthetic / "raw" / RAW_FOLDER).iterdir() if p.is_dir())


@pytest.fixture
def results(tmp_path) -> Path:
    """A results root with a finished (untrained) RFNet run of BraTS2020: 4-channel encoders, 16^3 windows."""
    trained_run_folder(tmp_path / "runs", "brats2020", "rfnet", host_options={"basic_dims": 4},
                       data_options={"crop": 16})  # fmt: skip
    return tmp_path


def predict(results: Path, inputs: Path, output: Path, *extra: str) -> int:
    argv = ["predict", KEY, "--results-dir", str(results), "--input", str(inputs), "--output", str(output)]
    return main([*argv, *extra, "--device", "cpu"])


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def manifest(output: Path) -> dict:
    return json.loads((output / "prediction.json").read_text(encoding="utf-8"))


def copy_case(synthetic: Path, folder: Path, index: int = 0) -> Path:
    source = raw_cases(synthetic)[index]
    return Path(shutil.copytree(source, folder / source.name))


def small_case(synthetic: Path, folder: Path, index: int = 0, affine: np.ndarray | None = None) -> Path:
    """A copy of a raw case cut to its middle 32 slices along axis 0 (``SMALL``: 6 windows for the real network),
    optionally with another ``affine`` (then anisotropic 1.2 x 0.9 x 2 mm voxels and a description too)."""
    case = copy_case(synthetic, folder, index)
    for path in sorted(case.glob("*.nii.gz")):
        image = nib.load(path)
        small = nib.Nifti1Image(np.asanyarray(image.dataobj)[56:88], image.affine if affine is None else affine)
        if affine is not None:
            small.header.set_zooms((1.2, 0.9, 2.0))
            small.header["descrip"] = b"scanner X"
        nib.save(small, path)
    return case


def test_the_label_map_has_the_input_s_geometry_affine_and_header(synthetic, results, tmp_path):
    affine = np.array([[1.2, 0.1, 0.0, -80.0], [0.0, 0.9, 0.05, 40.0], [0.0, 0.0, 2.0, 7.5], [0.0, 0.0, 0.0, 1.0]])
    case = small_case(synthetic, tmp_path / "in", affine=affine)
    flair = case / f"{case.name}_flair.nii.gz"  # FLAIR uncompressed: .nii is read too
    nib.save(nib.load(flair), case / f"{case.name}_flair.nii")
    flair.unlink()
    assert predict(results, case, tmp_path / "out") == 0
    reference = nib.load(case / f"{case.name}_flair.nii")
    written = nib.load(tmp_path / "out" / f"{case.name}_seg.nii.gz")
    labels = np.asanyarray(written.dataobj)
    assert labels.shape == reference.shape == SMALL and labels.dtype == np.uint8
    assert written.get_data_dtype() == np.uint8
    assert np.array_equal(written.affine, reference.affine)
    differing = [field for field in reference.header if field not in ("datatype", "bitpix")
                 and not same(written.header[field], reference.header[field])]  # fmt: skip
    assert not differing, differing  # zooms, qform / sform, units, description: the input's
    assert set(np.unique(labels).tolist()) <= {0, 1, 2, 4}
    record = manifest(tmp_path / "out")
    (entry,) = record["predictions"]
    assert record["run"] == KEY and record["host"] == "rfnet" and record["trained_on_synthetic_data"] is True
    assert entry["input"] == case.name and entry["subset"] == "flair+t1ce+t1+t2"
    assert entry["files"] == [f"{case.name}_seg.nii.gz"] and entry["shape"] == list(SMALL)
    assert sum(entry["label_voxels"].values()) == labels.size


def test_a_stand_in_that_predicts_the_prepared_label_gives_back_the_ground_truth_file(
    synthetic, results, tmp_path, monkeypatch
):
    """The network replaced by the case's own prepared label (one-hot): the written map equals the raw ``_seg``
    file everywhere, inside the crop (labels 1, 2, 4 back from classes 1, 2, 3) and outside it (0). The stand-in
    also checks that the volume it is given is the one ``prepare`` wrote (same crop, same normalisation)."""
    fingerprint = json.loads((synthetic / "fingerprint.json").read_text(encoding="utf-8"))["cases"]
    prepared = {name: (np.load(synthetic / "vol" / f"{name}_vol.npy"), np.load(synthetic / "seg" / f"{name}_seg.npy"))
                for name in fingerprint}  # fmt: skip
    seen = []

    def stand_in(self, host, inputs, present) -> HostOutput:
        volume = torch.cat([inputs[m] for m in self.modalities], dim=1)[0].numpy()  # (4, h, w, d)
        assert bool(present.all())
        matches = [n for n, (v, _) in prepared.items() if v.shape[:3] == volume.shape[1:]
                   and np.array_equal(np.moveaxis(v, 3, 0), volume)]  # fmt: skip
        assert len(matches) == 1, "the preprocessed volume is not the one prepare wrote"
        seen.append(matches[0])
        label = torch.from_numpy(prepared[matches[0]][1].astype(np.int64))[None]
        return HostOutput(logits=torch.nn.functional.one_hot(label, 4).permute(0, 4, 1, 2, 3).float())

    monkeypatch.setattr(Segmentation3DTask, "predict", stand_in)
    inputs = synthetic / "raw"  # a folder of case folders (inside MICCAI_BraTS2020_TrainingData)
    assert predict(results, inputs, tmp_path / "out") == 0
    entries = {e["input"]: e for e in manifest(tmp_path / "out")["predictions"]}
    assert sorted(case_name(n) for n in entries) == sorted(seen) == sorted(fingerprint)
    for folder in raw_cases(synthetic):
        truth = np.asanyarray(nib.load(folder / f"{folder.name}_seg.nii.gz").dataobj)
        written = np.asanyarray(nib.load(tmp_path / "out" / f"{folder.name}_seg.nii.gz").dataobj)
        crop = entries[folder.name]["crop"]
        prepared_crop = fingerprint[case_name(folder.name)]["crop"]  # prepare's window, slicing clamps it
        assert crop == [[a, min(b, size)] for (a, b), size in zip(prepared_crop, SHAPE, strict=True)]
        assert crop[0][0] > 0 or crop[0][1] < SHAPE[0], "the crop should cut the scan along axis 0"
        outside = np.ones(SHAPE, dtype=bool)
        outside[tuple(slice(a, b) for a, b in crop)] = False
        assert written.dtype == np.uint8 and np.array_equal(written, truth)
        assert not written[outside].any() and set(np.unique(written).tolist()) == {0, 1, 2, 4}
        counts = {str(k): int((truth == k).sum()) for k in (0, 1, 2, 4)}
        assert entries[folder.name]["label_voxels"] == counts


def test_a_missing_modality_file_is_a_missing_modality_and_subset_needing_it_is_refused(
    synthetic, results, tmp_path, capsys
):
    case = small_case(synthetic, tmp_path / "in", index=1)
    (case / f"{case.name}_t1ce.nii.gz").unlink()
    assert predict(results, case, tmp_path / "out") == 0
    record = manifest(tmp_path / "out")
    assert record["predictions"][0]["subset"] == "flair+t1+t2"
    assert record["subset_rule"] == "the modalities whose files are present"
    written = nib.load(tmp_path / "out" / f"{case.name}_seg.nii.gz")
    assert written.shape == SMALL and set(np.unique(np.asanyarray(written.dataobj)).tolist()) <= {0, 1, 2, 4}
    capsys.readouterr()
    assert predict(results, case, tmp_path / "out2", "--subset", "flair+t1ce") == 2
    err = capsys.readouterr().err.strip()
    assert f"{case.name}: --subset flair+t1ce needs t1ce, not found" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out2" / "prediction.json").exists()


def test_bad_inputs_are_one_line_errors_naming_what_is_wrong(synthetic, results, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no scans here")
    assert predict(results, tmp_path / "empty", tmp_path / "out") == 2
    assert "no NIfTI file of a case under" in capsys.readouterr().err
    assert predict(results, tmp_path / "empty" / "notes.txt", tmp_path / "out") == 2
    assert "give a case folder" in capsys.readouterr().err

    case = copy_case(synthetic, tmp_path / "in")
    t2 = case / f"{case.name}_t2.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(nib.load(t2).dataobj)[:, :, :8], nib.load(t2).affine), t2)
    t1 = case / f"{case.name}_t1.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(nib.load(t1).dataobj), np.diag([2.0, 1.0, 1.0, 1.0])), t1)
    assert predict(results, case, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    shapes = "flair (144, 24, 16), t1ce (144, 24, 16), t1 (144, 24, 16), t2 (144, 24, 8)"
    assert f"case {case.name} ({case}): modalities of different shapes: {shapes}" in err
    assert "the affines of t1 differ from flair's" in err and len(err.splitlines()) == 1, err

    fresh = copy_case(synthetic, tmp_path / "again", index=2)  # the case folder holds its ground truth, _seg
    assert predict(results, fresh, fresh) == 2
    assert "would be overwritten" in capsys.readouterr().err


def test_a_constant_modality_is_named_by_its_own_name_on_a_subset(synthetic, results, tmp_path, capsys):
    """``normalize`` names the stack's channel k after the k-th of all four modalities; on a subset's stack the
    error names the subset's k-th: here T1 (channel 1 of flair+t1+t2), not T1ce."""
    case = copy_case(synthetic, tmp_path / "in")
    (case / f"{case.name}_t1ce.nii.gz").unlink()
    t1 = case / f"{case.name}_t1.nii.gz"
    image = nib.load(t1)  # every modality is non-zero exactly on the brain: T1 becomes constant over it
    nib.save(nib.Nifti1Image(np.where(np.asanyarray(image.dataobj) > 0, 300, 0).astype(np.int16), image.affine), t1)
    assert predict(results, case, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"case {case.name} ({case}): t1 is constant over the brain" in err, err
