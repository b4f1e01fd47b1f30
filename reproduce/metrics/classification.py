"""Binary accuracy (Eq. 22) and the face anti-spoofing error rates APCER / NPCER / ACER (CASIA-SURF).

Labels follow CASIA-SURF: 1 = real (bona fide), 0 = attack. With bona fide as the positive class,

- Acc   = (TP + TN) / (TP + TN + FP + FN)                        (Eq. 22)
- APCER = attacks classified as bona fide / number of attacks     (= FP / (FP + TN))
- NPCER = bona fide classified as attack / number of bona fide    (= FN / (FN + TP)); ISO/IEC 30107-3 calls it BPCER
- ACER  = (APCER + NPCER) / 2

all in percent. These are the ISO/IEC 30107-3 definitions the CASIA-SURF papers use. Note that the MMANet
code (``calc_accuracy`` in ``classification/lib/model_develop_utils.py``) prints the two names the other
way round (its "APCER" is the bona fide error rate); ACER and Acc are unaffected, and the paper reports Acc.

Undefined values: with no attack sample accumulated APCER is NaN, with no bona fide sample NPCER is NaN,
and ACER is NaN whenever either is; with no sample at all every value is NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch

from .base import State, TaskMetric, check_state, ratio
from .confusion import ConfusionCounts

ATTACK = 0
BONA_FIDE = 1


def _as_labels(predictions: torch.Tensor) -> torch.Tensor:
    """Predicted labels (B,) from logits (B, 2) (argmax, as MMANet does) or from labels (B,)."""
    if predictions.ndim == 2 and predictions.shape[1] == 2:
        return predictions.argmax(dim=1)
    if predictions.ndim == 1:
        if predictions.is_floating_point():
            if not bool(((predictions == 0) | (predictions == 1)).all()):
                raise ValueError("1-D float predictions must be labels 0/1; pass logits as (B, 2)")
        return predictions.long()
    raise ValueError(f"predictions must be logits (B, 2) or labels (B,), got shape {tuple(predictions.shape)}")


class BinaryAccuracy(TaskMetric):
    """Accumulates a 2x2 confusion matrix and reports Acc (Eq. 22), APCER, NPCER and ACER in percent.

    ``compute()`` keys: ``acc``, ``apcer``, ``npcer``, ``acer``. See the module docstring for the label
    convention (1 = bona fide) and when a value is NaN. ``state()``: ``{"confusion": (2, 2) int64}``.
    """

    primary: ClassVar[str] = "acc"
    display_name: ClassVar[str] = "Acc"

    def __init__(self) -> None:
        self._counts = ConfusionCounts(2)
        self.reset()

    def reset(self) -> None:
        """Forget all accumulated samples."""
        self._counts.reset()

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: ``predictions`` logits (B, 2) or labels (B,), ``targets`` labels (B,) in {0, 1}."""
        predicted = _as_labels(predictions)
        targets = targets.reshape(-1)
        if predicted.shape != targets.shape:
            raise ValueError(f"{predicted.shape[0]} predictions for {targets.shape[0]} targets")
        targets = targets.long().to(predicted.device)
        if not bool(((targets == 0) | (targets == 1)).all()) or not bool(((predicted == 0) | (predicted == 1)).all()):
            raise ValueError("binary labels must be 0 (attack) or 1 (bona fide)")
        self._counts.add(targets, predicted)

    @property
    def confusion_matrix(self) -> torch.Tensor:
        """The accumulated counts, rows = target, columns = prediction, index 0 = attack, 1 = bona fide (CPU)."""
        return self._counts.matrix

    def state(self) -> State:
        """``{"confusion": (2, 2) int64}``, the matrix of ``confusion_matrix``."""
        return {"confusion": self.confusion_matrix.clone()}

    def merge(self, state: Mapping[str, torch.Tensor]) -> None:
        """Add another ``BinaryAccuracy``'s counts; the result does not depend on the order of merging."""
        check_state(self, state, {"confusion": (torch.long, (2, 2))})
        self._counts.add_matrix(state["confusion"])

    def compute(self) -> dict[str, float]:
        """Acc (Eq. 22), APCER, NPCER and ACER in percent; NaN where a class is absent (module docstring)."""
        cm = self.confusion_matrix.tolist()
        tn, fp = cm[ATTACK]  # attacks: rejected, accepted as bona fide
        fn, tp = cm[BONA_FIDE]  # bona fide: rejected as attack, accepted
        apcer = ratio(fp, tn + fp, 100.0)
        npcer = ratio(fn, fn + tp, 100.0)
        return {
            "acc": ratio(tp + tn, tp + tn + fp + fn, 100.0),
            "apcer": apcer,
            "npcer": npcer,
            "acer": (apcer + npcer) / 2.0,  # NaN propagates when either is undefined
        }
