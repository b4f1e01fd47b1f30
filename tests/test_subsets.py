import numpy as np
import pytest

from reproduce.subsets import DATASETS, marks, parse_subset_key, subset_key, subset_masks, subsets


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_non_empty_subset_once_full_set_last(name):
    info = DATASETS[name]
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
