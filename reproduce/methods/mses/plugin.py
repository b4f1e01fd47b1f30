"""The hooks of ``mses`` (see the package docstring); torch is imported by the hooks, not by this module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, register_plugin
from reproduce.methods.mses.options import MSESOptions, scaled_patience
from reproduce.methods.mslr.plugin import (
    check_modalities,
    check_predictions,
    modality_modules,
    modality_parameters,
    validation,
)

if TYPE_CHECKING:
    from reproduce.methods.base import StepData
    from reproduce.methods.context import TrainContext

NAME = "mses"


def cpu_copy(value: Any) -> Any:
    """``value`` with every tensor cloned to the CPU (dicts, lists and tuples followed; other values kept)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, Mapping):
        return {k: cpu_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(cpu_copy(v) for v in value)
    return value


def smoothed_loss(previous_raw: float | None, raw: float, weight: float = 0.6) -> float:
    """``weight x L_{t-1} + (1 - weight) x L_t`` with the previous *raw* loss (``CREMAD_main.py`` l.694-697); the
    first epoch's is its raw loss (l.686-692)."""
    return raw if previous_raw is None else weight * previous_raw + (1.0 - weight) * raw


@register_plugin(NAME)
class MSESPlugin(Plugin):
    """Each modality stopped (frozen, restored to its best epoch) when its smoothed validation loss has not reached
    a new minimum for ``patience`` epochs; training ends once every modality is stopped (package docstring)."""

    options_class = MSESOptions

    def __init__(self, options: MSESOptions | None = None) -> None:
        super().__init__(options if options is not None else MSESOptions())
        self.modalities: tuple[str, ...] = ()
        self.patience: int | None = self.options.patience
        self.parameters: dict[str, list[Any]] = {}
        self.previous_raw: dict[str, float | None] = {}
        self.smoothed: dict[str, float | None] = {}
        self.best: dict[str, float | None] = {}
        self.best_epoch: dict[str, int | None] = {}
        self.stopped: dict[str, int | None] = {}  # the epoch each modality stopped at
        self.snapshots: dict[str, Any] = {}  # each running modality's state at its best epoch (CPU)
        self._checked = False

    # ------------------------------------------------------------------ hooks
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, Any]) -> None:
        self.modalities = check_modalities(ctx, NAME)
        if self.options.patience is None:
            self.patience = scaled_patience(ctx.epochs, self.options.patience_fraction)
        self.parameters = {m: modality_parameters(ctx.host, m) for m in self.modalities}
        for table in (self.previous_raw, self.smoothed, self.best, self.best_epoch, self.stopped, self.snapshots):
            table.clear()
            table.update({m: None for m in self.modalities})

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        if not self._checked:
            check_predictions(ctx, step.output, NAME)
            self._checked = True
        return loss, parts

    def before_optimizer_step(self, ctx: TrainContext) -> None:
        for m in self.modalities:
            if self.stopped[m] is None:
                continue
            for p in self.parameters[m]:
                if self.options.freeze == "skip":
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        scores = validation(ctx, self.options.split, NAME)
        improved = []
        for m in self.modalities:
            if self.stopped[m] is not None:  # a stopped modality never runs again: no more minima
                continue
            raw = float(scores[m]["loss"])
            smoothed = smoothed_loss(self.previous_raw[m], raw, self.options.smoothing)
            self.previous_raw[m], self.smoothed[m] = raw, smoothed
            best = self.best[m]
            if best is None or smoothed < best:
                self.best[m], self.best_epoch[m] = smoothed, epoch
                improved.append(m)
        if improved:
            self._snapshot(ctx, improved)
        stopped_now = []
        for m in self.modalities:
            best_epoch = self.best_epoch[m]
            if self.stopped[m] is None and best_epoch is not None and epoch - best_epoch > self.patience:
                self.stopped[m] = epoch
                self._restore(ctx, m)
                self.snapshots[m] = None
                stopped_now.append(m)
        entry[NAME] = {
            "loss": {m: float(scores[m]["loss"]) for m in self.modalities},
            "smoothed": dict(self.smoothed),
            "best_epoch": dict(self.best_epoch),
            "stopped": dict(self.stopped),
        }
        if stopped_now:
            entry[NAME]["stopped_now"] = stopped_now
        if all(self.stopped[m] is not None for m in self.modalities):
            when = ", ".join(f"{m} at epoch {self.stopped[m]} (best {self.best_epoch[m]})" for m in self.modalities)
            ctx.finish_training(f"mses: every modality stopped: {when}")

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        for m in self.modalities:
            values[f"{NAME}/coefficient/{m}"] = 0.0 if self.stopped[m] is not None else 1.0
            if self.smoothed[m] is not None:
                values[f"{NAME}/smoothed_loss/{m}"] = float(self.smoothed[m])

    # ------------------------------------------------------------------ the best states
    def _snapshot(self, ctx: TrainContext, modalities: list[str]) -> None:
        """A CPU copy of the state each of ``modalities`` would be restored to: its branch and own head (and their
        optimiser state), or the whole host and optimiser (one copy shared by every modality improved now)."""
        optimizer = ctx.optimizer
        if self.options.restore == "model":
            shared = {
                "host": cpu_copy(ctx.host.state_dict()),
                "optimizer": None if optimizer is None else cpu_copy(optimizer.state_dict()),
            }
            for m in modalities:
                self.snapshots[m] = shared
            return
        for m in modalities:
            modules = modality_modules(ctx.host, m)
            states = None
            if optimizer is not None:
                states = [cpu_copy(optimizer.state[p]) if p in optimizer.state else None for p in self.parameters[m]]
            self.snapshots[m] = {
                "modules": {k: cpu_copy(module.state_dict()) for k, module in modules.items()},
                "optimizer": states,
            }

    def _restore(self, ctx: TrainContext, modality: str) -> None:
        """Load ``modality``'s best state (``restore``). The whole-model reload keeps the optimiser's current
        hyper-parameters (learning rate ...): the schedule goes on from where it is."""
        snapshot, optimizer = self.snapshots[modality], ctx.optimizer
        if snapshot is None:
            return
        if self.options.restore == "model":
            ctx.host.load_state_dict(snapshot["host"])
            if optimizer is not None and snapshot["optimizer"] is not None:
                groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
                optimizer.load_state_dict(cpu_copy(snapshot["optimizer"]))  # a copy: others may share the snapshot
                for group, kept in zip(optimizer.param_groups, groups, strict=True):
                    group.update(kept)
            return
        modules = modality_modules(ctx.host, modality)
        for k, module in modules.items():
            module.load_state_dict(snapshot["modules"][k])
        if optimizer is not None and snapshot["optimizer"] is not None:
            for p, state in zip(self.parameters[modality], snapshot["optimizer"], strict=True):
                if state is None:
                    optimizer.state.pop(p, None)
                else:  # "step" stays on the CPU, as torch keeps it (non-capturable optimisers)
                    optimizer.state[p] = {
                        k: (v.clone() if k == "step" else v.to(p.device, copy=True)) if hasattr(v, "to") else v
                        for k, v in state.items()
                    }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "previous_raw": dict(self.previous_raw),
            "smoothed": dict(self.smoothed),
            "best": dict(self.best),
            "best_epoch": dict(self.best_epoch),
            "stopped": dict(self.stopped),
            "snapshots": dict(self.snapshots),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name in ("previous_raw", "smoothed", "best", "best_epoch", "stopped", "snapshots"):
            setattr(self, name, dict(state[name]))

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "plugin": self.name,
            "patience": self.patience,
            "patience_rule": "given" if o.patience is not None else f"round({o.patience_fraction:.6g} x epochs), >= 1",
            "smoothing": o.smoothing,
            "restore": o.restore,
            "freeze": o.freeze,
            "split": o.split,
        }
