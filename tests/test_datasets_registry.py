"""Data sets by name: the torch-free specs, their presets, fingerprints and the lazily loaded parts."""

import dataclasses
import subprocess
import sys

import pytest

from mwam_harness.datasets import DatasetPreset, dataset_spec, list_datasets, register_dataset
from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf
from mwam_harness.datasets.paper_only import PaperOnlyDataset
from mwam_harness.datasets.registry import SubsetOrder


def test_casia_surf_is_registered_with_its_presets_and_without_loading_torch():
    code = (
        "import sys; from mwam_harness.datasets import dataset_spec; s = dataset_spec('casia_surf');"
        "from reproduce.subsets import dataset_names, subsets; [subsets(n) for n in dataset_names()];"
        "print(s.modalities, sorted(s.presets), any(m in sys.modules for m in ('torch', 'cv2', 'numpy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "('rgb', 'depth', 'ir') ['demo', 'paper', 'smoke'] False"
    assert {"casia_surf", "brats2020", "nyuv2", "dronevehicle"} <= set(list_datasets())
    with pytest.raises(ValueError, match=r"unknown data set 'surf'; known: (.+, )?casia_surf(, |$)"):
        dataset_spec("surf")


def test_brats2020_is_registered_torch_free_with_its_prepare_step():
    code = (
        "import sys; from mwam_harness.datasets import dataset_spec; s = dataset_spec('brats2020');"
        "print(s.modalities, sorted(s.presets), s.preparer is not None,"
        " any(m in sys.modules for m in ('torch', 'nibabel', 'monai')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "('flair', 't1ce', 't1', 't2') ['demo', 'paper', 'smoke'] True False"
    with pytest.raises(ValueError, match="casia_surf is read as downloaded"):
        dataset_spec("casia_surf").prepare("a", "b")


def test_a_spec_needs_every_preset_and_a_name_registers_once():
    spec = dataset_spec("casia_surf")
    assert register_dataset(spec) is spec
    with pytest.raises(ValueError, match="lacks the presets"):
        register_dataset(dataclasses.replace(spec, name="other", presets={"paper": DatasetPreset("paper", False)}))
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(dataclasses.replace(spec, title="another"))
    with pytest.raises(ValueError, match="has no preset 'fast'"):
        spec.preset("fast")


def test_fingerprint_listed_samples_and_the_lazy_loader(tmp_path):
    spec = dataset_spec("casia_surf")
    root = write_casia_surf(tmp_path / "a", num_train=4, num_val=2, num_test=3, size=24)
    other = write_casia_surf(tmp_path / "b", num_train=4, num_val=2, num_test=3, size=24, seed=1)
    same = write_casia_surf(tmp_path / "c", num_train=4, num_val=2, num_test=3, size=24)
    assert spec.fingerprint(root) == spec.fingerprint(same) != spec.fingerprint(other)
    assert [spec.listed_samples(root, s) for s in spec.splits] == [4, 2, 3] and spec.is_synthetic(root)
    item = spec.build_dataset(root, "test", train=False, seed=0, resize=32, crop=24)[0]
    assert item["rgb"].shape == (3, 24, 24)
    assert spec.check(root, progress=False) == []


_FULL = ("rgb", "depth", "ir")
_PAIRS = (("rgb", "depth"), ("rgb", "ir"), ("depth", "ir"))
_HEADER = (("rgb", "Rgb"), ("depth", "Depth"), ("ir", "Ir"))


@pytest.mark.parametrize(
    ("header", "order", "message"),
    [
        (_HEADER, (("rgb",), ("depth",), ("ir",), *_PAIRS[:2], _FULL), r"the subset order misses depth\+ir"),
        (_HEADER, (("rgb",), ("depth",), ("ir",), ("depth",), *_PAIRS, _FULL), r"repeats depth \(row 4\)"),
        (
            _HEADER,
            (("rgb",), ("depth",), _FULL, ("ir",), *_PAIRS),
            r"full set rgb\+depth\+ir must be the last .* row 3",
        ),
        (_HEADER, (("rgb",), ("depth",), ("ir",), ("depth", "rgb"), *_PAIRS[1:], _FULL), "not in modality order"),
        (_HEADER, (("rgb",), ("depth",), ("thermal",), *_PAIRS, _FULL), "not a non-empty subset"),
        (_HEADER, ((), ("rgb",), ("depth",), ("ir",), *_PAIRS, _FULL), "not a non-empty subset"),
        (_HEADER[:2], (("rgb",), ("depth",), ("ir",), *_PAIRS, _FULL), "header must name every modality"),
        ((*_HEADER, ("ir", "IR")), (("rgb",), ("depth",), ("ir",), *_PAIRS, _FULL), "header must name every modality"),
    ],
)
def test_a_spec_with_a_bad_subset_order_is_refused(header, order, message):
    spec = dataset_spec("casia_surf")
    with pytest.raises(ValueError, match=f"data set 'casia_surf': .*{message}"):
        dataclasses.replace(spec, subsets=SubsetOrder(header, order, "evidence"))


def test_a_subset_order_needs_evidence_and_paper_only_entries_are_checked_too():
    spec = dataset_spec("casia_surf")
    with pytest.raises(ValueError, match="needs its evidence"):
        dataclasses.replace(spec, subsets=dataclasses.replace(spec.subsets, evidence=" "))
    with pytest.raises(ValueError, match="must be a SubsetOrder"):
        dataclasses.replace(spec, subsets=spec.subsets.order)
    with pytest.raises(ValueError, match="data set 'toy': the subset order misses a\\+b"):
        PaperOnlyDataset("toy", "Toy", ("a", "b"), SubsetOrder((("a", "A"), ("b", "B")), (("a",), ("b",)), "x"))
