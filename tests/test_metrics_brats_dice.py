import math

import pytest
import torch

from reproduce.metrics import BratsDice, postprocess_et

SIDE = 16  # tiny 16^3 volumes


def volume(**labelled: range) -> torch.Tensor:
    """A (16, 16, 16) label volume with ``label_<k>=range(...)`` of flat voxel indices set to k."""
    flat = torch.zeros(SIDE**3, dtype=torch.long)
    for name, indices in labelled.items():
        flat[list(indices)] = int(name.removeprefix("label_"))
    return flat.reshape(SIDE, SIDE, SIDE)


@pytest.fixture(scope="module")
def monai_compute_dice():
    from monai.metrics import compute_dice

    return compute_dice


def test_monai_ignore_empty_false_matches_the_brats_convention(monai_compute_dice):
    empty = torch.zeros(1, 1, 4, 4, 4)
    one = empty.clone()
    one[0, 0, 1, 1, 1] = 1
    assert monai_compute_dice(empty, empty, ignore_empty=False).item() == 1.0  # empty GT, empty prediction
    assert monai_compute_dice(one, empty, ignore_empty=False).item() == 0.0  # empty GT, non-empty prediction
    assert math.isnan(monai_compute_dice(empty, empty, ignore_empty=True).item())  # MONAI's default would not do


def test_hand_computed_per_case_mean():
    # Case 1, original BraTS labels: GT necrosis 0-3, oedema 4-11, enhancing (label 4) 12-15.
    # Prediction: oedema 0-9, necrosis 10-13, enhancing 14-17.
    # WT: |P|=18, |G|=16, overlap 16 -> 32/34. TC: P 10-17, G {0-3, 12-15} -> 2*4/16. ET: P 14-17, G 12-15 -> 2*2/8.
    gt1 = volume(label_1=range(0, 4), label_2=range(4, 12), label_4=range(12, 16))
    pred1 = volume(label_2=range(0, 10), label_1=range(10, 14), label_3=range(14, 18))
    # Case 2: empty GT, empty prediction -> 1 everywhere. Case 3: empty GT, one oedema voxel -> WT 0, TC 1, ET 1.
    gt2 = volume()
    pred3 = volume(label_2=range(100, 101))
    metric = BratsDice()
    metric.update(pred1[None], gt1[None])
    metric.update(torch.stack([gt2, pred3]), torch.stack([gt2, gt2]))
    per_case = metric.per_case
    assert per_case[0].tolist() == pytest.approx([32 / 34, 0.5, 0.5])
    assert per_case[1].tolist() == [1.0, 1.0, 1.0]
    assert per_case[2].tolist() == [0.0, 1.0, 1.0]
    out = metric.compute()
    assert out["wt"] == pytest.approx(100 * (32 / 34 + 1 + 0) / 3)
    assert out["tc"] == pytest.approx(100 * 2.5 / 3)
    assert out["et"] == pytest.approx(100 * 2.5 / 3)


def test_label_4_and_label_3_are_the_same_enhancing_tumour():
    gt_old = volume(label_1=range(0, 20), label_2=range(20, 60), label_4=range(60, 70))
    gt_new = volume(label_1=range(0, 20), label_2=range(20, 60), label_3=range(60, 70))
    pred = volume(label_2=range(5, 50), label_3=range(50, 66))
    a, b, c = BratsDice(), BratsDice(), BratsDice()
    a.update(pred[None], gt_old[None])
    b.update(pred[None], gt_new[None])
    c.update(torch.where(pred == 3, 4, pred)[None], gt_new[None, None])  # prediction in label 4, GT as (B, 1, D, H, W)
    assert a.compute() == b.compute() == c.compute()
    with pytest.raises(ValueError, match="both labels 3 and 4"):
        a.update(pred[None], volume(label_3=range(0, 2), label_4=range(2, 4))[None])


def test_et_postprocess_moves_small_enhancing_predictions_to_necrosis():
    small = volume(label_3=range(0, 300))  # 300 < 500 predicted ET voxels
    assert postprocess_et(small[None]).eq(1).sum() == 300 and postprocess_et(small[None]).eq(3).sum() == 0
    kept = volume(label_3=range(0, 500))  # exactly 500: kept
    assert torch.equal(postprocess_et(kept[None]), kept[None])
    assert postprocess_et(small[None], min_voxels=300).eq(3).sum() == 300

    false_alarm = volume(label_3=range(1000, 1010))  # 10 ET voxels on an empty GT
    empty = volume()
    big = volume(label_3=range(0, 600))
    preds = torch.stack([small, false_alarm, big])
    gts = torch.stack([small, empty, big])
    raw, post = BratsDice(), BratsDice(et_postprocess=True)
    raw.update(preds, gts)
    post.update(preds, gts)
    assert raw.per_case.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    # small true ET is lost (ET 0) but stays in WT/TC; the false alarm vanishes from ET (1) but not from WT/TC.
    assert post.per_case.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
    assert post.compute()["et"] == pytest.approx(100 * 2 / 3)


def test_invalid_inputs_and_empty():
    metric = BratsDice(et_postprocess=True)
    assert (metric.primary, metric.display_name) == ("wt", "Dice")
    assert all(math.isnan(v) for v in metric.compute().values())
    with pytest.raises(ValueError, match="integer"):
        metric.update(torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"0\.\.4"):
        metric.update(torch.full((1, 4, 4, 4), 5), torch.zeros(1, 4, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, D, H, W\)"):
        metric.update(torch.zeros(4, 4, 4, dtype=torch.long), torch.zeros(4, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        metric.update(torch.zeros(1, 4, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, 5, dtype=torch.long))
