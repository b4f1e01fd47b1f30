"""The hooks of ``crmt`` (see the package docstring); torch and the maths are imported by the hooks, not by this
module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, StepData, register_plugin
from reproduce.methods.crmt.options import CRMTOptions

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext

#: The training steps: 1 (CE + rho x margin regulariser, every parameter) and 2 (the certified bound, scales only).
STEPS = (1, 2)


def default_scale_epochs(epochs: int) -> int:
    """Step 2's epochs when ``scale_epochs`` is null: ``epochs // 4`` (a run of n + n // 3 epochs has n step-1
    epochs), at least 1 in a run of 2 or more epochs (a short synthetic run still certifies)."""
    return max(1, epochs // 4) if epochs >= 2 else 0


@register_plugin("crmt")
class CRMTPlugin(Plugin):
    """CRMT-JT's two steps on the ``resnet18_crmt`` host (package docstring)."""

    options_class = CRMTOptions

    def __init__(self, options: CRMTOptions | None = None) -> None:
        super().__init__(options if options is not None else CRMTOptions())
        self.phase = 1
        self.lipschitz: Any = None  # (M, K) float32 on the CPU once step 2 starts
        self.optimizer: Any = None  # step 2's SGD on the scales
        self.optimizer_epoch: int | None = None
        self.scale_epochs: int | None = None
        self.switch_epoch: int | None = None
        self.host: Any = None
        self.scales: list[Any] = []
        self.last: dict[str, Any] = {}
        self._lipschitz_on_device: Any = None

    # ------------------------------------------------------------------ set-up
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, Any]) -> None:
        from mwam_harness.models.resnet18_crmt import ResNet18CRMT

        host = ctx.host
        if not isinstance(host, ResNet18CRMT):
            raise ValueError(
                f"crmt trains CRMT's orthogonal, per-class-scaled head (its step 2 optimises the scales a^(m)): it "
                f"needs the host resnet18_crmt, got {type(host).__name__}; set host.name: resnet18_crmt"
            )
        if len(host.modalities) < 2:
            raise ValueError(f"crmt is a multi-modal method: it needs at least 2 modalities, got {host.modalities}")
        if host.num_classes < 2:
            raise ValueError(f"crmt's margins need at least 2 classes, got {host.num_classes}")
        epochs = ctx.epochs
        scale_epochs = self.options.scale_epochs
        if scale_epochs is None:
            scale_epochs = default_scale_epochs(epochs)
        if scale_epochs >= epochs:
            raise ValueError(
                f"crmt: scale_epochs {scale_epochs} leaves no step-1 epoch of the run's {epochs} (step 2 is the last "
                "scale_epochs epochs)"
            )
        self.scale_epochs, self.switch_epoch = scale_epochs, epochs - scale_epochs
        self.host = host
        self.scales = list(host.scale_parameters().values())

    def _scale_lr(self, ctx: TrainContext) -> float:
        """``scale_lr_factor`` x the run's learning rate (``optim.lr``, as the official ``opt.lr``)."""
        config = getattr(ctx, "config", None)
        if config is not None:
            base = float(config.optim.lr)
        else:  # a loop of one's own (LoopContext without a RunConfig): the optimiser's initial learning rate
            group = ctx.optimizer.param_groups[0]
            base = float(group.get("initial_lr", group["lr"]))
        return self.options.scale_lr_factor * base

    def _scale_optimizer(self, ctx: TrainContext) -> Any:
        import torch

        reset = self.options.reset_scale_optimizer and self.optimizer_epoch != ctx.epoch
        if self.optimizer is None or reset:
            self.optimizer = torch.optim.SGD(
                self.scales,
                lr=self._scale_lr(ctx),
                momentum=self.options.scale_momentum,
                weight_decay=self.options.scale_weight_decay,
            )
            self.optimizer_epoch = ctx.epoch
        return self.optimizer

    # ------------------------------------------------------------------ the switch
    def _switch(self, ctx: TrainContext) -> None:
        """The Lipschitz estimate over the training set (``ctx.loader("train")``, this process's shard, merged by
        the maximum over the processes), then step 2."""
        import torch

        from reproduce.methods.crmt import maths

        batches = (ctx.task.inputs(batch, ctx.device) for batch in ctx.loader("train"))
        constants = maths.lipschitz_constants(
            self.host, batches, self.host.num_classes, of=self.options.lipschitz_of, rule=self.options.lipschitz
        )
        gathered = ctx.distributed.gather(constants.cpu())
        self.lipschitz = torch.stack(list(gathered)).amax(dim=0)
        self._lipschitz_on_device = None
        self.phase = 2

    def _lipschitz_on(self, device: Any) -> Any:
        """The constants on ``device`` (copied once per phase switch or resume, not every step)."""
        cached = self._lipschitz_on_device
        if cached is None or cached.device != device:
            self._lipschitz_on_device = cached = self.lipschitz.to(device)
        return cached

    def _due(self, epoch: int) -> bool:
        return self.phase == 1 and bool(self.scale_epochs) and epoch >= self.switch_epoch

    # ------------------------------------------------------------------ hooks
    def before_forward(self, ctx: TrainContext, inputs: Mapping[str, Any]) -> None:
        """A run that reaches step 2 without the end of the last step-1 epoch (it has none: skipped epochs)
        switches here."""
        if self._due(ctx.epoch):
            self._switch(ctx)

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        from reproduce.methods.crmt import maths
        from reproduce.methods.modality_signals import classification_logits, unimodal_logits

        by_modality = unimodal_logits(ctx, step.output, self.name)
        unimodal = [classification_logits(by_modality[m], self.name) for m in self.host.modalities]
        labels = ctx.task.target(step.batch, step.output.logits.device)
        if self.phase == 1:
            margin = maths.margin_regulariser(unimodal, labels)
            self.last = {"margin": margin.detach()}
            parts["crmt/margin"] = margin.detach()
            return loss + self.options.rho * margin, parts
        objective = maths.scale_objective(
            unimodal, step.output.logits, self.scales, self.host.bias, self._lipschitz_on(labels.device), labels
        )
        self.last = {"bound": -objective.detach()}
        parts["crmt/bound"] = -objective.detach()
        if ctx.distributed.enabled:  # every parameter in DDP's backward (zero gradients, dropped after it)
            objective = objective + 0.0 * step.output.logits.float().sum()
        return objective, parts

    def before_optimizer_step(self, ctx: TrainContext) -> None:
        """Step 2: the scales' own SGD step, then every parameter's gradient dropped (``None``: the run's optimiser
        skips it -- no update, no weight decay, no momentum)."""
        if self.phase != 2:
            return
        import torch

        optimizer = self._scale_optimizer(ctx)
        grads = [p.grad for p in self.scales]
        if all(g is not None and bool(torch.isfinite(g).all()) for g in grads):  # fp16: an overflowing step skipped
            optimizer.step()
        for p in self.host.parameters():
            p.grad = None

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        record: dict[str, Any] = {"step": self.phase}
        if self._due(epoch + 1):
            self._switch(ctx)
            record["lipschitz"] = self.lipschitz_by_modality()
        record["scale_mean"] = {m: float(a.detach().float().mean()) for m, a in self.host.scale_parameters().items()}
        entry["crmt"] = record

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        values["crmt/step"] = float(self.phase)
        for name, value in self.last.items():
            values[f"crmt/{name}"] = float(value)
        for m, a in self.host.scale_parameters().items():
            values[f"crmt/scale_mean/{m}"] = float(a.detach().float().mean())

    # ------------------------------------------------------------------ state
    def lipschitz_by_modality(self) -> dict[str, list[float]] | None:
        """The Lipschitz constants per modality (one per class), or None before step 2."""
        if self.lipschitz is None:
            return None
        return {m: [float(v) for v in self.lipschitz[i]] for i, m in enumerate(self.host.modalities)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "lipschitz": None if self.lipschitz is None else self.lipschitz.clone(),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "optimizer_epoch": self.optimizer_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["phase"] not in STEPS:
            raise ValueError(f"crmt: a checkpoint's phase must be one of {STEPS}, got {state['phase']!r}")
        self.phase = state["phase"]
        self.lipschitz = None if state["lipschitz"] is None else state["lipschitz"].detach().cpu().float()
        self._lipschitz_on_device = None
        self.optimizer, self.optimizer_epoch = None, state["optimizer_epoch"]
        if state["optimizer"] is not None:
            import torch

            self.optimizer = torch.optim.SGD(
                self.scales,
                lr=state["optimizer"]["param_groups"][0]["lr"],
                momentum=self.options.scale_momentum,
                weight_decay=self.options.scale_weight_decay,
            )
            self.optimizer.load_state_dict(state["optimizer"])

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "plugin": self.name,
            "rho": o.rho,
            "scale_epochs": self.scale_epochs if self.scale_epochs is not None else o.scale_epochs,
            "step1_epochs": self.switch_epoch,
            "scale_lr_factor": o.scale_lr_factor,
            "scale_momentum": o.scale_momentum,
            "scale_weight_decay": o.scale_weight_decay,
            "reset_scale_optimizer": o.reset_scale_optimizer,
            "lipschitz": o.lipschitz,
            "lipschitz_of": o.lipschitz_of,
            "lipschitz_constants": self.lipschitz_by_modality() if self.host is not None else None,
        }
