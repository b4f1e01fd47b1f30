"""The one trainer: every host, task and training method, a short loop of named hooks (nnU-Net's ``run_training``).

``run()`` = ``setup`` -> (resume) -> ``fit`` -> ``evaluate`` -> result. ``fit`` is a loop over epochs of
``train_epoch`` -> ``validate`` -> ``end_epoch``; ``train_epoch`` a loop of ``train_step``, which is split as

    before_forward (the plug-ins see the inputs) -> forward + ``compute_loss`` (the task's terms, reweighted and
    combined by the plug-ins, then their own terms) -> ``backward`` -> ``before_optimizer_step`` (gradients
    unscaled under fp16: where plug-ins edit them) -> ``optimizer_step``.

Everything that makes a variant -- the host, the task, the training plug-ins (the method, MWAM, SDE, the logger,
listed plug-ins), the optimiser and schedule -- comes from the run's configuration through the catalog: the
trainer knows none of them by name, and the plug-ins see a ``TrainContext`` of it, never the trainer. It is
rank-aware (torchrun / DDP,
``reproduce.engine.distributed``): each process trains its shard of every global batch, rank 0 writes checkpoints,
registry entries, curves and W&B, stop requests are agreed on by all processes, evaluation is sharded and its
metrics merged. It checkpoints every epoch and on SIGINT / SIGTERM and resumes exactly (model, optimiser,
schedule, grad scaler, every plug-in's state, every process's RNG states and the position in the epoch).
"""

from __future__ import annotations

import logging
import math
import re
import signal
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
from torch.utils.data import DataLoader

from mwam_harness import models
from mwam_harness.models.host import Host, HostOutput
from reproduce.checkpoints import (
    load_checkpoint,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from reproduce.devices import device_name
from reproduce.engine.context import EngineContext
from reproduce.engine.distributed import current
from reproduce.engine.evaluation import evaluate_subsets, evaluate_with_dropout, to_channels_last
from reproduce.engine.optimization import build_optimization
from reproduce.engine.progress import EpochProgress, interactive
from reproduce.engine.sampler import EpochBatchSampler
from reproduce.methods import FinishedRun, PluginList, StepData, plugins_for, run_dependencies
from reproduce.methods.context import NullTracker
from reproduce.methods.legacy import legacy_checkpoint
from reproduce.metrics.base import TaskMetric
from reproduce.runs.config import SCHEMA, RunConfig
from reproduce.runs.registry import Registry, git_commit
from reproduce.runs.runtime import Runtime
from reproduce.runs.schedules import epoch_start_lr
from reproduce.tasks import StepContext, Task, build_task
from reproduce.tracking import Tracker, wandb_grouping

log = logging.getLogger(__name__)
StepCallback = Callable[["Trainer", int], None]
#: Offsets the per-process seed of rank r > 0 (rank 0 keeps the run's seed, so one process trains as before).
RANK_SEED_STRIDE = 1_000_003


def tf32_settings() -> dict[str, bool]:
    """Whether TF32 was allowed (PyTorch's defaults: for cuDNN convolutions yes, for matmuls no), for the record."""
    return {
        "cudnn_conv": bool(torch.backends.cudnn.allow_tf32),
        "cuda_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
    }


class TrainingInterruptedError(RuntimeError):
    """Raised after the checkpoint of an interrupted run is safely on disk; ``--resume`` continues it."""


class DependencyError(RuntimeError):
    """A run whose dependency (e.g. MMANet's teacher) is not in the registry yet."""


class NonFiniteLossError(RuntimeError):
    """A step's loss (or, without fp16's GradScaler, its gradients) is NaN or infinite: the run stops, nothing is
    recorded, and the last checkpoint written before the step is kept for inspection."""

    def __init__(self, message: str, key: str, epoch: int, step_in_epoch: int, global_step: int, terms: list[str]):
        super().__init__(message)
        self.key, self.epoch, self.step_in_epoch, self.global_step = key, epoch, step_in_epoch, global_step
        self.terms = terms  # the non-finite loss parts ("loss/fused" ...) or, for gradients, the parameters


@dataclass
class StepCheck:
    """What the finiteness check of one step needs, kept on the device until the check (no sync per step on CUDA):
    its position, whether it is finite (a 0-dim bool tensor), its loss and named parts, the gradient norm of each
    parameter that has a gradient (None when not checked: under fp16 the GradScaler handles overflow)."""

    epoch: int
    step_in_epoch: int
    global_step: int
    ok: torch.Tensor
    loss: torch.Tensor
    parts: dict[str, torch.Tensor]
    parameters: list[torch.nn.Parameter]
    grad_norms: torch.Tensor | None


class Trainer:
    """Trains and evaluates one run (see the module docstring); subclass and override a hook for a new engine
    behaviour, register a plug-in (``reproduce.methods``) for a new way of training."""

    def __init__(
        self,
        config: RunConfig,
        registry: Registry | None = None,
        runtime: Runtime | None = None,
        callbacks: list[StepCallback] | None = None,
    ) -> None:
        self.config = config
        self.registry = registry or Registry()
        self.runtime = runtime or Runtime()
        self.callbacks = list(callbacks or [])
        self.dist = current()
        self.key = config.key
        self.run_dir = self.registry.run_dir(self.key)
        self.checkpoint_path = self.run_dir / "last.pt"
        self._stop_requested = False
        self.display = EpochProgress("", config.train.epochs, shown=False, bars=False)  # fit() sets the real one
        self._finish_reason: str | None = None
        self._checkpointed: tuple[int, int] | None = None  # (epoch, step) of the checkpoint on disk, this attempt
        self.finite_pending: list[StepCheck] = []  # steps not yet checked for finiteness (see check_finite)

    # ------------------------------------------------------------------ build hooks
    def build_device(self) -> torch.device:
        device = self.runtime.device
        if device == "auto":
            if not torch.cuda.is_available():
                return torch.device("cpu")
            return torch.device("cuda", self.dist.local_rank)
        if device == "cuda" and self.dist.enabled:
            return torch.device("cuda", self.dist.local_rank)
        return torch.device(device)

    def build_task(self) -> Task:
        c = self.config
        root = str(c.data.locate())
        return build_task(c.task_name, c.data.spec, root, c.seed, c.data.options, c.modalities)

    def build_host(self) -> Host:
        host = models.build(self.config.host.name, **self.config.host.options)
        if tuple(host.modalities) != tuple(self.task.modalities):
            raise ValueError(
                f"host {self.config.host.name} has modalities {tuple(host.modalities)}; the run uses "
                f"{tuple(self.task.modalities)} of {self.config.data.dataset}"
            )
        return host

    def build_plugins(self) -> PluginList:
        """The run's training plug-ins in their order (``reproduce.methods.plugins_for``)."""
        return plugins_for(self.config, self.runtime)

    def build_train_loader(self) -> DataLoader:
        c = self.config
        self.train_set = self.dataset("train", train=True)
        self.sampler = EpochBatchSampler(
            len(self.train_set),
            c.train.batch_size,
            c.seed,
            shuffle=True,
            drop_last=True,
            iterations=c.train.iterations_per_epoch,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        # Its own generator: a DataLoader otherwise draws each epoch's worker base seed from the global RNG,
        # which would shift the model's random stream on resume (augmentation is seeded per sample instead).
        return DataLoader(
            self.train_set,
            batch_sampler=self.sampler,
            num_workers=self.runtime.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            collate_fn=self.task.collate,
            generator=torch.Generator().manual_seed(c.seed),
        )

    def dataset(self, split: str, train: bool) -> Any:
        """``split``'s data set (the task's ``build_dataset``), built once per (split, train) and kept: the preflight
        builds the splits the run reads, the training and evaluation loaders reuse them. (The preflight loads
        sample 0 of each; the data sets draw their augmentation per (seed, epoch, index), so that changes nothing:
        tests/test_reference_runs.py retrains bit-identically.)"""
        key = (split, train)
        if key not in self._datasets:
            self._datasets[key] = self.task.build_dataset(split, train=train)
        return self._datasets[key]

    def wrap_model(self, host: Host) -> torch.nn.Module:
        """The module the training forward pass goes through: the host, or its DDP wrapper under torchrun (built
        after the plug-ins' set-up: MWAM's gradient hooks and SDE's forward hooks are in place)."""
        if not self.dist.enabled:
            return host
        devices = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(host, device_ids=devices, find_unused_parameters=True)

    # ------------------------------------------------------------------ set-up and state
    def setup(self, dependencies: Mapping[str, FinishedRun] | None = None) -> None:
        """Build everything of the run; ``dependencies`` are its finished dependency runs (default: looked up in
        the registry, :meth:`finished_dependencies`)."""
        c = self.config
        self.device = self.build_device()
        self.remove_stale_temporaries()
        seed_everything(c.seed)
        if c.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=self.device.type == "cuda")
        self.task = self.build_task()
        self._datasets: dict[tuple[str, bool], Any] = {}  # built data sets, by (split, train): see dataset()
        self.host = self.build_host()
        self.task.attach(self.host)
        from reproduce.engine.preflight import preflight  # every split the run reads, before the first step

        preflight(self)
        self.sync_batchnorm = self.dist.enabled and self.runtime.sync_batchnorm and self.device.type == "cuda"
        if self.sync_batchnorm:
            self.host = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.host)
        self.host = self.host.to(self.device)
        self.channels_last = c.train.channels_last if c.train.channels_last is not None else self.device.type == "cuda"
        if self.channels_last:
            self.host = self.host._apply(
                lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
            )
        amp = c.train.amp if c.train.amp != "auto" else ("bf16" if self.device.type == "cuda" else "off")
        self.precision = "fp32" if amp == "off" else amp
        self.autocast_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.history: list[dict[str, Any]] = []
        self.epoch_losses: list[torch.Tensor] = []  # this epoch's step losses, kept on the device (no sync)
        self._eval_loaders: dict[tuple[str, int | None], DataLoader] = {}
        # eval.select best_val: {"epoch", "value", "host"} so far; epoch:N: {"epoch", "host"} once epoch N ended
        self.selected: dict[str, Any] | None = None
        self.wandb_id: str | None = None
        self.elapsed = 0.0
        self.tracker: Any = NullTracker()  # the run's tracker replaces it once the run starts
        self.train_loader = self.build_train_loader()
        self.plugins = self.build_plugins()
        self.ctx = EngineContext(self)
        self.plugins.setup(self.ctx, self.finished_dependencies() if dependencies is None else dependencies)
        self.optimizer, self.scheduler = build_optimization(
            self.host.parameters(), c.optim, c.schedule, self.sampler.batches_per_epoch, c.train.epochs
        )
        self.model = self.wrap_model(self.host)
        self.parameter_names = {id(p): name for name, p in self.host.named_parameters()}
        # CUDA: the finiteness of each step is checked at logged steps, epoch ends and before every checkpoint (a
        # sync per step would stall the GPU stream); CPU: after each step, before its optimiser step.
        self.deferred_finite_check = self.device.type == "cuda"
        if self.dist.rank > 0:  # each process its own random stream (modality draws, augmentation order ...)
            seed_everything(c.seed + RANK_SEED_STRIDE * self.dist.rank)

    def finished_dependencies(self) -> dict[str, FinishedRun]:
        """The run's dependencies (its plug-ins' ``dependencies``) from the registry; DependencyError for one
        missing."""
        finished = {}
        for role, dependency in run_dependencies(self.config).items():
            weights = self.registry.weights_path(dependency.config)
            if not (self.registry.has(dependency.config) and weights.exists()):
                raise DependencyError(
                    f"run {self.key} needs its {role} run {dependency.config.key} ({dependency.column}), which is not "
                    f"in the registry {self.registry.root} with its weights; `python -m reproduce run` and "
                    "`python -m reproduce table` train dependencies first"
                )
            finished[role] = FinishedRun(dependency.config, self.registry.load(dependency.config), weights)
        return finished

    def _process_state(self) -> dict[str, Any]:
        """What differs between processes: RNG states, this epoch's step losses, the plug-ins' process states."""
        return {"rng": rng_state(), "epoch_losses": self.epoch_losses, "plugins": self.plugins.process_state_dict()}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint (a collective under DDP: every process contributes its process state)."""
        return {
            "config_key": self.key,
            "world_size": self.dist.world_size,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "host": self.host.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "plugins": self.plugins.state_dict(),
            "processes": self.dist.gather(self._process_state()),
            "history": self.history,
            "selected": self.selected,
            "wandb_id": self.wandb_id,
            "elapsed": self.elapsed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "plugins" not in state:
            state = legacy_checkpoint(state, self.plugins.names, self.config.method.name)
        if state["config_key"] != self.key:
            raise ValueError(f"checkpoint belongs to run {state['config_key']}, not {self.key}")
        if state["world_size"] != self.dist.world_size:
            raise ValueError(
                f"the checkpoint of run {self.key} was written by {state['world_size']} processes; resume it with as "
                f"many (this is {self.dist.world_size}): each process continues its own random stream"
            )
        self.host.load_state_dict(state["host"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.plugins.load_state_dict(state["plugins"])
        mine = state["processes"][self.dist.rank]
        set_rng_state(mine["rng"])
        self.epoch_losses = list(mine["epoch_losses"])
        self.plugins.load_process_state_dict(mine["plugins"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step, self.history = state["global_step"], state["history"]
        self.selected = state["selected"]
        self.wandb_id, self.elapsed = state["wandb_id"], state["elapsed"]
        self._checkpointed = (self.epoch, self.step_in_epoch)  # the run resumes from this state, on disk

    def save_checkpoint(self) -> None:
        """The resume checkpoint (atomic; never of a step that failed :meth:`check_finite`, which runs first)."""
        self.check_finite()
        state = self.state_dict()  # every process takes part (it gathers the process states)
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_path, state)
            remove_stale_temporaries(self.checkpoint_path)  # those of a kill -9 shortly before this attempt
        self._checkpointed = (self.epoch, self.step_in_epoch)
        self.dist.barrier()

    def remove_stale_temporaries(self) -> None:
        """Remove the temporary files a killed writer left beside the run's checkpoint, weights, registry entry and
        configuration (``.last.pt.*.tmp.pt`` ...; only those not written to for a minute: the run's lock makes the
        run ours, and a live writer keeps its file fresh)."""
        if self.dist.is_main:
            for path in (self.checkpoint_path, self.registry.weights_path(self.key), self.registry.path(self.key),
                         self.registry.config_path(self.key)):  # fmt: skip
                remove_stale_temporaries(path)

    def save_final_checkpoint(self) -> None:
        """After the last epoch: the trained state on disk (unless the last epoch's checkpoint holds it), so that
        an evaluation interrupted by a signal is re-run by ``--resume`` without training again."""
        if self._checkpointed != (self.epoch, self.step_in_epoch):
            self.save_checkpoint()

    def interrupt(self, where: str) -> NoReturn:
        """Checkpoint (unless the state is on disk already) and raise :class:`TrainingInterruptedError`."""
        self.elapsed = time.perf_counter() - self._start
        if self._checkpointed != (self.epoch, self.step_in_epoch):
            self.save_checkpoint()
        raise TrainingInterruptedError(f"{where}; checkpoint {self.checkpoint_path}; continue with --resume")

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        """Stop after the current step, checkpoint, and raise :class:`TrainingInterruptedError`."""
        self._stop_requested = True

    def request_finish(self, reason: str) -> None:
        """End training after the current epoch (a plug-in's decision, e.g. MSES once every modality is stopped);
        unlike :meth:`request_stop` the run is then evaluated and recorded."""
        self._finish_reason = str(reason)

    @contextmanager
    def _signals(self, immediate: bool = False):
        """SIGINT / SIGTERM request a stop (honoured after the step, or at the end of the epoch, with a checkpoint);
        ``immediate`` (the final evaluation, whose trained state is on disk already): they raise
        :class:`TrainingInterruptedError` at once."""

        def handler(signum, frame):
            if immediate and not self._stop_requested:
                log.warning("signal %s during the evaluation: stopping now (the trained state is on disk)", signum)
                self.request_stop()
                raise TrainingInterruptedError(self._evaluation_interrupted(f"signal {signum}"))
            log.warning("signal %s: stopping after this step and saving a checkpoint", signum)
            self.request_stop()

        previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread: no signal handling
            previous = {}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    # ------------------------------------------------------------------ one step
    @property
    def progress(self) -> float:
        """Training progress in [0, 1]: completed epochs plus the done fraction of this one, over all epochs."""
        steps = max(self.sampler.batches_per_epoch, 1)
        return min((self.epoch + self.step_in_epoch / steps) / self.config.train.epochs, 1.0)

    def step_context(self) -> StepContext:
        return StepContext(
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            global_step=self.global_step,
            progress=self.progress,
            epochs=self.config.train.epochs,
            steps_per_epoch=self.sampler.batches_per_epoch,
        )

    def autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def before_forward(self, inputs: dict[str, torch.Tensor], ctx: StepContext) -> None:
        """The plug-ins see the step's inputs (MWAM measures them, Alg. 1 lines 3-5; SDE starts its curriculum)."""
        self.plugins.before_forward(self.ctx, inputs)

    def compute_loss(
        self, inputs: dict[str, torch.Tensor], output: HostOutput, batch: Mapping[str, Any], ctx: StepContext
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The step's loss and its named, detached parts: the task's terms as the plug-ins reweight them, combined
        by the first plug-in that combines them (MWAM's Eq. 7) or summed, then every plug-in's own terms."""
        terms = self.plugins.loss_terms(self.ctx, self.task.loss(output, batch, ctx))
        loss, parts = terms.fused, {"loss/fused": terms.fused.detach()}
        if terms.per_modality:
            parts.update({f"loss/{m}": value.detach() for m, value in terms.per_modality.items()})
            combined = self.plugins.combine_terms(self.ctx, terms)
            loss = combined if combined is not None else terms.fused + sum(terms.per_modality.values())
            parts["loss/total"] = loss.detach()
        return self.plugins.loss(self.ctx, StepData(inputs, output, batch, terms), loss, parts)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()  # plug-ins' gradient hooks (MWAM's K) act here

    def before_optimizer_step(self, ctx: StepContext) -> None:
        """Gradients are complete (and unscaled under fp16): the plug-ins may edit them (OGM-GE, AGM ...)."""
        if self.scaler.is_enabled():
            self.scaler.unscale_(self.optimizer)
        self.plugins.before_optimizer_step(self.ctx)

    def optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.config.schedule.interval == "iteration":
            self.scheduler.step()

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """One optimisation step (see the module docstring); returns the step's named loss parts."""
        ctx = self.step_context()
        inputs = self.task.inputs(batch, self.device)
        self.before_forward(inputs, ctx)
        if self.channels_last:
            inputs = to_channels_last(inputs)
        with self.autocast():
            output = self.model(inputs, None)
            loss, parts = self.compute_loss(inputs, output, batch, ctx)
        self.optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        self.before_optimizer_step(ctx)
        self.watch_finite(ctx, loss, parts)
        self.optimizer_step()
        return parts

    # ------------------------------------------------------------------ finite or nothing
    def watch_finite(self, ctx: StepContext, loss: torch.Tensor, parts: Mapping[str, torch.Tensor]) -> None:
        """Record whether the step is finite: its loss and, unless fp16's GradScaler handles overflow (it skips
        such steps), its gradients. On the CPU checked at once (before the optimiser step); on CUDA kept on the
        device and checked by :meth:`check_finite` at the next logged step, epoch end or checkpoint."""
        loss = loss.detach()
        ok = torch.isfinite(loss).all()
        parameters: list[torch.nn.Parameter] = []
        norms = None
        if not self.scaler.is_enabled():
            parameters = [p for group in self.optimizer.param_groups for p in group["params"]
                          if p.grad is not None and not p.grad.is_sparse]  # fmt: skip
            if parameters:
                grads = [p.grad for p in parameters]
                foreach_norm = getattr(torch, "_foreach_norm", None)  # one fused kernel on CUDA
                each = foreach_norm(grads) if foreach_norm else [torch.linalg.vector_norm(g) for g in grads]
                norms = torch.stack([n.to(torch.float32) for n in each])
                ok = ok & torch.isfinite(norms).all()
        self.finite_pending.append(
            StepCheck(ctx.epoch, ctx.step_in_epoch, ctx.global_step, ok, loss, dict(parts), parameters, norms)
        )
        if not self.deferred_finite_check:
            self.check_finite()

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteLossError` (on every process) when a step since the last check had a non-finite
        loss or gradient: one sync for all of them. Called before every checkpoint, so none holds a bad step."""
        pending, self.finite_pending = self.finite_pending, []
        bad = bool(pending) and not bool(torch.stack([check.ok for check in pending]).all())
        if not self.dist.any(bad):
            return
        first = next((check for check in pending if not bool(check.ok)), None)
        reports = self.dist.gather(None if first is None else self._describe_nonfinite(first))
        rank, (where, kind, what, terms, position) = next((r, x) for r, x in enumerate(reports) if x is not None)
        on = f" on process {rank}" if self.dist.enabled else ""
        if self._checkpointed is not None:
            epoch, step = self._checkpointed
            kept = (f"the last good checkpoint {self.checkpoint_path} (it resumes at epoch {epoch}, step {step}) is "
                    "kept for inspection")  # fmt: skip
        elif self.checkpoint_path.exists():
            kept = f"{self.checkpoint_path} is from an earlier attempt and was left as it was"
        else:
            kept = "no checkpoint was written before this step"
        lr = self.optimizer.param_groups[0]["lr"]
        raise NonFiniteLossError(
            f"run {self.key}: {kind}{on} at {where}: {what}. Training stopped and nothing was recorded in the registry "
            f"{self.registry.root}; {kept}. Check the data for NaN / Inf values (`python -m reproduce check-data`), "
            f"the learning rate (optim.lr {self.config.optim.lr}, now {lr:g}) and the loss terms",
            self.key,
            *position,
            terms,
        )

    def _describe_nonfinite(self, check: StepCheck) -> tuple[str, str, str, list[str], tuple[int, int, int]]:
        """Where (epoch and step), the kind (loss or gradient), what (the non-finite loss parts, or the parameters
        with non-finite gradients), their names, and the position of a step that failed the check (the error path:
        syncs are fine here)."""
        where = (f"epoch {check.epoch}, step {check.step_in_epoch} of the epoch (global step {check.global_step}; "
                 "counted from 0)")  # fmt: skip
        position = (check.epoch, check.step_in_epoch, check.global_step)
        values = {name: value.detach().float() for name, value in check.parts.items()}
        bad = [name for name, value in values.items() if not bool(torch.isfinite(value).all())]

        def show(names: list[str]) -> str:
            return ", ".join(f"{n} = {float(values[n].mean()):g}" if values[n].numel() else n for n in names)

        if bad or not bool(torch.isfinite(check.loss).all()):
            finite = [name for name in values if name not in bad]
            what = show(bad) if bad else f"the combined loss = {float(check.loss.mean()):g}"
            what += f" (finite: {show(finite)})" if finite else ""
            return where, "non-finite loss", what, bad or ["loss"], position
        assert check.grad_norms is not None  # the step failed, its loss is finite: a gradient is not
        broken = [i for i, norm in enumerate(check.grad_norms.tolist()) if not math.isfinite(norm)]
        names = [self.parameter_names.get(id(check.parameters[i]), f"a parameter outside the host (#{i})")
                 for i in broken]  # fmt: skip
        modules = sorted({name.rsplit(".", 1)[0] if "." in name else name for name in names})
        listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        what = (f"{len(names)} parameter(s) of module(s) {', '.join(modules[:8])}: {listed} (the loss is finite: "
                f"{show(list(values))})")  # fmt: skip
        return where, "non-finite gradient", what, names, position

    # ------------------------------------------------------------------ the loop
    def train_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch, self.step_in_epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        self.host.train()
        if self.step_in_epoch == 0:
            self.epoch_losses = []
        self.display.start_epoch(epoch, self.sampler.batches_per_epoch, self.step_in_epoch)
        for batch in self.train_loader:
            parts = self.train_step(batch)
            self.step_in_epoch += 1
            self.global_step += 1
            self.epoch_losses.append(parts["loss/fused"])
            self.display.step()
            if self.global_step % self.runtime.log_every == 0:
                self.check_finite()  # nothing non-finite is logged
                self._log_step(parts)
            for callback in self.callbacks:
                callback(self, self.global_step)
            if self.dist.any(self._stop_requested):
                self.interrupt(f"stopped at epoch {epoch}, step {self.step_in_epoch}")
        self.check_finite()  # the epoch's mean loss, validation and checkpoint see finite steps only

    def skip_epoch(self, epoch: int) -> None:
        """An epoch of ``schedule.skip_epochs``: no batch, no forward pass, no update (the authors' ``if epoch == 0:
        continue``); its end of epoch still runs."""
        self.epoch = epoch
        self.epoch_losses = []

    def epoch_lr(self, epoch: int) -> float | None:
        """The learning rate ``epoch`` starts with (the schedule's; what ``--dry-run`` shows); None when skipped."""
        c = self.config
        if epoch < c.schedule.skip_epochs:
            return None
        return epoch_start_lr(c.schedule, c.optim.lr, epoch, c.train.epochs, self.sampler.batches_per_epoch)

    def epoch_entry(self, epoch: int) -> dict[str, Any]:
        """The epoch's history entry: the learning rate it started with and the mean loss (over every process);
        the plug-ins add theirs at the end of the epoch."""
        mean_loss = float(torch.stack(self.epoch_losses).mean()) if self.epoch_losses else math.nan
        entry = {"epoch": epoch, "lr": self.epoch_lr(epoch), "loss": self.dist.mean(mean_loss)}
        if epoch < self.config.schedule.skip_epochs:
            entry["skipped"] = True
        return entry

    def validate(self, epoch: int, entry: dict[str, Any]) -> None:
        """Cheap per-epoch validation of every subset (``runtime.val_every``); it draws no randomness, so training
        is the same with or without it."""
        r = self.runtime
        if not r.val_every or (epoch + 1) % r.val_every:
            return
        every_subset = r.val_subsets == "all" or (r.val_all_every and (epoch + 1) % r.val_all_every == 0)
        subsets = None if every_subset else [tuple(self.task.modalities)]
        validation = evaluate_subsets(
            self.host,
            self.task,
            self.eval_loader(r.val_split, limit=r.val_cases),
            self.device,
            self.autocast_dtype,
            self.runtime.progress and interactive(),
            self.channels_last,
            description=f"val {r.column or self.config.host.name}",
            subsets=subsets,
            distributed=self.dist,
        )
        entry["val"] = validation
        prefix = "val" if r.val_split == "val" else f"monitor_{r.val_split}"  # never the final test/... summary
        if r.val_split != "val":
            entry["val_split"] = r.val_split
        values = {f"{prefix}/{s}/{name}": v for s, metrics in validation.items() for name, v in metrics.items()}
        self.tracker.log(values, step=self.global_step)

    def select(self, epoch: int, entry: dict[str, Any]) -> None:
        """``eval.select: best_val``: after each epoch past ``select_after``, the selection metric on the selection
        split (``select_inputs``); the weights of the best epoch are kept (on the CPU, in the checkpoint).
        ``epoch:N``: the weights after epoch ``N`` are kept the same way."""
        e = self.config.eval
        if e.fixed_epoch is not None:
            if epoch == e.fixed_epoch:
                self.selected = {"epoch": epoch, "host": self.host_state_on_cpu()}
            return
        if e.select != "best_val" or epoch <= e.select_after:
            return
        value = self.selection_value(epoch)
        entry["select"] = {e.select_metric: value}
        self.tracker.log({f"select/{e.select_split}/{e.select_metric}": value}, step=self.global_step)
        best = self.selected
        better = best is None or (value > best["value"] if e.select_mode == "max" else value < best["value"])
        if better:
            self.selected = {"epoch": epoch, "value": value, "host": self.host_state_on_cpu()}

    def host_state_on_cpu(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the host's state (what :meth:`select` keeps)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.host.state_dict().items()}

    def selection_value(self, epoch: int) -> float:
        """The selection metric of this epoch's weights (identical on every process: the metric is merged)."""
        e = self.config.eval
        if e.select_inputs == "full":
            values = self.evaluate_subsets(e.select_split, subsets=[tuple(self.task.modalities)])
            metrics = next(iter(values.values()))
        else:
            # A generator of its own per (seed, epoch, process): drawing the validation subsets neither shifts the
            # training's random stream nor depends on where a resumed run restarted.
            seed = self.config.seed * 1_000_003 + epoch * 7919 + self.dist.rank
            metrics = evaluate_with_dropout(
                self.host,
                self.task,
                self.eval_loader(e.select_split),
                self.device,
                torch.Generator().manual_seed(seed),
                self.autocast_dtype,
                self.runtime.progress and interactive(),
                self.channels_last,
                description=f"select {e.select_split} {self.runtime.column or self.config.host.name}",
                distributed=self.dist,
            )
        if e.select_metric not in metrics:
            raise ValueError(
                f"eval.select_metric {e.select_metric!r} is not a metric of this task; it reports {sorted(metrics)}"
            )
        return float(metrics[e.select_metric])

    def restore_selected(self) -> None:
        """Load the selected epoch's weights before the final evaluation (``best_val``, ``epoch:N``; ``last`` keeps
        the last)."""
        e = self.config.eval
        if e.fixed_epoch is not None:
            if self.selected is None:
                early = self.finished_early
                raise RuntimeError(
                    f"run {self.key}: eval.select {e.select}: training ended after epoch "
                    f"{early['epoch'] if early else self.epoch - 1} ({early['reason'] if early else 'no epoch kept'}) "
                    f"before epoch {e.fixed_epoch}"
                )
            self.host.load_state_dict(self.selected["host"])
            log.info("selected epoch %d (eval.select %s)", self.selected["epoch"], e.select)
        elif e.select == "best_val":
            if self.selected is None:
                raise RuntimeError(f"run {self.key}: eval.select best_val found no epoch to select")
            self.host.load_state_dict(self.selected["host"])
            log.info(
                "selected epoch %d (%s %s = %.4f)",
                self.selected["epoch"],
                e.select_split,
                e.select_metric,
                self.selected["value"],
            )

    def end_epoch(self, epoch: int, entry: dict[str, Any]) -> None:
        """The plug-ins' end-of-epoch hooks, the history entry, the per-epoch scheduler step and the checkpoint."""
        self.plugins.on_epoch_end(self.ctx, epoch, entry)
        reasons = [r for r in self.dist.gather(self._finish_reason) if r is not None]
        if reasons and epoch + 1 < self.config.train.epochs:
            entry["finished"] = reasons[0]
        self._finish_reason = None
        self.history.append(entry)
        if self.config.schedule.interval == "epoch":
            with warnings.catch_warnings():
                # After a skipped epoch (no optimiser step yet) torch warns that the schedule steps first: intended.
                warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
                self.scheduler.step()
        self.epoch, self.step_in_epoch = epoch + 1, 0
        self.elapsed = time.perf_counter() - self._start
        every = self.runtime.checkpoint_every
        if every and (epoch + 1) % every == 0:
            self.save_checkpoint()

    def fit(self) -> None:
        from tqdm.auto import trange

        epochs = self.config.train.epochs
        self._start = time.perf_counter() - self.elapsed
        label = f"train {self.runtime.column or self.config.host.name}"
        bars = self.runtime.progress and interactive()
        self.display = EpochProgress(label, epochs, shown=self.dist.is_main, bars=bars)
        bar = trange(
            self.epoch,
            epochs,
            desc=label,
            disable=not bars or not self.dist.is_main,
            initial=self.epoch,
            total=epochs,
        )
        try:
            for epoch in bar:
                if self.finished_early is not None:  # resumed after a plug-in ended training: nothing left to train
                    break
                if epoch < self.config.schedule.skip_epochs:
                    self.skip_epoch(epoch)
                else:
                    self.train_epoch(epoch)
                entry = self.epoch_entry(epoch)
                self.validate(epoch, entry)
                self.display.end_epoch(epoch, entry)
                self.select(epoch, entry)
                self.end_epoch(epoch, entry)
                if self.dist.any(self._stop_requested):  # a signal after the epoch's last step (validation ...)
                    self.interrupt(f"stopped after epoch {epoch}")
                if self.finished_early is not None:
                    break
        finally:
            self.display.close()  # a bar left by an interrupted epoch
        self.save_final_checkpoint()
        self.restore_selected()

    @property
    def finished_early(self) -> dict[str, Any] | None:
        """``{"epoch", "reason"}`` when a plug-in ended training before ``train.epochs`` (from the history)."""
        for entry in reversed(self.history):
            if "finished" in entry:
                return {"epoch": entry["epoch"], "reason": entry["finished"]}
        return None

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split: str | None = None) -> dict[str, dict[str, float]]:
        """Every subset on ``split`` (default: the run's ``eval.split``), in the paper's order. A SIGINT / SIGTERM
        (before or during it) raises :class:`TrainingInterruptedError` at once: ``--resume`` re-runs it from the
        checkpoint :meth:`fit` left."""
        with self._signals(immediate=True):
            if self.dist.any(self._stop_requested):
                raise TrainingInterruptedError(self._evaluation_interrupted("a stop request"))
            return self.evaluate_subsets(split or self.config.eval.split)

    def _evaluation_interrupted(self, cause: str) -> str:
        state = "no checkpoint holds the trained state"
        if self.checkpoint_path.exists():
            state = f"the trained state is in checkpoint {self.checkpoint_path}; continue with --resume (it re-runs it)"
        return f"{cause} during the evaluation of run {self.key}: stopped; {state}"

    def evaluate_subsets(
        self,
        split: str,
        subsets: list[tuple[str, ...]] | None = None,
        new_metric: Callable[[], TaskMetric] | None = None,
        description: str | None = None,
    ) -> dict[str, dict[str, float]]:
        """``subsets`` (default: every subset of the task) on ``split``, sharded over the processes."""
        return evaluate_subsets(
            self.host,
            self.task,
            self.eval_loader(split),
            self.device,
            self.autocast_dtype,
            self.runtime.progress and interactive(),
            self.channels_last,
            description=description or f"{split} {self.runtime.column or self.config.host.name}",
            subsets=subsets,
            new_metric=new_metric,
            distributed=self.dist,
        )

    def eval_loader(self, split: str, limit: int | None = None) -> DataLoader:
        """The (cached) evaluation loader of ``split`` (its first ``limit`` samples when given): in order, this
        process's contiguous shard, its own generator (iterating a DataLoader otherwise draws from the global RNG
        and shifts training)."""
        key = (split, limit)
        if key not in self._eval_loaders:
            dataset = self.dataset(split, train=False)
            if limit is not None and limit < len(dataset):
                dataset = torch.utils.data.Subset(dataset, range(limit))
            sampler = list(self.dist.shard(len(dataset))) if self.dist.enabled else None
            self._eval_loaders[key] = DataLoader(
                dataset,
                batch_size=self.config.eval.batch_size,
                shuffle=False,
                sampler=sampler,
                num_workers=self.runtime.workers,
                collate_fn=self.task.collate,
                generator=torch.Generator().manual_seed(self.config.seed),
            )
        return self._eval_loaders[key]

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False, force: bool = False) -> dict[str, Any]:
        """Train (or continue) and evaluate; returns the registry entry. A finished run is reused unless ``force``.

        The run's lock (:mod:`reproduce.runs.lock`) is held from the registry check to the registry write: a second
        process asking for the run waits for it and reuses its result (also under ``force``, when the run was
        recorded while it waited); under torchrun rank 0 checks that the command that started it still holds it."""
        with self.registry.lock(self.config, process=self.dist) as hold:
            c, main = self.config, self.dist.is_main
            if self.registry.has(c) and (not force or hold.updated):
                log.info("run %s is already in the registry (use force to retrain)", self.key)
                return self.registry.load(c)
            self.setup()
            if resume and self.checkpoint_path.exists():
                self.load_state_dict(load_checkpoint(self.checkpoint_path, self.device))
                log.info("resuming run %s at epoch %d, step %d", self.key, self.epoch, self.step_in_epoch)
            elif self.checkpoint_path.exists():
                log.warning("run %s has a checkpoint but resume was not asked for: starting over", self.key)
            if main:
                self.registry.save_config(c, self.runtime)
            self.tracker = Tracker(
                self.runtime.wandb if main else "disabled",
                self.registry.root.parent,
                name=f"{self.runtime.column or c.host.name} [{self.key}]",
                config={
                    **c.to_dict(),
                    "key": self.key,
                    "schedule_resolved": c.schedule.used_fields(),
                    "runtime": self.runtime.to_dict(),
                },
                run_id=self.wandb_id,
                **wandb_grouping(self.runtime),
            )
            self.wandb_id = self.tracker.run_id
            try:
                self.plugins.on_train_start(self.ctx)
                with self._signals():
                    self.fit()
                result = self.dist.broadcast(self._result(self.evaluate()))  # rank 0's wall time on every process
                self.plugins.on_train_end(self.ctx, result)
                if main:
                    hold.check()  # a torchrun rank whose command was killed records nothing
                    weights = {"config_key": self.key, "host": self.host.state_dict()}
                    save_checkpoint(self.registry.weights_path(c), weights)
                    self.registry.save(result)
                    # Finished: the final weights (model.pt) and the result remain; the resume checkpoint (weights,
                    # optimiser state, RNG ...) is no longer needed and is the largest file of a run.
                    self.checkpoint_path.unlink(missing_ok=True)
                self.dist.barrier()
            finally:
                self.tracker.finish()
            return result

    def _log_step(self, parts: dict[str, torch.Tensor]) -> None:
        """A logged step: its loss parts and learning rate, plus what each plug-in adds; the logger writes them."""
        values = {k: float(v) for k, v in parts.items()}
        values["lr"] = self.optimizer.param_groups[0]["lr"]
        self.display.loss(values.get("loss/fused", math.nan))
        self.plugins.on_log(self.ctx, values)

    def _result(self, subsets: dict[str, dict[str, float]]) -> dict[str, Any]:
        c = self.config
        metric = self.task.new_metric()
        return {
            "key": self.key,
            "schema": SCHEMA,
            "config": c.to_dict(),
            "identity": c.identity(),
            "schedule": c.schedule.used_fields(),
            "runtime": self.runtime.to_dict(),
            "variant": c.variant,
            "metric": metric.display_name,
            "primary": metric.primary,
            "subsets": subsets,
            "seed": c.seed,
            "git_commit": git_commit(),
            "wall_time_s": round(self.elapsed, 2),
            "device": device_name(self.device),
            "world_size": self.dist.world_size,
            "per_process_batch": self.sampler.per_process_batch,
            "sync_batchnorm": self.sync_batchnorm,
            "precision": self.precision,
            "tf32": tf32_settings(),
            "selection": self.selection_record(),
            "finished_early": self.finished_early,
            "synthetic": c.data.spec.is_synthetic(self.task.root),
            "history": self.history,
            "method": self.plugins.method.describe(),
            "plugins": self.plugins.describe(),
            "torch": torch.__version__,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def selection_record(self) -> dict[str, Any]:
        """Which weights were evaluated: the last epoch, the fixed one (``epoch:N``), or the selected one with its
        rule and value."""
        e = self.config.eval
        if e.select == "last":
            early = self.finished_early
            return {"select": "last", "epoch": early["epoch"] if early else self.config.train.epochs - 1}
        if e.fixed_epoch is not None:
            return {"select": e.select, "epoch": self.selected["epoch"]}
        rule = {k: getattr(e, k) for k in ("select_metric", "select_mode", "select_after", "select_split")}
        return {"select": "best_val", **rule, "select_inputs": e.select_inputs,
                "epoch": self.selected["epoch"], "value": self.selected["value"]}  # fmt: skip
