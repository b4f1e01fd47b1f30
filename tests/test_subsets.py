import dataclasses

import numpy as np
import pytest

from mwam_harness.catalog import DATASETS as REGISTERED
from mwam_harness.datasets.paper_only import PAPER_ONLY, PaperOnlyDataset
from mwam_harness.datasets.registry import SubsetOrder, dataset_spec, list_datasets
from reproduce.subsets import (
    dataset,
    dataset_names,
    display_names,
    marks,
    parse_subset_key,
    subset_key,
    subset_masks,
    subsets,
)

#: Every data set the paper's tables print (registered or known from the paper only).
PAPER_DATASETS = {"casia_surf", "brats2020", "nyuv2", "dronevehicle", "ucf101", "fgvc_aircraft", "stanford_dogs"}


def test_every_paper_data_set_has_an_order_in_exactly_one_place():
    assert PAPER_DATASETS <= set(dataset_names())
    assert set(dataset_names()) == set(list_datasets()) | set(PAPER_ONLY)
    both = set(PAPER_ONLY) & set(list_datasets())
    assert not both, f"{sorted(both)} registered: move the order into the spec and delete the paper_only entry"


@pytest.mark.parametrize("name", dataset_names())
def test_every_non_empty_subset_once_full_set_last(name):
    info = dataset(name)
    order = subsets(name)
    assert len(order) == 2 ** len(info.modalities) - 1 == len(set(order))
    assert order[-1] == info.modalities
    for s in order:
        assert s and tuple(m for m in info.modalities if m in s) == s  # modality order inside each subset
        assert parse_subset_key(name, subset_key(s)) == s
    assert info.evidence


def test_casia_surf_order_is_the_authors_test_loop():
    assert [subset_key(s) for s in subsets("casia_surf")] == [
        "rgb",
        "depth",
        "ir",
        "rgb+depth",
        "rgb+ir",
        "depth+ir",
        "rgb+depth+ir",
    ]
    masks = subset_masks("casia_surf")
    assert masks.tolist()[:3] == [[True, False, False], [False, True, False], [False, False, True]]


def test_brats_order_is_rfnets_mask_order():
    keys = [subset_key(s) for s in subsets("brats2020")]
    assert keys[:4] == ["t2", "t1ce", "t1", "flair"] and keys[5] == "t1ce+t1" and keys[13] == "t1ce+t1+t2"
    assert subset_masks("brats2020").shape == (15, 4)


def test_restricted_blocks_and_marks():
    assert subsets("casia_surf", ("ir", "rgb")) == [("rgb",), ("ir",), ("rgb", "ir")]
    assert subset_masks("casia_surf", ("depth", "ir")).tolist() == [[True, False], [False, True], [True, True]]
    assert marks("casia_surf", ("rgb", "ir")) == ["●", "○", "●"]
    assert marks("brats2020", ("t1ce",)) == ["○", "○", "●", "○"]  # printed header F, T1, T1c, T2
    assert marks("nyuv2", ("depth",), fmt="tex") == [r"$\circ$", r"$\bullet$"]
    assert np.all(subset_masks("nyuv2")[-1])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: subsets("kitti"), "unknown data set"),
        (lambda: subsets("casia_surf", ("rgb",)), "two of"),
        (lambda: parse_subset_key("casia_surf", "rgb+thermal"), "bad subset"),
        (lambda: marks("casia_surf", ("rgb",), fmt="html"), "fmt must be"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("name", "header", "keys"),
    [
        ("casia_surf", ["Rgb", "Depth", "Ir"], None),
        ("nyuv2", ["Rgb", "Depth"], ["rgb", "depth", "rgb+depth"]),
        ("dronevehicle", ["RGB", "IR"], ["rgb", "ir", "rgb+ir"]),
        ("ucf101", ["Video", "O.F."], ["video", "flow", "video+flow"]),
        ("fgvc_aircraft", ["RGB", "Depth"], ["rgb", "depth", "rgb+depth"]),
        ("stanford_dogs", ["Rgb", "Depth"], ["rgb", "depth", "rgb+depth"]),
        ("brats2020", ["F", "T1", "T1c", "T2"], None),
    ],
)
def test_printed_headers_and_two_modality_orders(name, header, keys):
    assert display_names(name) == header
    if keys is not None:
        assert [subset_key(s) for s in subsets(name)] == keys


def test_a_registered_data_set_is_read_from_its_spec():
    for name in list_datasets():
        info, order = dataset(name), dataset_spec(name).subsets
        assert (info.order, info.header, info.evidence) == (order.order, order.header, order.evidence)
    for name, entry in PAPER_ONLY.items():
        assert dataset(name).order == entry.subsets.order and dataset(name).modalities == entry.modalities


def test_subsets_holds_no_order_of_its_own(monkeypatch):
    """A new spec (a monkeypatched catalog entry) brings its own order; so does a changed one."""
    casia = dataset_spec("casia_surf")
    order = (("ir",), ("depth",), ("rgb",), ("depth", "ir"), ("rgb", "ir"), ("rgb", "depth"), ("rgb", "depth", "ir"))
    header = (("ir", "I"), ("rgb", "R"), ("depth", "D"))
    toy = dataclasses.replace(casia, name="toy_surf", subsets=SubsetOrder(header, order, "a test's own order"))
    monkeypatch.setitem(REGISTERED.entries, "toy_surf", toy)
    assert "toy_surf" in dataset_names()
    assert subsets("toy_surf") == list(order) and dataset("toy_surf").evidence == "a test's own order"
    assert display_names("toy_surf") == ["I", "R", "D"] and marks("toy_surf", ("rgb",)) == ["○", "●", "○"]
    assert subset_masks("toy_surf").tolist()[0] == [False, False, True]
    assert parse_subset_key("toy_surf", "ir+rgb") == ("rgb", "ir")

    monkeypatch.setitem(REGISTERED.entries, "casia_surf", dataclasses.replace(toy, name="casia_surf"))
    assert subsets("casia_surf") == list(order)

    paper_only = PaperOnlyDataset(
        "toy_paper", "Toy", ("a", "b"), SubsetOrder((("b", "B"), ("a", "A")), (("b",), ("a",), ("a", "b")), "x")
    )
    monkeypatch.setitem(PAPER_ONLY, "toy_paper", paper_only)
    assert subsets("toy_paper") == [("b",), ("a",), ("a", "b")] and display_names("toy_paper") == ["B", "A"]
