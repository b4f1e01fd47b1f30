"""BraTS Dice (Eq. 25) for whole tumour, tumour core and enhancing tumour, per case, averaged over cases.

Conventions, as in the evaluation code of the BraTS hosts (RFNet ``predict.py``, mmFormer ``predict.py``,
``softmax_output_dice_class4``):

- label sets: 0 background, 1 necrosis / non-enhancing core, 2 oedema, 3 enhancing tumour; the original
  BraTS label 4 for enhancing tumour is remapped to 3, in ground truth and prediction alike, so both label
  sets are accepted. A volume holding both 3 and 4 (the BraTS 2015 five-class set) is rejected.
- regions: WT = {1, 2, 3}, TC = {1, 3}, ET = {3}.
- Dice per case and region, then the plain mean over cases (RFNet's ``AverageMeter``).
- empty ground truth and empty prediction: Dice 1; empty ground truth, non-empty prediction: Dice 0.
  RFNet gets these from ``(2 |X∩Y| + eps) / (|X| + |Y| + eps)`` with eps = 1e-8 (so its 0 is ~1e-8 / |X|);
  MONAI's ``compute_dice`` with ``ignore_empty=False`` gives exactly 1 and 0 for the two cases, and is used.
- ``et_postprocess`` (RFNet's / mmFormer's ``enhancing_postpro``): when a case's predicted ET has fewer than
  ``et_min_voxels`` (500) voxels, the ET prediction is emptied. The authors only zero the ET mask used for
  the ET Dice and keep computing WT and TC from the unchanged prediction, which is the same as relabelling
  those voxels as necrosis (label 1): they stay in WT and TC. That is what is done here. The authors count
  the voxels over the whole test batch (their batch size is 1); they are counted per case here.

Values in percent. The primary value (Table 2) is WT Dice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import torch

from .base import State, TaskMetric, check_state

REGIONS: dict[str, tuple[int, ...]] = {"wt": (1, 2, 3), "tc": (1, 3), "et": (3,)}
NECROSIS = 1
ENHANCING = 3
RFNET_ET_MIN_VOXELS = 500


def _canonical_labels(volume: torch.Tensor, what: str) -> torch.Tensor:
    """(B, D, H, W) integer labels in 0..3, from (B, D, H, W) or (B, 1, D, H, W) in {0,1,2,3} or {0,1,2,4}."""
    if volume.ndim == 5 and volume.shape[1] == 1:
        volume = volume[:, 0]
    if volume.ndim != 4:
        raise ValueError(f"{what} must be label volumes (B, D, H, W), got shape {tuple(volume.shape)}")
    if volume.is_floating_point():
        raise ValueError(f"{what} must be integer label volumes, got {volume.dtype}")
    volume = volume.long()
    if volume.numel() and (int(volume.min()) < 0 or int(volume.max()) > 4):
        raise ValueError(f"{what} labels must lie in 0..4")
    has_three = (volume == 3).flatten(1).any(dim=1)
    has_four = (volume == 4).flatten(1).any(dim=1)
    if bool((has_three & has_four).any()):
        raise ValueError(f"{what}: a volume holds both labels 3 and 4 (BraTS 2015 label set is not supported)")
    return torch.where(volume == 4, torch.full_like(volume, ENHANCING), volume)


def postprocess_et(prediction: torch.Tensor, min_voxels: int = RFNET_ET_MIN_VOXELS) -> torch.Tensor:
    """RFNet's ET rule per case: fewer than ``min_voxels`` predicted ET voxels become necrosis (label 1).

    ``prediction``: (B, D, H, W) labels in 0..3. Returns a new tensor; WT and TC are unchanged by construction.
    """
    enhancing = prediction == ENHANCING
    small = enhancing.flatten(1).sum(dim=1) < min_voxels  # (B,)
    relabel = enhancing & small.view(-1, *([1] * (prediction.ndim - 1)))
    return torch.where(relabel, torch.full_like(prediction, NECROSIS), prediction)


def _region_masks(labels: torch.Tensor) -> torch.Tensor:
    """(B, 3, D, H, W) float masks of WT, TC, ET (channel order of ``REGIONS``)."""
    return torch.stack([torch.isin(labels, torch.tensor(v, device=labels.device)) for v in REGIONS.values()], 1).float()


class BratsDice(TaskMetric):
    """Per-case Dice (Eq. 25) of WT, TC and ET in percent, averaged over cases; see the module docstring.

    ``compute()`` keys: ``wt``, ``tc``, ``et`` (NaN before any case is added). ``et`` is the post-processed
    ET Dice when ``et_postprocess`` is set. ``state()``: ``{"per_case_dice": (N, 3) float64, "et_postprocess": ()
    bool, "et_min_voxels": () int64}``, the cases in the order they were added, and the configuration.
    """

    primary: ClassVar[str] = "wt"
    display_name: ClassVar[str] = "Dice"

    def __init__(self, et_postprocess: bool = False, et_min_voxels: int = RFNET_ET_MIN_VOXELS) -> None:
        from monai.metrics import compute_dice  # lazy: importing monai takes seconds

        self._compute_dice = compute_dice
        self.et_postprocess = et_postprocess
        self.et_min_voxels = et_min_voxels
        self._per_case: list[torch.Tensor] = []
        self.reset()

    def reset(self) -> None:
        """Forget all accumulated cases."""
        self._per_case = []

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch of cases: predicted and ground-truth label volumes (B, D, H, W), label sets as documented."""
        predictions = _canonical_labels(predictions, "predictions")
        targets = _canonical_labels(targets, "targets").to(predictions.device)
        if predictions.shape != targets.shape:
            raise ValueError(f"prediction shape {tuple(predictions.shape)} != target shape {tuple(targets.shape)}")
        if self.et_postprocess:
            predictions = postprocess_et(predictions, self.et_min_voxels)
        # ignore_empty=False: empty GT & empty prediction -> 1, empty GT & non-empty prediction -> 0 (checked in
        # tests/test_metrics_brats_dice.py), which is the BraTS hosts' convention; no special-casing needed.
        dice = self._compute_dice(_region_masks(predictions), _region_masks(targets), ignore_empty=False)
        self._per_case.append(dice.detach().double().cpu())

    @property
    def per_case(self) -> torch.Tensor:
        """(N, 3) Dice in [0, 1] per accumulated case, columns WT, TC, ET."""
        if not self._per_case:
            return torch.zeros(0, len(REGIONS), dtype=torch.float64)
        return torch.cat(self._per_case)

    def _config(self) -> State:
        return {
            "et_postprocess": torch.tensor(self.et_postprocess, dtype=torch.bool),
            "et_min_voxels": torch.tensor(self.et_min_voxels, dtype=torch.long),
        }

    def state(self) -> State:
        """``per_case`` (N, 3) as ``per_case_dice``, plus ``et_postprocess`` and ``et_min_voxels``."""
        return {"per_case_dice": self.per_case.clone(), **self._config()}

    def merge(self, state: Mapping[str, torch.Tensor]) -> None:
        """Append another ``BratsDice``'s cases (same ``et_postprocess`` and ``et_min_voxels``) after this one's.

        The per-case values are exact; the mean over cases is a float sum, so ``compute()`` is bit-identical to
        that of one accumulator fed the cases in the merged order (this one's, then the state's), and equal to
        rounding (~1e-16 relative) in any other order.
        """
        check_state(self, state, {"per_case_dice": (torch.float64, (None, len(REGIONS)))}, self._config())
        self._per_case.append(state["per_case_dice"].detach().cpu().clone())

    def compute(self) -> dict[str, float]:
        """Mean over cases of the per-case Dice, in percent; NaN for every region when no case was added."""
        scores = self.per_case
        if scores.shape[0] == 0:
            return dict.fromkeys(REGIONS, math.nan)
        means = (scores.mean(dim=0) * 100.0).tolist()
        return dict(zip(REGIONS, means, strict=True))


class BratsDiceReport(TaskMetric):
    """What the BraTS hosts report per subset: WT, TC and ET Dice and the post-processed ET (``et_post``: ET emptied
    when fewer than ``et_min_voxels`` voxels are predicted, RFNet's ``enhancing_postpro``), per case, averaged.

    Two :class:`BratsDice` accumulators fed the same cases; ``state()`` holds both (``plain_*`` / ``post_*``)."""

    primary: ClassVar[str] = "wt"
    display_name: ClassVar[str] = "Dice"

    def __init__(self, et_min_voxels: int = RFNET_ET_MIN_VOXELS) -> None:
        self.plain = BratsDice()
        self.post = BratsDice(et_postprocess=True, et_min_voxels=et_min_voxels)

    def reset(self) -> None:
        self.plain.reset()
        self.post.reset()

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        self.plain.update(predictions, targets)
        self.post.update(predictions, targets)

    def state(self) -> State:
        return {
            **{f"plain_{k}": v for k, v in self.plain.state().items()},
            **{f"post_{k}": v for k, v in self.post.state().items()},
        }

    def merge(self, state: Mapping[str, torch.Tensor]) -> None:
        for prefix, metric in (("plain_", self.plain), ("post_", self.post)):
            part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if not part:
                raise ValueError(f"BratsDiceReport.merge: the state has no {prefix}* entries (another metric's?)")
            metric.merge(part)

    def compute(self) -> dict[str, float]:
        return {**self.plain.compute(), "et_post": self.post.compute()["et"]}
