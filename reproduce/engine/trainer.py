"""One trainer for every host and task (nnU-Net style: override the ``build_*`` hooks or ``train_step``).

A run trains ``config.host`` on ``config.dataset`` with MWAM as a variant, checkpoints every epoch and on
SIGINT / SIGTERM, resumes exactly (model, optimiser, schedule, grad scaler, MWAM bank, every RNG state and
the position in the epoch's data order), evaluates every missing-modality subset in the paper's order and
writes one JSON to the results registry. The trainer knows no host or data set by name.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

import models
from models.host import Host, HostOutput
from mwam import MWAM
from reproduce.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from reproduce.engine.evaluation import evaluate_subsets
from reproduce.engine.sampler import EpochBatchSampler
from reproduce.engine.schedule import lr_factor
from reproduce.engine.sde_variant import BranchEnhancer
from reproduce.runs.config import RunConfig
from reproduce.runs.registry import Registry, git_commit
from reproduce.tasks import build_task
from reproduce.tracking import CurveWriter, Tracker

log = logging.getLogger(__name__)
StepCallback = Callable[["Trainer", int], None]


class TrainingInterruptedError(RuntimeError):
    """Raised after the checkpoint of an interrupted run is safely on disk; ``--resume`` continues it."""


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


class Trainer:
    """The standard method: the task's loss (plus MWAM). Methods subclass it and name their options dataclass in
    ``options_class`` (the run's ``trainer_options``); see ``reproduce.engine.trainers``."""

    options_class: type | None = None

    def __init__(
        self,
        config: RunConfig,
        registry: Registry | None = None,
        wandb_mode: str | None = None,
        callbacks: list[StepCallback] | None = None,
    ) -> None:
        self.config = config
        self.registry = registry or Registry()
        self.wandb_mode = wandb_mode
        self.callbacks = list(callbacks or [])
        self.run_dir = self.registry.run_dir(config)
        self.checkpoint_path = self.run_dir / "last.pt"
        self._stop_requested = False
        self.resume = False

    # ------------------------------------------------------------------ hooks (override in a subclass)
    def build_device(self) -> torch.device:
        if self.config.device != "auto":
            return torch.device(self.config.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def build_host(self) -> Host:
        return models.build(self.config.host, **self.config.host_options)

    def build_mwam(self, host: Host) -> MWAM:
        """MWAM always measures (FRM / T / K are logged for baselines too); it intervenes unless ``mwam: none``."""
        options = dict(self.config.mwam_options)
        if self.config.mwam in ("grad", "hybrid"):
            return MWAM.for_host(host, intervention=self.config.mwam, **options)
        return MWAM(modalities=host.modalities, intervention=self.config.mwam, **options)

    def build_sde(self, host: Host) -> BranchEnhancer:
        """SDE on the host's branches (``sde: true``): enhancement hooks and the dual-domain loss."""
        return BranchEnhancer(host.branches(), dict(self.config.sde_options), seed=self.config.seed)

    def build_optimizer(self, host: Host) -> torch.optim.Optimizer:
        c = self.config
        return torch.optim.SGD(
            host.parameters(),
            lr=c.lr,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
            nesterov=c.nesterov and c.momentum > 0,
        )

    def build_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        c = self.config
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: lr_factor(epoch, c.warmup_epochs, c.milestones, c.lr_gamma)
        )

    def build_loader(self, dataset: Any, sampler: EpochBatchSampler) -> DataLoader:
        c = self.config
        # Its own generator: a DataLoader otherwise draws each epoch's worker base seed from the global RNG,
        # which would shift the model's random stream on resume (augmentation is seeded per sample instead).
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=c.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            generator=torch.Generator().manual_seed(c.seed),
        )

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        """Stop after the current step, checkpoint, and raise :class:`TrainingInterruptedError`."""
        self._stop_requested = True

    @contextmanager
    def _signals(self):
        def handler(signum, frame):
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

    def _seed(self) -> None:
        seed = self.config.seed
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        if self.config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=self.device.type == "cuda")

    # ------------------------------------------------------------------ the run
    def setup(self) -> None:
        c = self.config
        self.device = self.build_device()
        self._seed()
        self.task = build_task(c.task, c.dataset, c.data_root, c.seed, c.data_options)
        self.host = self.build_host().to(self.device)
        if tuple(self.host.modalities) != tuple(self.task.modalities):
            raise ValueError(
                f"host {c.host} has modalities {self.host.modalities}; data set {c.dataset} has {self.task.modalities}"
            )
        self.channels_last = c.channels_last if c.channels_last is not None else self.device.type == "cuda"
        if self.channels_last:
            self.host = self.host.to(memory_format=torch.channels_last)
        amp = c.amp if c.amp != "auto" else ("bf16" if self.device.type == "cuda" else "off")
        self.autocast_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.mwam = self.build_mwam(self.host).to(self.device)
        self.sde = self.build_sde(self.host) if c.sde else None
        self.optimizer = self.build_optimizer(self.host)
        self.scheduler = self.build_scheduler(self.optimizer)
        self.train_set = self.task.build_dataset("train", train=True)
        self.sampler = EpochBatchSampler(
            len(self.train_set), c.batch_size, c.seed, shuffle=True, drop_last=True, max_batches=c.steps_per_epoch
        )
        self.train_loader = self.build_loader(self.train_set, self.sampler)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.history: list[dict[str, Any]] = []
        self.epoch_losses: list[torch.Tensor] = []  # this epoch's step losses, kept on the device (no sync)
        self.epoch_sde: list[dict[str, torch.Tensor]] = []  # this epoch's SDE loss terms (device) per step
        self.epoch_energy: list[dict[str, float]] = []  # SDE energy fractions at the logged steps
        self._eval_loaders: dict[str, DataLoader] = {}
        self.wandb_id: str | None = None
        self.elapsed = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {
            "config_key": self.config.key,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "host": self.host.state_dict(),
            "mwam": self.mwam.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "history": self.history,
            "wandb_id": self.wandb_id,
            "elapsed": self.elapsed,
            "epoch_losses": self.epoch_losses,
            "sde": self.sde.state_dict() if self.sde is not None else None,
            "epoch_sde": self.epoch_sde,
            "epoch_energy": self.epoch_energy,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["config_key"] != self.config.key:
            raise ValueError(f"checkpoint belongs to run {state['config_key']}, not {self.config.key}")
        self.host.load_state_dict(state["host"])
        self.mwam.load_state_dict(state["mwam"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step, self.history = state["global_step"], state["history"]
        self.wandb_id, self.elapsed = state["wandb_id"], state["elapsed"]
        self.epoch_losses = list(state["epoch_losses"])
        self.epoch_sde, self.epoch_energy = list(state["epoch_sde"]), list(state["epoch_energy"])
        if self.sde is not None:
            self.sde.load_state_dict(state["sde"])

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimisation step: MWAM measures the batch (Alg. 1 l. 3-5), forward, loss, backward, update."""
        inputs = self.task.inputs(batch, self.device)
        self.mwam.step(inputs)
        if self.sde is not None:
            self.sde.begin_step(self.progress)
        if self.channels_last:
            inputs = {m: x.contiguous(memory_format=torch.channels_last) for m, x in inputs.items()}
        amp = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else nullcontext()
        )
        with amp:
            output = self.host(inputs, None)
            loss, parts = self.compute_loss(inputs, output, batch)
            if self.sde is not None:
                sde_loss, sde_parts = self.sde.loss(output.present)
                loss = loss + sde_loss
                sde_parts = {k if k.startswith("sde/") else f"sde/{k}": v.detach() for k, v in sde_parts.items()}
                self.epoch_sde.append(sde_parts)
                parts = {**parts, **sde_parts, "loss/total": loss.detach()}
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # MWAM's hooks scale the branch gradients by K here
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return parts

    @property
    def progress(self) -> float:
        """Training progress in [0, 1]: completed epochs plus the done fraction of this one, over ``epochs``."""
        steps = max(self.sampler.batches_per_epoch, 1)
        return min((self.epoch + self.step_in_epoch / steps) / self.config.epochs, 1.0)

    def compute_loss(
        self, inputs: dict[str, torch.Tensor], output: HostOutput, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss and its named, detached parts (``loss/...``); default: the task's loss."""
        return self.task.loss(output, batch, self.mwam)

    def on_epoch_end(self, epoch: int, entry: dict[str, Any]) -> None:
        """Called after each epoch's training (and validation), before its history entry and checkpoint are
        written; a method may add to ``entry`` (the epoch's history) and to its own state here."""

    def _sde_epoch_means(self) -> dict[str, float]:
        """This epoch's mean SDE loss terms (every step) and energy fractions (the logged steps)."""
        means: dict[str, float] = {}
        if self.epoch_sde:
            for key in self.epoch_sde[0]:
                means[key] = float(torch.stack([p[key].float() for p in self.epoch_sde]).mean())
        if self.epoch_energy:
            for key in self.epoch_energy[0]:
                means[key] = sum(e[key] for e in self.epoch_energy) / len(self.epoch_energy)
        return means

    def on_train_start(self) -> None:
        """Called once the tracker exists, before the first (or resumed) epoch."""

    def describe(self) -> dict[str, Any]:
        """What the method adds to the run's registry entry (under ``method``)."""
        return {"method": self.config.trainer}

    def _log_step(self, parts: dict[str, torch.Tensor]) -> None:
        values = {k: float(v) for k, v in parts.items()}
        values.update(self.mwam.record().log_dict())
        if self.sde is not None:
            energy = self.sde.energy()
            self.epoch_energy.append(energy)
            values.update(energy)
        values["lr"] = self.optimizer.param_groups[0]["lr"]
        self.tracker.log(values, step=self.global_step)
        self.curves.write(
            {k: v for k, v in values.items() if k.startswith(("loss/", "mwam/K/", "mwam/frm/"))}, self.global_step
        )

    def fit(self) -> None:
        from tqdm.auto import trange

        c = self.config
        start = time.perf_counter() - self.elapsed
        epochs = trange(
            self.epoch,
            c.epochs,
            desc=f"train {c.column or c.host}",
            disable=not c.progress,
            initial=self.epoch,
            total=c.epochs,
        )
        for epoch in epochs:
            self.epoch = epoch
            self.sampler.set_epoch(epoch, self.step_in_epoch)
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(epoch)
            self.host.train()
            if self.step_in_epoch == 0:
                self.epoch_losses, self.epoch_sde, self.epoch_energy = [], [], []
            for batch in self.train_loader:
                parts = self.train_step(batch)
                self.step_in_epoch += 1
                self.global_step += 1
                self.epoch_losses.append(parts["loss/fused"])
                if self.global_step % c.log_every == 0:
                    self._log_step(parts)
                for callback in self.callbacks:
                    callback(self, self.global_step)
                if self._stop_requested:
                    self.elapsed = time.perf_counter() - start
                    save_checkpoint(self.checkpoint_path, self.state_dict())
                    raise TrainingInterruptedError(
                        f"stopped at epoch {epoch}, step {self.step_in_epoch}; checkpoint {self.checkpoint_path}; "
                        "continue with --resume"
                    )
            mean_loss = float(torch.stack(self.epoch_losses).mean()) if self.epoch_losses else math.nan
            entry = {"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"], "loss": mean_loss}
            if self.sde is not None:
                entry["sde"] = self._sde_epoch_means()
                self.tracker.log({f"epoch/{k}": v for k, v in entry["sde"].items()}, step=self.global_step)
            if c.val_every and (epoch + 1) % c.val_every == 0:
                validation = self.evaluate(split="val")
                entry["val"] = validation
                self.tracker.log(
                    {
                        f"val/{subset}/{name}": value
                        for subset, values in validation.items()
                        for name, value in values.items()
                    },
                    step=self.global_step,
                )
            self.on_epoch_end(epoch, entry)
            self.history.append(entry)
            self.tracker.log(
                {"epoch/loss": mean_loss, "epoch/lr": self.optimizer.param_groups[0]["lr"], "epoch": epoch},
                step=self.global_step,
            )
            self.scheduler.step()
            self.epoch, self.step_in_epoch = epoch + 1, 0
            self.elapsed = time.perf_counter() - start
            save_checkpoint(self.checkpoint_path, self.state_dict())

    def evaluate(self, split: str | None = None) -> dict[str, dict[str, float]]:
        """Every subset on ``split`` (default: the run's ``eval_split``), in the paper's order."""
        c = self.config
        split = split or c.eval_split
        return evaluate_subsets(
            self.host,
            self.task,
            self.eval_loader(split),
            self.device,
            self.autocast_dtype,
            c.progress,
            self.channels_last,
            description=f"{split} {c.column or c.host}",
        )

    def eval_loader(self, split: str) -> DataLoader:
        """The (cached) evaluation loader of ``split``: no shuffling, its own generator."""
        c = self.config
        if split not in self._eval_loaders:
            dataset = self.task.build_dataset(split, train=False)
            # own generator: iterating a DataLoader otherwise draws from the global RNG and shifts training
            self._eval_loaders[split] = DataLoader(
                dataset,
                batch_size=c.eval_batch_size,
                shuffle=False,
                num_workers=c.num_workers,
                generator=torch.Generator().manual_seed(c.seed),
            )
        return self._eval_loaders[split]

    def run(self, resume: bool = False, force: bool = False) -> dict[str, Any]:
        """Train (or continue) and evaluate; returns the registry entry. A finished run is reused unless ``force``."""
        c = self.config
        if self.registry.has(c) and not force:
            log.info("run %s is already in the registry (use force to retrain)", c.key)
            return self.registry.load(c)
        self.resume = resume
        self.setup()
        if resume and self.checkpoint_path.exists():
            self.load_state_dict(load_checkpoint(self.checkpoint_path, self.device))
            log.info("resuming run %s at epoch %d, step %d", c.key, self.epoch, self.step_in_epoch)
        elif self.checkpoint_path.exists():
            log.warning("run %s has a checkpoint but resume was not asked for: starting over", c.key)
        self.tracker = Tracker(
            self.wandb_mode,
            self.registry.root.parent,
            name=f"{c.column or c.host} [{c.key}]",
            config={**c.to_dict(), "key": c.key},
            run_id=self.wandb_id,
            group=f"table{c.table}" if c.table else None,
        )
        self.wandb_id = self.tracker.run_id
        self.curves = CurveWriter(self.run_dir / "curves.csv", panel=c.column or self.variant)
        try:
            self.on_train_start()
            with self._signals():
                self.fit()
            subsets = self.evaluate()
            result = self._result(subsets)
            save_checkpoint(self.registry.weights_path(c), {"config_key": c.key, "host": self.host.state_dict()})
            self.registry.save(result)
            # Finished: the final weights (model.pt) and the result remain; the resume checkpoint (weights, optimiser
            # state, RNG ...) is no longer needed and is the largest file of a run.
            self.checkpoint_path.unlink(missing_ok=True)
            self._log_result(result)
        finally:
            self.tracker.finish()
        return result

    @property
    def variant(self) -> str:
        c = self.config
        name = c.host if c.mwam == "none" else f"{c.host}+mwam-{c.mwam}"
        return f"{name}+sde" if c.sde else name

    def _result(self, subsets: dict[str, dict[str, float]]) -> dict[str, Any]:
        metric = self.task.new_metric()
        return {
            "key": self.config.key,
            "config": self.config.to_dict(),
            "variant": self.variant,
            "metric": metric.display_name,
            "primary": metric.primary,
            "subsets": subsets,
            "seed": self.config.seed,
            "git_commit": git_commit(),
            "wall_time_s": round(self.elapsed, 2),
            "device": device_name(self.device),
            "synthetic": self.config.synthetic,
            "history": self.history,
            "method": self.describe(),
            "torch": torch.__version__,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def _log_result(self, result: dict[str, Any]) -> None:
        primary = result["primary"]
        full = list(result["subsets"].values())[-1][primary]
        rows = []
        for key, values in result["subsets"].items():
            value = values[primary]
            pcr = (full - value) / full * 100 if full else math.nan
            rows.append([key, value, pcr if key != list(result["subsets"])[-1] else None])
        self.tracker.log_table("results/subsets", ["subset", result["metric"], "PCR"], rows)
        self.tracker.summary({f"test/{k}/{primary}": v[primary] for k, v in result["subsets"].items()})
