"""The hooks of ``agm`` (see the package docstring). Torch and the maths (:mod:`reproduce.methods.agm.maths`) are
imported inside the hooks, so that the catalog imports this module without torch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from reproduce.methods.agm.options import AGMOptions
from reproduce.methods.base import Plugin, StepData, register_plugin

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext

WHO = "agm"


def run_modalities(ctx: TrainContext) -> tuple[str, ...]:
    """The run's modalities (the task's, else the host's)."""
    return tuple(getattr(ctx.task, "modalities", None) or ctx.host.modalities)


def fusion_head_weights(host: Any, head: str | None = None) -> list[tuple[str, Any]]:
    """The fusion head's weights: with ``head`` (a parameter name or a module prefix), the host's trainable
    parameters of that name or under that prefix with more than one dimension (RFNet's ``decoder_fuse.seg_layer``:
    ``decoder_fuse.seg_layer.weight``); without, its trainable parameters outside its ``branches()`` with more than
    one dimension (resnet18_concat: ``head.weight``, the authors' ``fusion_module.fc_out.weight``; with
    ``fusion="sum"``: each ``heads[m].weight``)."""
    if head is not None:
        prefix = head.strip(".")
        return [
            (n, p)
            for n, p in host.named_parameters()
            if (n == prefix or n.startswith(prefix + ".")) and p.requires_grad and p.dim() > 1
        ]
    in_branches = {id(p) for branch in host.branches().values() for p in branch.parameters()}
    return [(n, p) for n, p in host.named_parameters() if id(p) not in in_branches and p.requires_grad and p.dim() > 1]


def mono_modal_score(ctx: TrainContext, output: Any, batch: Mapping[str, Any]) -> Any:
    """A mono-modal output's score s_m (detached, float32): classification logits (B, C), the authors' batch mean of
    -log softmax(o_m)[y] with p floored at 1e-8 (:func:`maths.loss_score`); a dense output (B, C, *spatial), the
    batch mean of the task's own per-sample loss (``Task.per_sample_loss``: BraTS, the weighted cross-entropy plus
    soft Dice each RFNet output is trained with; NYUv2, ESANet's class-weighted cross-entropy over the non-void
    pixels), the dense counterpart of "the cross-entropy the output is trained with"."""
    from reproduce.methods.agm import maths

    if output.dim() == 2:
        return maths.loss_score(output, ctx.task.target(batch, output.device))
    return ctx.task.per_sample_loss(output.detach().float(), batch).detach().float().mean()


@contextmanager
def eval_mode(module: Any) -> Iterator[None]:
    """``module`` in eval mode (BatchNorm on its running statistics, no dropout); every sub-module's own mode is
    restored afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def zeroed(inputs: Mapping[str, Any], absent: frozenset[str] | set[str]) -> dict[str, Any]:
    """``inputs`` with the modalities in ``absent`` replaced by zeros (the authors zero the inputs)."""
    import torch

    return {m: torch.zeros_like(x) if m in absent else x for m, x in inputs.items()}


@register_plugin("agm")
class AGM(Plugin):
    """Adaptive gradient modulation by Shapley mono-modal outputs (package docstring)."""

    options_class = AGMOptions

    def __init__(self, options: AGMOptions | None = None) -> None:
        super().__init__(options if options is not None else AGMOptions())
        self.settings = self.options.settings()
        self.modalities: tuple[str, ...] = ()
        self.head: list[Any] = []
        self.parameters: dict[str, list[Any]] = {}
        self.running: list[float] = []
        self.iteration = 0
        self.applied: list[float] = []
        self.last: dict[str, float] = {}
        self._clipped = False
        self._outputs: list[Any] | None = None

    # ------------------------------------------------------------------ set-up
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, Any]) -> None:
        from reproduce.methods.modality_signals import branch_parameters

        self.modalities = run_modalities(ctx)
        count = len(self.modalities)
        if self.settings["variant"] == "official" and count != 2:
            raise ValueError(
                f"agm (official) is the authors' two-modality AGM (o_a = 1/2 (total - pad_a + pad_v)); this run has "
                f"{count} modalities {list(self.modalities)}: train it on a pair (data.modalities) or use "
                "variant: balancebenchmark (M modalities)"
            )
        if count < 2:
            raise ValueError(f"agm balances modalities: it needs at least two, this run has {list(self.modalities)}")
        branches = ctx.host.branches()
        missing = [m for m in self.modalities if m not in branches]
        if missing:
            raise ValueError(f"agm: the host {type(ctx.host).__name__} has no branch for {missing}")
        self.head = []
        if self.settings["clipping"]:
            head = self.settings["head"]
            self.head = [p for _, p in fusion_head_weights(ctx.host, head)]
            if not self.head and head is None:
                raise ValueError(
                    f"agm clips when a gradient of the fusion head's weights exceeds +-{self.settings['clip']}, but "
                    f"the host {type(ctx.host).__name__} has no trainable weight matrix outside its branches (the "
                    "fusion head is read as the parameters outside host.branches()): name it (options.head) or set "
                    "clipping: false"
                )
            if not self.head:
                raise ValueError(
                    f"agm: options.head {head!r} names no trainable weight (more than one dimension) of the host "
                    f"{type(ctx.host).__name__}"
                )
        if self.settings["variant"] == "balancebenchmark":
            self.parameters = {m: [p for _, p in branch_parameters(ctx.host, m, "matrix")] for m in self.modalities}
        self.running = [0.0] * count
        self.iteration = 0
        self.applied = [1.0] * count

    def extra_passes(self) -> dict[str, Any]:
        """The cost: host forward passes per step beyond the trainer's own (in eval mode), with and without
        gradient (the passes with gradient are also back-propagated)."""
        count = len(self.modalities) or 2
        if self.settings["variant"] == "official":
            return {"with_gradient": count, "without_gradient": int(self.settings["all_zero_pass"])}
        return {"with_gradient": 0, "without_gradient": 2**count - 1}

    # ------------------------------------------------------------------ hooks
    def modulating(self, ctx: TrainContext) -> bool:
        end = self.settings["modulation_end"]
        return self.settings["modulation_start"] <= ctx.epoch and (end is None or ctx.epoch <= end)

    def before_forward(self, ctx: TrainContext, inputs: Mapping[str, Any]) -> None:
        """BalanceBenchmark: the coalition passes (no gradient, eval mode) before the training forward pass, as its
        ``newGrad`` runs them (so they see BatchNorm's running statistics before this batch updates them)."""
        if self.settings["variant"] != "balancebenchmark":
            return
        import torch

        from reproduce.methods.agm import maths

        runner, inputs = self._runner(ctx), self._prepared(ctx, inputs)
        with torch.no_grad(), eval_mode(ctx.host), self._autocast(ctx):
            values = {
                s: runner(zeroed(inputs, set(self.modalities) - s), None).logits
                for s in maths.nonempty_coalitions(self.modalities)
            }
        by_modality = maths.coalition_outputs(values, self.modalities)
        self._outputs = [by_modality[m] for m in self.modalities]

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        """The mono-modal outputs (official: the zero-input passes now, after the training forward pass), the
        scores, the running means and the coefficients; official: the loss's fused term becomes CE on o_1' + o_2'
        (each o_m' with k_m times its gradient)."""
        import torch

        from reproduce.methods.agm import maths
        from reproduce.methods.modality_signals import classification_logits

        official = self.settings["variant"] == "official"
        if official:
            total = classification_logits(step.output.logits, WHO)
            runner = self._runner(ctx)
            with eval_mode(ctx.host):
                pads = [runner(zeroed(step.inputs, {m}), None).logits for m in self.modalities]
                if self.settings["all_zero_pass"]:
                    with torch.no_grad():
                        runner(zeroed(step.inputs, set(self.modalities)), None)
            outputs = list(maths.two_modality_outputs(total, pads[0], pads[1]))
        else:
            if self._outputs is None:
                raise RuntimeError("agm: no coalition outputs this step (its before_forward hook did not run)")
            outputs, self._outputs = self._outputs, None
        local = [float(s) for s in torch.stack([mono_modal_score(ctx, o, step.batch) for o in outputs]).tolist()]
        gathered = ctx.distributed.gather(local)
        scores = [sum(part[i] for part in gathered) / len(gathered) for i in range(len(local))]
        rule = maths.official_coefficients if official else maths.balancebenchmark_coefficients
        k, ratio, opt = rule(scores, self.running, self.settings["alpha"], self.settings["cap"])
        self.iteration += 1  # the running means are updated after k, in every epoch
        self.running = [maths.running_mean(r, s, self.iteration) for r, s in zip(self.running, scores, strict=True)]
        if self.modulating(ctx):
            self.applied = list(k)
        elif self.settings["after_modulation"] == "release":
            self.applied = [1.0] * len(k)
        self.last = {f"{WHO}/modulating": float(self.modulating(ctx))}
        for i, m in enumerate(self.modalities):
            self.last.update(
                {
                    f"{WHO}/k/{m}": self.applied[i],
                    f"{WHO}/score/{m}": scores[i],
                    f"{WHO}/running_score/{m}": self.running[i],
                    f"{WHO}/ratio/{m}": ratio[i],
                    f"{WHO}/optimal_ratio/{m}": opt[i],
                }
            )
        if not official:
            return loss, parts
        combined = maths.scale_gradient(outputs[0], self.applied[0]) + maths.scale_gradient(outputs[1], self.applied[1])
        fused = ctx.task.per_sample_loss(combined, step.batch).mean()
        if loss is step.terms.fused:
            return fused, parts
        return loss - step.terms.fused + fused, parts  # the other terms (auxiliary heads, plug-ins') are kept

    def before_optimizer_step(self, ctx: TrainContext) -> None:
        """BalanceBenchmark: the branches' non-1-D gradients times k_m. Both: when a gradient of the fusion head's
        weights lies outside +-clip, every gradient is clipped to total norm ``clip``."""
        import torch

        if self.settings["variant"] == "balancebenchmark":
            for m, k in zip(self.modalities, self.applied, strict=True):
                if k == 1.0:
                    continue
                for p in self.parameters[m]:
                    if p.grad is not None:
                        p.grad.mul_(k)
        clip = self.settings["clip"]
        if not self.settings["clipping"]:
            self._clipped = False
            return
        grads = [p.grad for p in self.head if p.grad is not None]
        self._clipped = bool(grads) and bool(torch.stack([g.detach().abs().max() for g in grads]).max() > clip)
        if self._clipped:
            torch.nn.utils.clip_grad_norm_(list(ctx.host.parameters()), max_norm=clip)

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        values.update(self.last)
        values[f"{WHO}/clipped"] = float(self._clipped)

    @staticmethod
    def _prepared(ctx: TrainContext, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The inputs as the training forward pass gets them (channels-last 4-D tensors when the run uses it)."""
        import torch

        if not getattr(ctx, "channels_last", False):
            return dict(inputs)
        return {m: x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for m, x in inputs.items()}

    @staticmethod
    def _autocast(ctx: TrainContext) -> Any:
        """The run's autocast (the training forward pass runs under it; ``before_forward`` is outside it)."""
        from contextlib import nullcontext

        import torch

        dtype = getattr(ctx, "autocast_dtype", None)
        if dtype is None:
            return nullcontext()
        return torch.autocast(torch.device(ctx.device).type, dtype=dtype)

    @staticmethod
    def _runner(ctx: TrainContext) -> Any:
        """What the extra passes go through: the training model, or the host itself under DDP (a DDP wrapper takes
        one forward pass per backward)."""
        import torch

        if isinstance(ctx.model, torch.nn.parallel.DistributedDataParallel):
            return ctx.host
        return ctx.model

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The running scores S_m, the iteration count and the coefficients in force (identical on every process:
        the scores are averaged over the processes)."""
        return {"running": list(self.running), "iteration": self.iteration, "applied": list(self.applied)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if len(state["running"]) != len(self.running):
            raise ValueError(
                f"agm: the checkpoint has {len(state['running'])} running scores, this run {len(self.running)}"
            )
        self.running = [float(v) for v in state["running"]]
        self.iteration = int(state["iteration"])
        self.applied = [float(v) for v in state["applied"]]

    def describe(self) -> dict[str, Any]:
        return {
            "plugin": self.name,
            **self.settings,
            "modulation_epochs": "0-based, inclusive; end null: to the last epoch",
            "extra_forward_passes_per_step": self.extra_passes(),
        }
