"""``state()`` / ``merge()`` of every metric: sharded accumulation merged equals one accumulator fed every batch."""

import copy
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from reproduce.metrics import (
    BinaryAccuracy,
    BratsDice,
    MeanAP50,
    MeanIoU,
    MulticlassAccuracy,
    PredictedLabelHistogram,
    TaskMetric,
    merge_states,
)

Batch = tuple[Any, ...]


@pytest.fixture(scope="module", autouse=True)
def _import_monai_once():
    """BratsDice imports MONAI when built, which takes seconds: do it once, outside the tests' own time."""
    import monai.metrics  # noqa: F401


def _binary_batches() -> list[Batch]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(n, 2, generator=g), torch.randint(0, 2, (n,), generator=g)) for n in (5, 1, 8, 3, 6)]


def _multiclass_batches() -> list[Batch]:
    g = torch.Generator().manual_seed(2)
    out = []
    for n in (6, 2, 9, 4, 7):
        targets = torch.randint(0, 6, (n,), generator=g)  # class 6 of 7 never labelled
        logits = torch.randn(n, 7, generator=g)
        logits[torch.arange(n), targets] += 1.0
        out.append((logits, targets))
    return out


def _miou_batches() -> list[Batch]:
    g = torch.Generator().manual_seed(3)
    out = []
    for i in range(5):
        labels = torch.randint(0, 6, (1, 6, 6), generator=g)  # 0 = void
        preds = torch.where(torch.rand(labels.shape, generator=g) < 0.5, (labels - 1).clamp_min(0), 4 - i % 5)
        out.append((preds if i % 2 else torch.nn.functional.one_hot(preds, 5).movedim(-1, 1).float(), labels))
    return out


def _histogram_batches() -> list[Batch]:
    g = torch.Generator().manual_seed(4)
    return [(torch.randn(n, 4, generator=g),) for n in (3, 7, 1, 5, 2)]


def _brats_batches() -> list[Batch]:
    g = torch.Generator().manual_seed(5)
    out = []
    for n in (2, 1, 3, 1, 2):
        target = torch.randint(0, 4, (n, 8, 8, 8), generator=g)
        noise = torch.randint(0, 4, target.shape, generator=g)
        pred = torch.where(torch.rand(target.shape, generator=g) < 0.7, target, noise)
        out.append((pred, target))
    return out


def _boxes(rng: np.random.Generator, n: int) -> torch.Tensor:
    xy = rng.uniform(0, 80, (n, 2))
    return torch.as_tensor(np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2))], 1), dtype=torch.float32)


def _detection_batches() -> list[Batch]:
    rng = np.random.default_rng(6)
    out = []
    for images in (2, 1, 3, 1, 2):
        preds, targets = [], []
        for _ in range(images):
            n_gt, n_det = int(rng.integers(0, 4)), int(rng.integers(0, 6))
            gt_boxes, gt_labels = _boxes(rng, n_gt), torch.as_tensor(rng.integers(0, 3, n_gt))
            if n_gt:  # jittered GT boxes (some reach IoU 0.5, some not) with the GT's labels
                pick = torch.as_tensor(rng.integers(0, n_gt, n_det))
                boxes = gt_boxes[pick] + torch.as_tensor(rng.normal(0, 3, (n_det, 4)), dtype=torch.float32)
                labels = gt_labels[pick]
            else:  # false alarms
                boxes, labels = _boxes(rng, n_det), torch.as_tensor(rng.integers(0, 3, n_det))
            scores = torch.as_tensor(rng.uniform(0, 1, n_det), dtype=torch.float32)
            preds.append({"boxes": boxes, "scores": scores, "labels": labels})
            targets.append({"boxes": gt_boxes, "labels": gt_labels})
        out.append((preds, targets))
    return out


@dataclass(frozen=True)
class Case:
    make: Callable[[], TaskMetric]
    batches: Callable[[], list[Batch]]
    variants: tuple[Callable[[], TaskMetric], ...]  # differently configured: their states must be rejected
    order_free: bool  # compute() does not depend on the order of the accumulated items


CASES = {
    "binary": Case(BinaryAccuracy, _binary_batches, (), True),
    "multiclass": Case(
        lambda: MulticlassAccuracy(7, top_k=3),
        _multiclass_batches,
        (lambda: MulticlassAccuracy(7, top_k=2), lambda: MulticlassAccuracy(8, top_k=3)),
        True,
    ),
    "miou": Case(lambda: MeanIoU(num_classes=5), _miou_batches, (lambda: MeanIoU(num_classes=4),), True),
    "histogram": Case(
        lambda: PredictedLabelHistogram(4), _histogram_batches, (lambda: PredictedLabelHistogram(3),), True
    ),
    # per-case mean: a float sum, so bit-identity holds for the same order of cases
    "brats": Case(
        lambda: BratsDice(et_postprocess=True, et_min_voxels=20),
        _brats_batches,
        (BratsDice, lambda: BratsDice(et_postprocess=True, et_min_voxels=21)),
        False,
    ),
    # ranking ties in arrival order (the random scores here have no ties, but the contract does not rely on it)
    "detection": Case(MeanAP50, _detection_batches, (lambda: MeanAP50(iou_threshold=0.6),), False),
}
NAMES = list(CASES)


def fed(case: Case, batches: list[Batch]) -> TaskMetric:
    metric = case.make()
    for batch in batches:
        metric.update(*batch)
    return metric


def assert_same_values(a: dict[str, float], b: dict[str, float]) -> None:
    """Exactly equal (``==``), NaN equal to NaN."""
    assert a.keys() == b.keys()
    for key in a:
        assert (math.isnan(a[key]) and math.isnan(b[key])) or a[key] == b[key], (key, a[key], b[key])


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("name", NAMES)
def test_the_data_is_not_degenerate(name):
    case = CASES[name]
    metric = fed(case, case.batches())
    values = metric.compute()
    assert all(math.isfinite(v) for v in values.values())
    assert values[metric.primary] not in (0.0, 1.0, 100.0)  # a constant would hide a broken merge


@pytest.mark.parametrize("split", [0, 1, 2, 4, 5])
@pytest.mark.parametrize("name", NAMES)
def test_split_then_merge_equals_one_accumulator(name, split):
    case = CASES[name]
    batches = case.batches()
    a, b = fed(case, batches[:split]), fed(case, batches[split:])
    a.merge(b.state())
    full = fed(case, batches)  # A's items, then B's: the merged order
    assert_same_state(a.state(), full.state())
    assert_same_values(a.compute(), full.compute())

    b_first = fed(case, batches[split:])
    b_first.merge(fed(case, batches[:split]).state())
    assert_same_values(b_first.compute(), fed(case, batches[split:] + batches[:split]).compute())
    if case.order_free:
        assert_same_values(b_first.compute(), full.compute())


@pytest.mark.parametrize("name", NAMES)
def test_merge_states_of_every_rank(name):
    case = CASES[name]
    batches = case.batches()
    ranks = [batches[r::3] for r in range(3)]  # round-robin, as a distributed sampler hands out batches
    states = [fed(case, shard).state() for shard in ranks]
    merged = merge_states(case.make(), states)
    in_rank_order = fed(case, [batch for shard in ranks for batch in shard])
    assert_same_state(merged.state(), in_rank_order.state())
    assert_same_values(merged.compute(), in_rank_order.compute())
    full = fed(case, batches)
    if case.order_free:
        assert_same_values(merged.compute(), full.compute())
    else:
        assert merged.compute() == pytest.approx(full.compute(), rel=1e-12)
    assert merge_states(merged, []) is merged
    assert_same_values(merged.compute(), in_rank_order.compute())


@pytest.mark.parametrize("name", NAMES)
def test_empty_states(name):
    case = CASES[name]
    empty = case.make().state()
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in empty.values())

    metric = fed(case, case.batches())
    before_state, before_values = metric.state(), metric.compute()
    metric.merge(empty)  # merging an empty state changes nothing
    assert_same_state(metric.state(), before_state)
    assert_same_values(metric.compute(), before_values)

    fresh = case.make()
    fresh.merge(metric.state())  # merging into an empty accumulator gives the other one
    assert_same_state(fresh.state(), before_state)
    assert_same_values(fresh.compute(), before_values)

    nothing = case.make()
    nothing.merge(case.make().state())
    assert_same_values(nothing.compute(), case.make().compute())


@pytest.mark.parametrize("name", NAMES)
def test_state_is_a_picklable_snapshot(name):
    case = CASES[name]
    batches = case.batches()
    a, b = fed(case, batches[:2]), fed(case, batches[2:4])
    state_b = b.state()
    kept = copy.deepcopy(state_b)
    a.merge(pickle.loads(pickle.dumps(state_b)))  # all_gather_object pickles the state
    a.merge(state_b)
    a.update(*batches[4])  # must not write into the merged state
    b.update(*batches[4])  # nor into the state taken earlier
    fresh = case.make()
    fresh.merge(state_b)  # nor, after merging it into an empty accumulator, into that one's counts
    fresh.update(*batches[4])
    assert_same_state(state_b, kept)
    assert_same_values(a.compute(), fed(case, batches[:4] + batches[2:]).compute())


@pytest.mark.parametrize(("name", "variant"), [(name, i) for name in NAMES for i in range(len(CASES[name].variants))])
def test_state_of_a_differently_configured_metric_is_rejected(name, variant):
    case = CASES[name]
    metric = fed(case, case.batches())
    before = metric.state()
    with pytest.raises(ValueError, match="differently configured"):
        metric.merge(case.variants[variant]().state())
    assert_same_state(metric.state(), before)  # a rejected state leaves the accumulator as it was


@pytest.mark.parametrize("receiver", NAMES)
def test_state_of_another_metric_class_is_rejected(receiver):
    metric = CASES[receiver].make()
    for name in NAMES:
        if name != receiver:
            with pytest.raises(ValueError, match=f"not a {type(metric).__name__} state"):
                metric.merge(CASES[name].make().state())


def test_malformed_states_are_rejected():
    metric = MulticlassAccuracy(4, top_k=2)
    good = metric.state()
    with pytest.raises(ValueError, match="expected keys"):
        metric.merge({k: v for k, v in good.items() if k != "topk_hits"})
    with pytest.raises(ValueError, match="expected keys"):
        metric.merge({**good, "extra": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"must be a torch\.Tensor"):
        metric.merge({**good, "topk_hits": 3})
    with pytest.raises(ValueError, match="dtype"):
        metric.merge({**good, "confusion": good["confusion"].float()})
    with pytest.raises(ValueError, match="shape"):
        metric.merge({**good, "topk_hits": torch.zeros(1, dtype=torch.long)})
    with pytest.raises(ValueError, match="differently configured"):
        metric.merge({**good, "top_k": torch.tensor(3)})
    detection = MeanAP50()
    state = detection.state()
    with pytest.raises(ValueError, match="same length"):
        detection.merge({**state, "labels": torch.zeros(1, dtype=torch.long)})
    with pytest.raises(ValueError, match="same length"):
        detection.merge({**state, "gt_counts": torch.ones(1, dtype=torch.long)})


def test_miou_zero_union_only_enters_compute():
    labels, preds = torch.tensor([[1, 1, 2, 2]]), torch.tensor([[0, 0, 1, 0]])  # class 2: zero union
    excluded = MeanIoU(num_classes=3, zero_union="exclude")
    excluded.update(preds, labels)
    esanet = MeanIoU(num_classes=3)
    esanet.merge(excluded.state())  # the same counts: accepted, and read with this accumulator's convention
    assert torch.equal(esanet.confusion_matrix, excluded.confusion_matrix)
    assert esanet.compute()["miou"] == pytest.approx(100 * (2 / 3 + 1 / 2) / 3)
    assert excluded.compute()["miou"] == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)


def test_brats_merge_keeps_cases_in_merged_order():
    batches = _brats_batches()
    a, b = fed(CASES["brats"], batches[:2]), fed(CASES["brats"], batches[2:])
    expected = torch.cat([a.per_case, b.per_case])
    a.merge(b.state())
    assert torch.equal(a.per_case, expected)
    assert a.per_case.shape[0] == sum(batch[0].shape[0] for batch in batches)


def _image(score: float, hit: bool) -> Batch:
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    far = torch.tensor([[50.0, 50.0, 60.0, 60.0]])
    pred = {"boxes": box if hit else far, "scores": torch.tensor([score]), "labels": torch.tensor([0])}
    return [pred], [{"boxes": box, "labels": torch.tensor([0])}]


def test_detection_ties_are_ranked_in_merged_order():
    # Two images, one GT box each, one detection each with the same score: a hit in X, a miss in Y.
    x, y = _image(0.5, hit=True), _image(0.5, hit=False)
    # Ranked hit, miss: recall 1/2, 1/2 and precision 1, 1/2: the 51 recall points 0..0.5 sample 1 -> AP 51 / 101.
    # Ranked miss, hit: recall 0, 1/2 and precision 0, 1/2 -> monotone 1/2, 1/2 -> AP 25.5 / 101.
    a, b = MeanAP50(), MeanAP50()
    a.update(*x)
    b.update(*y)
    a.merge(b.state())
    b.merge(fed(CASES["detection"], [x]).state())
    assert a.compute()["map50"] == fed(CASES["detection"], [x, y]).compute()["map50"] == pytest.approx(51 / 101)
    assert b.compute()["map50"] == fed(CASES["detection"], [y, x]).compute()["map50"] == pytest.approx(25.5 / 101)


def test_detection_without_ties_does_not_depend_on_order():
    batches = _detection_batches()
    scores = torch.cat([p["scores"] for preds, _ in batches for p in preds])
    assert torch.unique(scores).numel() == scores.numel()
    reversed_shards = merge_states(MeanAP50(), [fed(CASES["detection"], [batch]).state() for batch in batches[::-1]])
    assert reversed_shards.compute() == fed(CASES["detection"], batches).compute()


def test_a_metric_must_implement_state_and_merge():
    class NoMerge(TaskMetric):
        primary: ClassVar[str] = "x"
        display_name: ClassVar[str] = "X"

        def reset(self) -> None: ...

        def update(self, *args: Any, **kwargs: Any) -> None: ...

        def compute(self) -> dict[str, float]:
            return {"x": 0.0}

    with pytest.raises(TypeError, match="merge"):
        NoMerge()  # type: ignore[abstract]


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["binary", "multiclass", "miou", "histogram"])
def test_merge_into_an_accumulator_on_cuda(name):
    case = CASES[name]
    batches = case.batches()
    on_cuda = case.make()
    for batch in batches[:3]:
        on_cuda.update(*(x.cuda() for x in batch))
    on_cuda.merge(fed(case, batches[3:]).state())
    assert all(v.device.type == "cpu" for v in on_cuda.state().values())
    assert_same_state(on_cuda.state(), fed(case, batches).state())
