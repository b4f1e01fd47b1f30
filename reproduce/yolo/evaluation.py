"""Every modality subset of Table 12 (RGB, IR, RGB+IR, in the paper's order) through ultralytics' validator.

For each subset the trained model (``best.pt``, or ``last.pt`` without per-epoch validation) is validated with the
absent stream removed (:meth:`models.yolo.two_stream.TwoStreamDetectionModel.use_modalities`), on the run's
``eval.split`` with the fork's test settings. Each subset's folder ``<run>/eval/<subset>/`` gets ultralytics' plots
(PR / F1 curves, confusion matrices, prediction mosaics), ``pr_curve.json`` (Fig. 7) and ``detections.json``
(the first images' detections and targets in original pixels, Fig. 6).

:func:`validate_subset` is the masking of one subset, shared with the trainer's per-epoch validation of the
single-modality subsets (:meth:`reproduce.yolo.trainer.TwoStreamDetectionTrainer.validate_subsets`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mwam_harness.models.yolo.offline import ultralytics_offline

ultralytics_offline()

from ultralytics.nn.tasks import load_checkpoint  # noqa: E402

from reproduce.subsets import subset_key  # noqa: E402

from .validator import TwoStreamDetectionValidator  # noqa: E402

KEEP_IMAGES = 8


def evaluate_subsets(
    weights: str | Path,
    arguments: dict[str, Any],
    subsets: Sequence[tuple[str, ...]],
    out_dir: str | Path,
    hsv: str = "rgb",
    keep_images: int = KEEP_IMAGES,
) -> dict[str, dict[str, float]]:
    """``{subset key: {"map50", "map50_95", "precision", "recall", "map50_coco"}}`` for ``subsets`` of the model in
    the ultralytics checkpoint ``weights``, validated with ``arguments`` (:func:`reproduce.yolo.arguments.
    validation_arguments`)."""
    model, _ = load_checkpoint(weights)
    if not hasattr(model, "use_modalities"):
        raise TypeError(f"{weights} does not hold a two-stream model (got {type(model).__name__})")
    out_dir = Path(out_dir)
    results: dict[str, dict[str, float]] = {}
    for subset in subsets:
        key = subset_key(subset)
        save_dir = out_dir / key
        validator = TwoStreamDetectionValidator(
            save_dir=save_dir, args=dict(arguments), keep_images=keep_images, hsv=hsv
        )
        results[key] = validate_subset(validator, model, subset)
        (save_dir / "pr_curve.json").write_text(json.dumps(validator.pr_curve()), encoding="utf-8")
        (save_dir / "detections.json").write_text(json.dumps(validator.kept), encoding="utf-8")
    return results


def validate_subset(
    validator: TwoStreamDetectionValidator, model: Any, subset: Sequence[str], trainer: Any = None
) -> dict[str, float]:
    """``validator``'s metrics (:meth:`TwoStreamDetectionValidator.results`) of the two-stream ``model`` that sees only
    ``subset`` (:meth:`~models.yolo.two_stream.TwoStreamDetectionModel.use_modalities`, the absent stream removed;
    the full set restored after). Standalone (``trainer`` None: ultralytics validates a copy of ``model``), or as
    ultralytics validates during training (``trainer``: ``model`` must be its EMA model, ``trainer.ema.ema``, which
    the validator reads in place, in eval mode and without gradients)."""
    if trainer is not None and model is not trainer.ema.ema:
        raise ValueError("during training ultralytics validates the trainer's EMA model: pass trainer.ema.ema")
    with model.use_modalities(subset):
        stats = validator(model=model) if trainer is None else validator(trainer=trainer)
    return validator.results(stats)
