"""Table 1's FRM column (reproduce/frm_of_data.py): a modality's FRM is the sum of its training images' Eq. 4 values,
a subset's the sum of its members'. Checked on the synthetic CASIA-SURF against a per-image NumPy/SciPy reference of
Eq. 4 (tests/reference.py), not against the paper's digits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mwam import MWAMConfig
from mwam_harness.datasets.casia_surf import MODALITIES
from mwam_harness.datasets.casia_surf.loader import CasiaSurfDataset
from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf
from mwam_harness.datasets.registry import dataset_spec
from reproduce.frm_of_data import data_frm, frm_column, main, per_image_frm, subset_frm
from tests.reference import reference_frm

SMALL = {"resize": 30, "crop": 20}


@pytest.fixture(scope="module")
def surf_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_casia_surf(tmp_path_factory.mktemp("surf") / "CASIA-SURF", 8, 4, 4, size=32, seed=7)


def _by_hand(dataset, modality, rule="ratio"):
    """Eq. 4 of each image on its own (the float64 block-by-block reference), summed."""
    values = [reference_frm(dataset[i][modality][None].double().numpy(), rule=rule) for i in range(len(dataset))]
    return values, math.fsum(values)


def test_a_modalitys_frm_is_the_sum_of_its_training_images_eq4_values(surf_root):
    dataset = CasiaSurfDataset(surf_root, "train", train=False, **SMALL)  # what data_frm reads by default
    per_image = per_image_frm("casia_surf", surf_root, options=SMALL, transform=torch.Tensor.double, batch_size=3)
    totals = data_frm(dataset_spec("casia_surf"), surf_root, "train", options=SMALL, transform=torch.Tensor.double)
    assert list(totals) == list(MODALITIES) == list(per_image)
    for m in MODALITIES:
        values, total = _by_hand(dataset, m)
        assert len(per_image[m]) == len(dataset) == 8
        np.testing.assert_allclose(per_image[m], values, rtol=1e-7)  # ratio terms amplify rounding
        assert totals[m] == pytest.approx(total, rel=1e-7) and totals[m] > 0
    # the synthetic set is built so that Depth's spectrum dominates (as Table 1's column): a sanity check of scale
    assert totals["depth"] > totals["ir"] and totals["depth"] > totals["rgb"]


def test_batching_and_the_float32_network_inputs_give_the_same_sum(surf_root):
    one = data_frm("casia_surf", surf_root, options=SMALL, batch_size=1)
    many = data_frm("casia_surf", surf_root, options=SMALL, batch_size=64, progress=True)
    exact = data_frm("casia_surf", surf_root, options=SMALL, transform=torch.Tensor.double)
    for m in MODALITIES:
        assert one[m] == pytest.approx(many[m], rel=1e-6)
        # float32 (what MWAM measures) vs float64: Eq. 4 divides by high-frequency coefficients near 0 in flat
        # patches, where float32 rounding is not negligible against sigma = 1e-6 (0.7% on this set's Depth)
        assert many[m] == pytest.approx(exact[m], rel=2e-2)


def test_a_subsets_frm_is_the_sum_of_its_members():
    measured = {"rgb": 1.81e8, "depth": 2.33e10, "ir": 1.02e9}
    assert subset_frm(measured, ("rgb", "depth")) == pytest.approx(2.3481e10, rel=1e-12)
    assert subset_frm(measured, "rgb+ir") == pytest.approx(1.201e9, rel=1e-12)
    assert subset_frm(measured, ["depth"]) == 2.33e10
    column = frm_column(measured, [("rgb",), ("depth",), ("ir",), ("rgb", "depth"), ("rgb", "ir"), ("depth", "ir"),
                                   ("rgb", "depth", "ir")])  # fmt: skip
    assert list(column) == ["rgb", "depth", "ir", "rgb+depth", "rgb+ir", "depth+ir", "rgb+depth+ir"]
    assert column["depth+ir"] == pytest.approx(2.33e10 + 1.02e9) and column["rgb+depth+ir"] == pytest.approx(
        1.81e8 + 2.33e10 + 1.02e9
    )
    with pytest.raises(ValueError, match="no FRM for \\['ir'\\]"):
        subset_frm({"rgb": 1.0}, ("rgb", "ir"))
    with pytest.raises(ValueError, match="distinct"):
        subset_frm(measured, ("rgb", "rgb"))


def test_options_a_built_data_set_another_rule_and_the_training_transform(surf_root):
    dataset = CasiaSurfDataset(surf_root, "val", train=False, **SMALL)
    values = data_frm(dataset, split="val", modalities=["ir"], config=MWAMConfig(rule="low_l1"),
                      transform=torch.Tensor.double)  # fmt: skip
    assert list(values) == ["ir"]
    assert values["ir"] == pytest.approx(_by_hand(dataset, "ir", rule="low_l1")[1], rel=1e-9)
    inferred = data_frm(dataset)  # modalities read from the items
    assert list(inferred) == list(MODALITIES)
    augmented = data_frm("casia_surf", surf_root, options=SMALL, train=True)
    plain = data_frm("casia_surf", surf_root, options=SMALL)
    assert augmented != plain and augmented == data_frm("casia_surf", surf_root, options=SMALL, train=True)
    filtered = data_frm("casia_surf", surf_root, options={**SMALL, "filter": {"kind": "low", "size": 5}})
    assert filtered != plain, "the FRM of a frequency-filtered data set"


def test_bad_arguments_raise(surf_root):
    dataset = CasiaSurfDataset(surf_root, "val", train=False, **SMALL)
    for call, message in [
        (lambda: data_frm("casia_surf"), "needs the data root"),
        (lambda: data_frm("casia_surf", surf_root, "holdout"), "no split 'holdout'"),
        (lambda: data_frm("casia_surf", surf_root, options=SMALL, modalities=["thermal"]), "unknown modalities"),
        (lambda: data_frm("casia_surf", surf_root, options=SMALL, batch_size=0), "batch_size"),
        (lambda: data_frm(dataset, surf_root), "measured as it is"),
        (lambda: data_frm(42), "expected a data set name"),
        (lambda: data_frm("imagenet", surf_root), "imagenet"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()


def test_the_command_line_prints_the_column(surf_root, capsys):
    assert main(["casia_surf", str(surf_root), "--batch-size", "4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == "train" and list(printed["modalities"]) == list(MODALITIES)
    assert list(printed["subsets"])[-1] == "rgb+depth+ir"
    assert printed["subsets"]["rgb+depth"] == pytest.approx(printed["modalities"]["rgb"]
                                                            + printed["modalities"]["depth"])  # fmt: skip
