"""Ultralytics' ``DetectionTrainer`` for the two-stream YOLOv8n: the 6-channel data set, the model built by the
host registry, MWAM measured on the RGB / IR halves of every batch and applied in ``optimizer_step``, and the
losses, validation metrics and MWAM's FRM / T / K logged through the repository's tracker (W&B) and ``curves.csv``.

Everything else -- augmentation, loss, EMA, warm-up, schedule, AMP, ``last.pt`` / ``best.pt``, plots and resume
at epoch boundaries -- is ultralytics' own (see :mod:`reproduce.methods.ultralytics` for the recipe options).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from copy import copy
from dataclasses import dataclass, field
from typing import Any

import torch

from models.yolo.offline import ultralytics_offline

ultralytics_offline()

import ultralytics.engine.trainer as ultralytics_trainer  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import LOGGER, WEIGHTS_DIR  # noqa: E402
from ultralytics.utils.torch_utils import unwrap_model  # noqa: E402

from mwam import MWAM  # noqa: E402

from .validator import TwoStreamDetectionValidator  # noqa: E402

#: The global gradient-norm bound of ultralytics' ``optimizer_step``.
MAX_GRAD_NORM = 10.0
AMP_CHECK_WEIGHTS = "yolo26n.pt"


@dataclass
class TwoStreamSettings:
    """What the trainer needs beyond ultralytics' arguments (built by the runner from the run configuration).

    host: registered host name and options; hsv: the data set's HSV option; mwam_intervention: ``off`` / ``none``
    / ``grad`` (the run's ``mwam.intervention``) with ``mwam_options``; mwam_edit / mwam_clip: where MWAM edits the
    step; log: called with (values, step) for the tracker (and ``log.start(step, resumed)``, if it has one, once
    training is set up); log_every: batches between step logs; step_callbacks:
    called with (trainer, batch number) after every batch.
    """

    host: str = "two_stream_yolov8n"
    host_options: dict[str, Any] = field(default_factory=dict)
    hsv: str = "rgb"
    mwam_intervention: str = "off"
    mwam_options: dict[str, Any] = field(default_factory=dict)
    mwam_edit: str = "optimizer_step"
    mwam_clip: str = "after_scaling"
    log: Callable[[dict[str, float], int], None] | None = None
    log_every: int = 10
    step_callbacks: list[Callable[[Any, int], None]] = field(default_factory=list)


@contextlib.contextmanager
def offline_amp_check() -> Iterator[None]:
    """Ultralytics' CUDA AMP check loads ``yolo26n.pt``, a download offline; without that file the check is
    skipped (AMP stays on, as ultralytics does when it is offline) instead of failing the run."""
    original = ultralytics_trainer.check_amp

    def check(model: Any) -> bool:
        if (WEIGHTS_DIR / AMP_CHECK_WEIGHTS).is_file():
            return original(model)
        LOGGER.warning(f"AMP: check skipped ({WEIGHTS_DIR / AMP_CHECK_WEIGHTS} absent and no download offline)")
        return True

    ultralytics_trainer.check_amp = check
    try:
        yield
    finally:
        ultralytics_trainer.check_amp = original


def optimizer_step_with_mwam(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    ema: Any,
    mwam: MWAM | None,
    window: list[torch.Tensor],
    clip: str = "after_scaling",
) -> torch.Tensor | None:
    """Ultralytics' ``BaseTrainer.optimizer_step`` (unscale, clip to norm 10, step, update, zero, EMA) with MWAM's
    K applied to the accumulated branch gradients: the mean of ``window`` (the K of each accumulated mini-batch,
    emptied here), before the clip (``after_scaling``) or after it (``before_scaling``). ``mwam`` None: no editing.
    Returns the K applied, or None."""
    scaler.unscale_(optimizer)
    scale = torch.stack(window).mean(0) if mwam is not None and window else None
    if scale is not None and clip == "after_scaling":
        mwam.scale_gradients(scale)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=MAX_GRAD_NORM)
    if scale is not None and clip == "before_scaling":
        mwam.scale_gradients(scale)
    window.clear()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad()
    if ema:
        ema.update(model)
    return scale


class TwoStreamDetectionTrainer(DetectionTrainer):
    """``DetectionTrainer`` with the two-stream model, the RGB+IR data set and MWAM (module docstring)."""

    def __init__(self, settings: TwoStreamSettings, overrides: dict[str, Any], _callbacks: dict | None = None) -> None:
        self.settings = settings
        self.mwam: MWAM | None = None
        self.mwam_window: list[torch.Tensor] = []
        self.applied_weight: torch.Tensor | None = None
        self.batches_seen = 0
        super().__init__(overrides=overrides, _callbacks=_callbacks)
        self.add_callback("on_train_batch_end", TwoStreamDetectionTrainer._after_batch)
        self.add_callback("on_fit_epoch_end", TwoStreamDetectionTrainer._after_epoch)

    # ------------------------------------------------------------------ model and data
    def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> Any:
        import models

        model = models.build(self.settings.host, nc=self.data["nc"], **self.settings.host_options)
        model = self.set_model_names_for_load(model)
        if weights:
            model.load(weights)
        return model

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> Any:
        from datasets.dronevehicle.loader import build_two_stream_dataset

        stride = max(int(unwrap_model(self.model).stride.max()), 32)
        return build_two_stream_dataset(
            self.args, img_path, batch, self.data, mode=mode, rect=mode == "val", stride=stride, hsv=self.settings.hsv
        )

    def get_validator(self) -> TwoStreamDetectionValidator:
        return TwoStreamDetectionValidator(
            self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks,
            hsv=self.settings.hsv,
        )  # fmt: skip

    # ------------------------------------------------------------------ MWAM
    def _setup_train(self) -> None:
        with offline_amp_check():
            super()._setup_train()
        self.mwam = self.build_mwam()
        self.batches_seen = self.start_epoch * len(self.train_loader)
        start = getattr(self.settings.log, "start", None)
        if start is not None:
            start(self.batches_seen, bool(self.resume))
        state = self.wdir / "mwam.pt"
        if self.mwam is not None and self.resume and state.is_file():
            self.mwam.load_state_dict(torch.load(state, map_location=self.device, weights_only=True))
            LOGGER.info(f"MWAM: resumed its FRM bank from {state}")

    def build_mwam(self) -> MWAM | None:
        """MWAM on the trained model's backbones (``off``: none; ``none``: it measures only)."""
        s = self.settings
        if s.mwam_intervention == "off":
            return None
        model = unwrap_model(self.model)
        hooks = s.mwam_edit == "backward"
        mwam = MWAM(branches=model.branches(), intervention=s.mwam_intervention, gradient_hooks=hooks, **s.mwam_options)
        return mwam.to(self.device)

    def preprocess_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ultralytics' preprocessing (device, /255, multi-scale), then MWAM measures the RGB and IR halves."""
        batch = super().preprocess_batch(batch)
        if self.mwam is not None:
            image = batch["img"]
            with torch.autocast(self.device.type, enabled=False):
                self.mwam.step({"rgb": image[:, :3].float(), "ir": image[:, 3:].float()})
            self.mwam_window.append(self.mwam.grad_scale.clone())
        return batch

    def _edits_at_step(self) -> bool:
        s = self.settings
        return self.mwam is not None and s.mwam_intervention == "grad" and s.mwam_edit == "optimizer_step"

    def optimizer_step(self) -> None:
        """Ultralytics' step with MWAM's Alg. 1 line 8 (:func:`optimizer_step_with_mwam`)."""
        applied = optimizer_step_with_mwam(
            self.model, self.optimizer, self.scaler, self.ema,
            self.mwam if self._edits_at_step() else None, self.mwam_window, self.settings.mwam_clip,
        )  # fmt: skip
        if applied is not None:
            self.applied_weight = applied

    def save_model(self) -> Any:
        """Ultralytics' ``last.pt`` / ``best.pt``, and MWAM's bank beside them (``weights/mwam.pt``) for resuming."""
        saved = super().save_model()
        if self.mwam is not None:
            torch.save(self.mwam.state_dict(), self.wdir / "mwam.pt")
        return saved

    # ------------------------------------------------------------------ logging
    def _after_batch(self) -> None:
        self.batches_seen += 1
        s = self.settings
        for callback in s.step_callbacks:
            callback(self, self.batches_seen)
        if s.log is None or self.batches_seen % s.log_every:
            return
        values = {f"loss/{k}": float(v) for k, v in (self.loss_items or {}).items()}
        values["lr"] = float(self.optimizer.param_groups[0]["lr"])
        if self.mwam is not None:
            values.update(self.mwam.record().log_dict())
            if self.applied_weight is not None:
                values.update(
                    {
                        f"mwam/K_applied/{m}": float(k)
                        for m, k in zip(self.mwam.modalities, self.applied_weight, strict=True)
                    }
                )
        s.log(values, self.batches_seen)

    def _after_epoch(self) -> None:
        if self.settings.log is None:
            return
        values = {f"epoch/{k}": float(v) for k, v in (self.label_loss_items(self.tloss) if self.tloss else {}).items()}
        values.update({f"val/{k}": float(v) for k, v in (self.metrics or {}).items()})
        values["epoch"] = float(self.epoch + 1)
        self.settings.log(values, self.batches_seen)
