"""The hooks of ``lfm`` (see the package docstring); torch and the maths are imported by the hooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, register_plugin
from reproduce.methods.lfm.options import INIT_LAMBDAS, LFMOptions
from reproduce.methods.lfm.schedule import fitted_lambdas, learnable_rate, learnable_step

if TYPE_CHECKING:
    from reproduce.methods.base import StepData
    from reproduce.methods.context import TrainContext

NAME = "lfm"


def first_samples(loader: Any, size: int | None) -> dict[str, Any]:
    """The first ``size`` samples of ``loader``'s batches as one batch (tensors concatenated, lists joined); ``size``
    None: a quarter of the first batch (BalanceBenchmark's ``valbatch['label'].size(0) // 4``, at least 1)."""
    import torch

    taken: list[Mapping[str, Any]] = []
    count = 0
    for batch in loader:
        if size is None:
            size = max(1, len(batch["label"]) // 4)
        taken.append(batch)
        count += len(batch["label"])
        if count >= size:
            break
    if not taken:
        raise ValueError("lfm: the held-out split has no samples")
    out: dict[str, Any] = {}
    for key, first in taken[0].items():
        values = [b[key] for b in taken]
        if isinstance(first, torch.Tensor):
            out[key] = torch.cat(values)[:size]
        elif isinstance(first, list | tuple):
            out[key] = [x for v in values for x in v][:size]
        else:
            out[key] = first
    return out


@register_plugin(NAME)
class LFMPlugin(Plugin):
    """LFM's loss in place of the step's loss, its lambdas per epoch (package docstring)."""

    options_class = LFMOptions

    def __init__(self, options: LFMOptions | None = None) -> None:
        super().__init__(options if options is not None else LFMOptions())
        self.settings = self.options.effective()
        if self.settings["schedule"] == "learnable":
            self.lambda_c, self.lambda_g = INIT_LAMBDAS[self.settings["init"]]
        else:
            self.lambda_c, self.lambda_g = fitted_lambdas(0)
        self.updated_epoch = -1  # the learnable schedule: the last epoch whose update ran
        self.hypergradient: float | None = None
        self._heldout: dict[str, Any] | None = None

    # ------------------------------------------------------------------ hooks
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, Any]) -> None:
        modalities = tuple(ctx.task.modalities)
        if len(modalities) < 2:
            raise ValueError(f"lfm aligns the predictions of at least two modalities; this run has {list(modalities)}")
        config = ctx.config
        mwam = getattr(config, "mwam", None)
        if mwam is not None and mwam.intervention in ("loss", "hybrid"):
            raise ValueError(
                f"lfm replaces the step's loss, so MWAM's {mwam.intervention!r} intervention (Eq. 7, a loss) would be "
                "dropped; combine lfm with mwam intervention 'grad' or 'none'"
            )

    def before_forward(self, ctx: TrainContext, inputs: Mapping[str, Any]) -> None:
        self._lambdas_for(ctx)

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        from reproduce.methods.lfm.maths import lfm_loss

        self._lambdas_for(ctx)
        ce, align = self._terms(ctx, step.output, step.batch)
        total = lfm_loss(ce, align, self.lambda_c, self.lambda_g)
        parts = {**parts, "loss/lfm": total.detach(), "loss/lfm_cls": ce.detach(), "loss/lfm_align": align.detach()}
        return total, parts

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        record: dict[str, Any] = {"lambda_c": self.lambda_c, "lambda_g": self.lambda_g}
        if self.settings["schedule"] == "learnable":
            record["hypergradient"] = self.hypergradient
            record["lr_alpha"] = learnable_rate(epoch, self.options.lr_alpha, self.options.halve_every)
        entry[NAME] = record

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        values[f"{NAME}/lambda_c"] = float(self.lambda_c)
        values[f"{NAME}/lambda_g"] = float(self.lambda_g)
        if self.hypergradient is not None:
            values[f"{NAME}/hypergradient"] = float(self.hypergradient)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "lambda_c": self.lambda_c,
            "lambda_g": self.lambda_g,
            "updated_epoch": self.updated_epoch,
            "hypergradient": self.hypergradient,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.lambda_c, self.lambda_g = float(state["lambda_c"]), float(state["lambda_g"])
        self.updated_epoch = int(state["updated_epoch"])
        self.hypergradient = None if state["hypergradient"] is None else float(state["hypergradient"])

    def describe(self) -> dict[str, Any]:
        out = {"plugin": self.name, **self.settings}
        if self.settings["schedule"] == "learnable":
            out["init_lambdas"] = list(INIT_LAMBDAS[self.settings["init"]])
        else:
            for name in ("init", "lr_alpha", "halve_every", "heldout_split", "heldout_size", "heldout_mode"):
                out.pop(name)
        return out

    # ------------------------------------------------------------------ the lambdas
    def _lambdas_for(self, ctx: TrainContext) -> None:
        """This epoch's lambdas: the fitted polynomial, or the learnable update once per epoch before its first
        step (the official ``getAlpha_Learnable`` before ``train_audio_video``)."""
        if self.settings["schedule"] == "fitted":
            self.lambda_c, self.lambda_g = fitted_lambdas(ctx.epoch)
            return
        if self.updated_epoch == ctx.epoch:
            return
        # Every process computes it (a SyncBatchNorm in train mode is a collective); rank 0's held-out batch decides.
        hypergradient = float(ctx.distributed.broadcast(self._hypergradient(ctx)))
        rate = learnable_rate(ctx.epoch, self.options.lr_alpha, self.options.halve_every)
        self.lambda_c, self.lambda_g = learnable_step(self.lambda_g, hypergradient, rate)
        self.hypergradient, self.updated_epoch = hypergradient, ctx.epoch

    def _hypergradient(self, ctx: TrainContext) -> float:
        """The official signal on the held-out batch (``maths.first_parameter_hypergradient``), in float32, the
        host in ``heldout_mode`` (its mode restored). The host runs on hook-free leaves of its parameters
        (``torch.func.functional_call``): tensor hooks on the parameters (MWAM's K) would otherwise scale the
        gradients of this measurement."""
        import torch

        from reproduce.methods.lfm.maths import first_parameter_hypergradient

        if self._heldout is None:
            self._heldout = first_samples(ctx.loader(self.settings["heldout_split"]), self.settings["heldout_size"])
        batch, host = self._heldout, ctx.host
        was_training = host.training
        host.train(self.settings["heldout_mode"] == "train")
        try:
            with torch.enable_grad():
                leaves = {n: p.detach().requires_grad_(True) for n, p in host.named_parameters() if p.requires_grad}
                output = torch.func.functional_call(host, leaves, (ctx.task.inputs(batch, ctx.device), None))
                ce, align = self._terms(ctx, output, batch)
                return first_parameter_hypergradient(list(leaves.values()), ce, align, self.lambda_c, self.lambda_g)
        finally:
            host.train(was_training)

    def _terms(self, ctx: TrainContext, output: Any, batch: Mapping[str, Any]) -> tuple[Any, Any]:
        from reproduce.methods.lfm.maths import loss_terms
        from reproduce.methods.modality_signals import classification_logits, unimodal_logits

        logits = [classification_logits(x, NAME) for x in unimodal_logits(ctx, output, NAME).values()]
        target = ctx.task.target(batch, logits[0].device)
        fused = classification_logits(output.logits, NAME) if self.settings["cls_input"] == "fused" else None
        return loss_terms(logits, target, self.options.divergence, fused)
