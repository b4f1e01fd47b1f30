"""Ultralytics' ``DetectionTrainer`` for the two-stream YOLOv8n: the 6-channel data set, the model built by the
host registry, the training plug-ins MWAM and SDE (``reproduce.methods``: the same :class:`MWAMPlugin` and
:class:`SDEPlugin` as the engine's trainer uses, driven through a :class:`~reproduce.methods.context.LoopContext`),
and the losses, validation metrics and the plug-ins' values logged through the repository's tracker (W&B) and
``curves.csv``.

Where ultralytics' loop calls each plug-in hook (``BaseTrainer._do_train`` of ultralytics 8.4):

==========================  ==========================================================================================
hook                        where
==========================  ==========================================================================================
``setup``                   ``_setup_train``, after ultralytics' own (model on the device, optimiser, EMA, resume)
plug-in state (resume)      right after ``setup`` from ``weights/plugins.pt`` when resuming
``on_train_start``          after that, before the first (or resumed) epoch
``before_forward``          ``preprocess_batch`` (on the device, /255), autocast off: ``{"rgb": img[:, :3],
                            "ir": img[:, 3:]}``; MWAM measures FRM -> bank -> T -> K, SDE starts the step at the
                            run's progress (epoch + batch / batches) / epochs
SDE's ``loss``              inside ``model(batch)``: :meth:`TwoStreamDetectionModel.loss` appends the term times the
                            batch size to ultralytics' loss vector (see there for the scaling)
``before_optimizer_step``   ``optimizer_step``, after ``scaler.unscale_``: MWAM's deferred edit (mean K of the
                            accumulated mini-batches) before the global ``clip_grad_norm_(10)`` (``mwam_clip:
                            after_scaling``) or after it (``before_scaling``); ``mwam_edit: backward`` edits in
                            backward through MWAM's tensor hooks instead (the hook does nothing then)
``on_log``                  ``on_train_batch_end`` every ``log_every`` batches: loss items, lr, SDE's step terms,
                            MWAM's FRM / T / K / K applied, SDE's energies
``on_epoch_end``            ``save_metrics`` (after validation, before ``save_model``): SDE's epoch means, its loss
                            terms also as ``sde/*`` columns of ``results.csv`` (the run's history)
plug-in state (saved)       ``save_model``: ``weights/plugins.pt`` beside ``last.pt`` (MWAM's bank, SDE's generator)
==========================  ==========================================================================================

Everything else -- augmentation, loss, EMA, warm-up, schedule, AMP, ``last.pt`` / ``best.pt``, plots and resume
at epoch boundaries -- is ultralytics' own (see :mod:`reproduce.methods.ultralytics` for the recipe options).

Per-epoch validation of every subset (:meth:`TwoStreamDetectionTrainer.validate_subsets`): ultralytics validates the
full set (RGB + IR) after every epoch; at the end of every ``runtime.val_every``-th epoch with ``runtime.val_subsets:
all`` (or of every ``val_all_every``-th), the main process also validates the same EMA model on the same validation
split for each single-modality subset -- the absent stream masked as in the final evaluation
(:func:`reproduce.yolo.evaluation.validate_subset`), the first ``runtime.val_cases`` images only when set -- and
logs ``val/<subset>/mAP50`` and ``val/<subset>/mAP50-95`` for every subset (the full set's from ultralytics'
validation) at the epoch's step. It reads the EMA in eval mode without gradients and leaves the weights, modes, EMA
and AMP state alone. Validation is not free of random draws, though: ultralytics' ``Format`` draws one number from
Python's generator per image (its ``bgr`` flip, at ``bgr: 0`` too), in the main process with ``workers: 0`` -- the
generator training's augmentation draws from -- so the pass restores the global generators after it
(:func:`global_rng_preserved`); training is then bit-for-bit the same with or without it (without the restore it is
not: tests/test_yolo_val_subsets.py).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Iterator
from copy import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mwam_harness.models.yolo.offline import ultralytics_offline

ultralytics_offline()

import ultralytics.engine.trainer as ultralytics_trainer  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import LOGGER, RANK, WEIGHTS_DIR  # noqa: E402
from ultralytics.utils.torch_utils import unwrap_model  # noqa: E402

from reproduce.methods.base import PluginList, StepData  # noqa: E402
from reproduce.methods.context import LoopContext, NullTracker, TrainContext  # noqa: E402
from reproduce.methods.mwam.plugin import GRADIENT_INTERVENTIONS, MWAMPlugin  # noqa: E402
from reproduce.subsets import subset_key  # noqa: E402

from .evaluation import validate_subset  # noqa: E402
from .validator import RESULT_KEYS, TwoStreamDetectionValidator  # noqa: E402

#: The global gradient-norm bound of ultralytics' ``optimizer_step``.
MAX_GRAD_NORM = 10.0
AMP_CHECK_WEIGHTS = "yolo26n.pt"
#: The per-epoch subset metrics logged as ``val/<subset>/<name>``: name -> the registry's name
#: (:data:`reproduce.yolo.validator.RESULT_KEYS`).
SUBSET_METRICS = {"mAP50": "map50", "mAP50-95": "map50_95"}


@dataclass
class TwoStreamSettings:
    """What the trainer needs beyond ultralytics' arguments (built by the runner from the run configuration).

    host: registered host name and options; hsv: the data set's HSV option; mwam_intervention: ``off`` / ``none``
    / ``grad`` (the run's ``mwam.intervention``) with ``mwam_options``; mwam_edit / mwam_clip: where MWAM edits the
    step; sde: the run's :class:`~reproduce.methods.sde.plugin.SDEPlugin` (``SDEPlugin.from_run``) or None; config /
    runtime: the run's, for the plug-ins' context; log: called with (values, step) for the tracker (and
    ``log.start(step, resumed)``, if it has one, once training is set up); log_every: batches between step logs;
    step_callbacks: called with (trainer, batch number) after every batch.
    """

    host: str = "two_stream_yolov8n"
    host_options: dict[str, Any] = field(default_factory=dict)
    hsv: str = "rgb"
    mwam_intervention: str = "off"
    mwam_options: dict[str, Any] = field(default_factory=dict)
    mwam_edit: str = "optimizer_step"
    mwam_clip: str = "after_scaling"
    sde: Any = None
    config: Any = None
    runtime: Any = None
    log: Callable[[dict[str, float], int], None] | None = None
    log_every: int = 10
    step_callbacks: list[Callable[[Any, int], None]] = field(default_factory=list)


#: The plug-ins' resume file in ultralytics' ``weights/`` (``{"state": {name: ...}, "process": {name: ...}}``), and
#: the file earlier versions kept MWAM's bank in (read when resuming such a run).
PLUGIN_STATE = "plugins.pt"
LEGACY_MWAM_STATE = "mwam.pt"


def truncate_results(results_csv: Path, epochs: int) -> int:
    """Keep the header and the rows of the first ``epochs`` epochs of ultralytics' ``results.csv`` (its ``epoch``
    column counts from 1), written atomically; returns how many rows were dropped (0: the file is left alone).

    Ultralytics appends an epoch's row (``save_metrics``) before it writes that epoch's ``last.pt``: a run stopped
    between the two resumes at the earlier checkpoint and trains the epoch again, which would append its row twice.
    """
    if not results_csv.is_file():
        return 0
    lines = results_csv.read_text(encoding="utf-8").splitlines(keepends=True)
    if not lines:
        return 0
    kept = [lines[0]]
    for line in lines[1:]:
        first = line.split(",", 1)[0].strip()
        try:
            epoch = float(first)
        except ValueError:
            continue  # a torn last line (the process died while appending it)
        if epoch <= epochs:
            kept.append(line)
    dropped = len(lines) - len(kept)
    if dropped:
        from reproduce.io import write_text_atomic

        write_text_atomic(results_csv, "".join(kept))
    return dropped


class PluginTracker(NullTracker):
    """The plug-ins' ``ctx.tracker``: what they log (SDE's ``epoch/sde/...``) goes to the trainer's ``log``."""

    def __init__(self, log: Callable[[dict[str, float], int], None] | None) -> None:
        self._log = log

    def log(self, values: Any, step: int) -> None:
        if self._log is not None:
            self._log(dict(values), step)


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


@contextlib.contextmanager
def global_rng_preserved(device: torch.device | None = None) -> Iterator[None]:
    """Python's, NumPy's and torch's global generators (and the CUDA generator of ``device``) as they were before the
    block: whatever runs inside leaves the random stream of ultralytics' augmentation (drawn from Python's and
    NumPy's generators in the main process when ``workers`` is 0) and of training where it found them. A validation
    needs it: ultralytics' ``Format`` draws ``random.uniform`` once per image, also when it validates."""
    python, numpy_state = random.getstate(), np.random.get_state()
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy_state)


def first_images_loader(loader: Any, count: int | None) -> Any:
    """``loader`` (ultralytics' validation loader), or one over the first ``count`` images of its data set (in the
    order ultralytics validates them) when that is fewer: the same batch size, so that a rectangular data set's
    batches keep their shapes, its collate function and pinning, no shuffling, loaded in the main process (a few
    images: no worker processes to start or to leave behind), with a generator of its own (creating an iterator
    draws from it, not from torch's global generator)."""
    dataset = loader.dataset
    if not count or count >= len(dataset):
        return loader
    return torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, range(count)), batch_size=loader.batch_size, shuffle=False, num_workers=0,
        pin_memory=loader.pin_memory, collate_fn=getattr(dataset, "collate_fn", None),
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip


@contextlib.contextmanager
def forward_hooks_detached(modules: Iterable[torch.nn.Module]) -> Iterator[None]:
    """Within the block ``modules`` have no forward hooks (restored after, in their order): a deep copy made
    meanwhile (ultralytics' EMA) carries none of SDE's hooks, closures that could not be pickled into ``last.pt``."""
    saved = [(module, dict(module._forward_hooks)) for module in modules]
    for module, _ in saved:
        module._forward_hooks.clear()
    try:
        yield
    finally:
        for module, hooks in saved:
            module._forward_hooks.update(hooks)


def optimizer_step_with_mwam(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    ema: Any,
    mwam: MWAMPlugin | None,
    ctx: TrainContext | None = None,
    clip: str = "after_scaling",
) -> torch.Tensor | None:
    """Ultralytics' ``BaseTrainer.optimizer_step`` (unscale, clip to norm 10, step, update, zero, EMA) with the MWAM
    plug-in's ``before_optimizer_step`` where Alg. 1 line 8 belongs: after ``unscale_`` and before the clip
    (``after_scaling``) or after the clip (``before_scaling``). A deferred plug-in (``deferred=True``) multiplies
    the accumulated branch gradients there by the mean K of the mini-batches it measured since the last step (its
    window, emptied); otherwise the hook does nothing (``backward``: MWAM's tensor hooks scaled each mini-batch;
    ``none``: it only measures). ``mwam`` None: no editing. ``ctx``: the plug-in's context (default: one on
    ``model``). Returns the K applied in this step (the plug-in's ``applied``), or None."""
    if mwam is not None and ctx is None:
        ctx = LoopContext(host=unwrap_model(model))
    before = None if mwam is None else mwam.applied
    scaler.unscale_(optimizer)
    if mwam is not None and clip == "after_scaling":
        mwam.before_optimizer_step(ctx)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=MAX_GRAD_NORM)
    if mwam is not None and clip == "before_scaling":
        mwam.before_optimizer_step(ctx)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad()
    if ema:
        ema.update(model)
    return mwam.applied if mwam is not None and mwam.applied is not before else None


class TwoStreamDetectionTrainer(DetectionTrainer):
    """``DetectionTrainer`` with the two-stream model, the RGB+IR data set, MWAM and SDE (module docstring)."""

    def __init__(self, settings: TwoStreamSettings, overrides: dict[str, Any], _callbacks: dict | None = None) -> None:
        self.settings = settings
        self.mwam: MWAMPlugin | None = None
        self.sde: Any = settings.sde
        self.plugins = PluginList([], with_method=False)
        self.ctx: LoopContext | None = None
        self.step_inputs: dict[str, torch.Tensor] = {}
        self.step_parts: dict[str, torch.Tensor] = {}
        self.batches_seen = 0
        self.validated_epoch: int | None = None  # the last epoch ultralytics' own validation covered
        self.subset_values: dict[str, float] = {}  # this epoch's val/<subset>/<metric>, logged with its metrics
        self.subset_seconds: list[float] = []  # the duration of every per-subset validation (validate_subsets)
        self._first_images: tuple[Any, Any] | None = None  # (ultralytics' loader, the loader of its first images)
        super().__init__(overrides=overrides, _callbacks=_callbacks)
        self.add_callback("on_train_epoch_start", TwoStreamDetectionTrainer._before_epoch)
        self.add_callback("on_train_batch_end", TwoStreamDetectionTrainer._after_batch)
        self.add_callback("on_fit_epoch_end", TwoStreamDetectionTrainer._after_epoch)

    # ------------------------------------------------------------------ model and data
    def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> Any:
        from mwam_harness import models

        model = models.build(self.settings.host, nc=self.data["nc"], **self.settings.host_options)
        model = self.set_model_names_for_load(model)
        if weights:
            model.load(weights)
        return model

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> Any:
        from mwam_harness.datasets.dronevehicle.loader import build_two_stream_dataset

        stride = max(int(unwrap_model(self.model).stride.max()), 32)
        return build_two_stream_dataset(
            self.args, img_path, batch, self.data, mode=mode, rect=mode == "val", stride=stride, hsv=self.settings.hsv
        )

    def get_validator(self) -> TwoStreamDetectionValidator:
        return TwoStreamDetectionValidator(
            self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks,
            hsv=self.settings.hsv,
        )  # fmt: skip

    # ------------------------------------------------------------------ the plug-ins
    def _setup_train(self) -> None:
        with offline_amp_check():
            super()._setup_train()  # model on the device, optimiser, EMA (a copy without the plug-ins' hooks), resume
        s = self.settings
        host = unwrap_model(self.model)
        self.batches_seen = self.start_epoch * len(self.train_loader)
        self.ctx = self.build_context(host)
        self.mwam = self.build_mwam()
        plugins = [p for p in (self.mwam, self.sde) if p is not None]  # MWAM (order 10), SDE (20)
        self.plugins = PluginList(plugins, with_method=False)
        self.plugins.setup(self.ctx, {})
        if self.sde is not None:
            host.add_training_loss("sde", self._sde_loss)
        start = getattr(s.log, "start", None)
        if start is not None:
            start(self.batches_seen, bool(self.resume))
        if self.resume:
            self.load_plugin_state()
        self.plugins.on_train_start(self.ctx)

    def build_context(self, host: Any) -> LoopContext:
        """The plug-ins' view of this run; its position (epoch, step in it, global step) follows the loop."""
        s = self.settings
        amp = torch.bfloat16 if self.args.amp == "bf16" else torch.float16 if self.amp else None
        return LoopContext(
            host=host, device=self.device, config=s.config, runtime=s.runtime, model=self.model,
            tracker=PluginTracker(s.log), optimizer=self.optimizer, autocast_dtype=amp, run_dir=self.save_dir,
            epoch=self.start_epoch, global_step=self.batches_seen, epochs=self.epochs,
            steps_per_epoch=len(self.train_loader),
        )  # fmt: skip

    def build_mwam(self) -> MWAMPlugin | None:
        """The MWAM plug-in on the trained model's backbones (``off``: none; ``none``: it measures only). Its gradient
        edit is deferred to ``optimizer_step`` (``mwam_edit: optimizer_step``) or made by its tensor hooks during
        backward (``backward``)."""
        s = self.settings
        if s.mwam_intervention == "off":
            return None
        deferred = s.mwam_intervention in GRADIENT_INTERVENTIONS and s.mwam_edit == "optimizer_step"
        return MWAMPlugin(s.mwam_intervention, s.mwam_options, deferred=deferred)

    def plugin_state(self) -> dict[str, Any]:
        """What the resume file keeps: every plug-in's state and process state (MWAM's bank, SDE's generator)."""
        return {"state": self.plugins.state_dict(), "process": self.plugins.process_state_dict()}

    def load_plugin_state(self) -> None:
        """Restore :meth:`plugin_state` from ``weights/plugins.pt`` (or MWAM's bank from an older run's
        ``weights/mwam.pt``); the file must hold exactly this run's plug-ins (a resumed run has the same
        configuration), else ValueError."""
        path, legacy = self.wdir / PLUGIN_STATE, self.wdir / LEGACY_MWAM_STATE
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)  # SDE's generator state stays on the CPU
            self.plugins.load_state_dict(state["state"])
            self.plugins.load_process_state_dict(state["process"])
            LOGGER.info(f"plug-ins {self.plugins.names}: resumed from {path}")
        elif legacy.is_file() and self.mwam is not None:
            self.mwam.load_state_dict(torch.load(legacy, map_location="cpu", weights_only=True))
            LOGGER.info(f"MWAM: resumed its FRM bank from {legacy}")

    def preprocess_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ultralytics' preprocessing (device, /255, multi-scale), then the plug-ins' ``before_forward`` with the RGB
        and IR halves (MWAM measures them; SDE starts the step at the run's progress)."""
        batch = super().preprocess_batch(batch)
        if self.plugins:
            image = batch["img"]
            with torch.autocast(self.device.type, enabled=False):
                self.step_inputs = {"rgb": image[:, :3].float(), "ir": image[:, 3:].float()}
                self.plugins.before_forward(self.ctx, self.step_inputs)
        return batch

    def _sde_loss(self, batch: dict[str, Any], preds: Any) -> torch.Tensor:
        """SDE's dual-domain loss of this batch (a batch mean; the model scales it as ultralytics' loss, see
        :meth:`TwoStreamDetectionModel.loss`), computed by the plug-in's ``loss`` hook; its parts kept for the log."""
        zero = torch.zeros((), device=batch["img"].device)
        loss, parts = self.sde.loss(self.ctx, StepData(self.step_inputs, preds, batch, None), zero, {})
        parts.pop("loss/total", None)  # here SDE's term alone
        self.step_parts = parts
        return loss

    def optimizer_step(self) -> None:
        """Ultralytics' step with MWAM's Alg. 1 line 8 (:func:`optimizer_step_with_mwam`)."""
        optimizer_step_with_mwam(
            self.model, self.optimizer, self.scaler, self.ema, self.mwam, self.ctx, self.settings.mwam_clip
        )

    def resume_training(self, ckpt: Any) -> None:
        """Ultralytics' resume (at the checkpoint's epoch), then ``results.csv`` -- the run's ``history`` -- cut back
        to the epochs that checkpoint holds (:func:`truncate_results`): every epoch one row, also after a resume."""
        super().resume_training(ckpt)
        if ckpt is not None and self.resume and RANK in {-1, 0}:
            dropped = truncate_results(self.csv, self.start_epoch)
            if dropped:
                LOGGER.info(f"resume: dropped {dropped} row(s) of {self.csv} after epoch {self.start_epoch}")

    def _load_checkpoint_state(self, ckpt: dict[str, Any]) -> None:
        """Ultralytics' restoring of optimiser, scaler and EMA. Mid-training (its NaN recovery, which redoes the
        epoch) it rebuilds the EMA as a deep copy of the training model: SDE's hooks are detached meanwhile, and
        MWAM's K of the abandoned mini-batches are dropped."""
        modules = list(unwrap_model(self.model).feature_branches().values()) if self.sde is not None else []
        with forward_hooks_detached(modules):
            super()._load_checkpoint_state(ckpt)
        if self.mwam is not None:
            self.mwam.window.clear()

    def save_metrics(self, metrics: dict[str, Any]) -> None:
        """The epoch's row of ``results.csv``, after the plug-ins' ``on_epoch_end`` (SDE: its epoch means, logged as
        ``epoch/sde/...``); SDE's mean loss terms (``sde/*``, the same columns every epoch) join the row."""
        entry: dict[str, Any] = {}
        self.plugins.on_epoch_end(self.ctx, self.epoch, entry)
        columns = {
            k: v for k, v in entry.get("sde", {}).items() if not k.startswith(("sde/energy/", "sde/dims/"))
        }  # the energies come from the logged steps only, which an epoch may lack
        super().save_metrics({**metrics, **columns})
        self.subset_values = self.validate_subsets()

    # ------------------------------------------------------------------ per-epoch validation of every subset
    def validate(self) -> tuple[Any, Any]:
        """Ultralytics' per-epoch validation (the full set), noting the epoch it covered."""
        metrics, fitness = super().validate()
        self.validated_epoch = self.epoch
        return metrics, fitness

    def subsets_due(self) -> list[tuple[str, ...]]:
        """The subsets (the data set's row order) to report at the end of this epoch: every subset of the run's data
        set at every ``runtime.val_every``-th epoch when ``runtime.val_subsets`` is ``all`` (with ``full``: at every
        ``val_all_every``-th, if set), else none -- ultralytics' own validation of the full set is all there is."""
        s = self.settings
        r = s.runtime
        if r is None or s.config is None or s.log is None or RANK not in {-1, 0}:
            return []
        epoch = self.epoch + 1
        if not r.val_every or epoch % r.val_every:
            return []
        all_every = getattr(r, "val_all_every", 0)
        if r.val_subsets != "all" and not (all_every and epoch % all_every == 0):
            return []
        from reproduce.subsets import subsets

        return subsets(s.config.data.dataset)

    def validate_subsets(self) -> dict[str, float]:
        """``{"val/<subset>/mAP50": ..., "val/<subset>/mAP50-95": ...}`` of the EMA model for :meth:`subsets_due`
        (module docstring). The full set's come from ultralytics' validation of this epoch; each other subset (and
        the full set, in an epoch ultralytics did not validate: ``method.options.val: false``) is validated as
        ultralytics validates during training -- the EMA model, its validation loader (the first
        ``runtime.val_cases`` images when set), its arguments without plots -- with the absent stream masked."""
        subsets = self.subsets_due()
        if not subsets:
            return {}
        start = time.perf_counter()
        full = max(subsets, key=len)
        metrics = self.metrics or {}
        ultralytics = {name: float(metrics[k]) for k, name in RESULT_KEYS.items() if metrics.get(k) is not None}
        covered = self.validated_epoch == self.epoch and set(SUBSET_METRICS.values()) <= set(ultralytics)
        ema = self.ema.ema
        mode = ema.training
        values: dict[str, float] = {}
        try:
            with global_rng_preserved(self.device):
                for subset in subsets:
                    if subset == full and covered:
                        results = ultralytics
                    else:
                        args = copy(self.args)
                        args.plots = args.save_json = args.save_txt = False
                        validator = TwoStreamDetectionValidator(
                            self.subset_loader(), save_dir=self.save_dir, args=args, hsv=self.settings.hsv
                        )
                        results = validate_subset(validator, ema, subset, trainer=self)
                    key = subset_key(subset)
                    values.update({f"val/{key}/{name}": results[k] for name, k in SUBSET_METRICS.items()})
        finally:
            ema.train(mode)
        self.subset_seconds.append(time.perf_counter() - start)
        return values

    def subset_loader(self) -> Any:
        """The loader of :meth:`validate_subsets`: ultralytics' validation loader (``trainer.test_loader``), or one
        over its first ``runtime.val_cases`` images (:func:`first_images_loader`, built once per validation loader)."""
        count = self.settings.runtime.val_cases
        if self._first_images is None or self._first_images[0] is not self.test_loader:
            self._first_images = (self.test_loader, first_images_loader(self.test_loader, count))
        return self._first_images[1]

    def save_model(self) -> Any:
        """Ultralytics' ``last.pt`` / ``best.pt``, and the plug-ins' state beside them (``weights/plugins.pt``)."""
        saved = super().save_model()
        if self.plugins:
            torch.save(self.plugin_state(), self.wdir / PLUGIN_STATE)
        return saved

    # ------------------------------------------------------------------ position and logging
    def _before_epoch(self) -> None:
        if self.ctx is not None:
            self.ctx.epoch, self.ctx.step_in_epoch, self.ctx.epochs = self.epoch, 0, self.epochs
            self.ctx.steps_per_epoch = len(self.train_loader)

    def _after_batch(self) -> None:
        self.batches_seen += 1
        if self.ctx is not None:
            self.ctx.step_in_epoch += 1
            self.ctx.global_step = self.batches_seen
        s = self.settings
        for callback in s.step_callbacks:
            callback(self, self.batches_seen)
        if s.log is None or self.batches_seen % s.log_every:
            return
        values = {f"loss/{k}": float(v) for k, v in (self.loss_items or {}).items()}
        values["lr"] = float(self.optimizer.param_groups[0]["lr"])
        values.update({k: float(v) for k, v in self.step_parts.items()})
        self.plugins.on_log(self.ctx, values)
        s.log(values, self.batches_seen)

    def _after_epoch(self) -> None:
        if self.settings.log is None:
            return
        values = {f"epoch/{k}": float(v) for k, v in (self.label_loss_items(self.tloss) if self.tloss else {}).items()}
        values.update({f"val/{k}": float(v) for k, v in (self.metrics or {}).items()})
        values.update(self.subset_values)  # empty after the last epoch (the call of ultralytics' final_eval)
        self.subset_values = {}
        values["epoch"] = float(self.epoch + 1)
        self.settings.log(values, self.batches_seen)
