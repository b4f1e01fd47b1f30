"""MWAM in PyTorch Lightning: :class:`MWAMCallback` (docs/mwam.md, "PyTorch Lightning").

MWAM needs no callback in Lightning. The recipe is: MWAM is an attribute of the LightningModule (so it moves with
the module, and its bank and step count are in the module's ``state_dict`` and every checkpoint), and
``training_step`` calls ``self.mwam.step(inputs, present)`` before computing the loss; with the default
``MWAM(...)`` the gradient hooks then scale each micro-batch's branch gradients by its K during ``backward``, and in
``loss`` / ``hybrid`` mode the loss is ``self.mwam.weighted_loss(fused_loss, {modality: aux_loss})``.

The callback adds what a plain ``training_step`` cannot do:

* **K once per optimiser step.** For an MWAM built with ``gradient_hooks=False`` (intervention ``grad`` or
  ``hybrid``), it keeps the K of every micro-batch (read after each backward) and in ``on_before_optimizer_step`` --
  after AMP's ``unscale_``, before Lightning's gradient clipping -- multiplies the accumulated branch gradients once
  by the mean K of the micro-batches accumulated into them (``trainer.accumulate_grad_batches``), as
  ``examples/own_training_loop.py`` and the harness's ultralytics trainer do. With the default hooks nothing is
  applied here: each micro-batch's gradient is scaled by its own K during its backward.
* **A check** (``check_steps``) that ``step`` ran once per backward since the last optimiser step: one host
  synchronisation per optimiser step; a ``training_step`` that forgot to call it raises instead of training with a
  stale K.
* **Logging** (``log``): ``{prefix}/K/{modality}`` and ``{prefix}/frm/{modality}`` of the last micro-batch through
  ``pl_module.log`` (device tensors, no synchronisation at logging time), and ``{prefix}/K_applied/{modality}``,
  the mean K applied, when K is applied per optimiser step.

Why the callback does not call ``step`` itself: only the module knows which tensors of its batch are the modalities,
in which layout, after which preprocessing (a batch may be a tuple, a dict, a detection batch whose image holds
both modalities as channels), and which samples are missing (``present``). A callback calling a user-supplied
``inputs_fn(batch)`` in ``on_train_batch_start`` would split that knowledge over two places, and the batch seen
there is the one before ``training_step``'s own preprocessing. So ``step`` stays in ``training_step``, next to the
forward pass that consumes the same tensors.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

try:
    import lightning.pytorch as pl
except ImportError as error:  # pragma: no cover - exercised only without lightning
    raise ImportError(
        "mwam.integrations.lightning needs PyTorch Lightning: pip install lightning (the rest of mwam does not)"
    ) from error

from ..module import MWAM

__all__ = ["MWAMCallback", "find_mwam"]

_GRADIENT_INTERVENTIONS = ("grad", "hybrid")


def find_mwam(pl_module: torch.nn.Module, attribute: str | None = "mwam") -> MWAM:
    """The MWAM of ``pl_module``: the (dotted) ``attribute`` if it names one, otherwise the module's only MWAM."""
    if attribute:
        try:
            found = functools.reduce(getattr, attribute.split("."), pl_module)
        except AttributeError:
            found = None
        if isinstance(found, MWAM):
            return found
        if found is not None:
            raise ValueError(f"pl_module.{attribute} is a {type(found).__name__}, not an MWAM")
    candidates = [(name, module) for name, module in pl_module.named_modules() if isinstance(module, MWAM)]
    if len(candidates) == 1:
        return candidates[0][1]
    if not candidates:
        raise ValueError(
            f"{type(pl_module).__name__} has no MWAM submodule: assign it as an attribute in __init__ "
            "(self.mwam = MWAM(branches={...})) so that it moves, trains and is checkpointed with the module"
        )
    names = [name for name, _ in candidates]
    raise ValueError(f"{type(pl_module).__name__} has several MWAMs {names}: pass MWAMCallback(attribute=...)")


class MWAMCallback(pl.Callback):
    """Applies MWAM's K once per optimiser step (``gradient_hooks=False``), checks and logs; see the module docstring.

    attribute: where the LightningModule keeps its MWAM (dotted for a nested one; ``None`` or a missing attribute:
    the module's only MWAM). log: ``pl_module.log`` K and FRM per modality every micro-batch (and the mean K applied
    per optimiser step). check_steps: raise when ``MWAM.step`` did not run once per backward. prefix: of the logged
    names. Supports one optimiser (K is applied at the first ``on_before_optimizer_step`` after the backward passes).
    """

    def __init__(
        self, attribute: str | None = "mwam", *, log: bool = True, check_steps: bool = True, prefix: str = "mwam"
    ) -> None:
        super().__init__()
        self.attribute = attribute
        self.log = log
        self.check_steps = check_steps
        self.prefix = prefix
        self.applied: torch.Tensor | None = None  # (M,) the mean K last applied per optimiser step, float64
        self._mwam: MWAM | None = None
        self._window: list[torch.Tensor] = []  # K of each micro-batch since the last optimiser step
        self._mark: torch.Tensor | None = None  # MWAM.steps at the last optimiser step

    # ------------------------------------------------------------------ what the callback works on
    @property
    def mwam(self) -> MWAM:
        """The LightningModule's MWAM (found at ``setup``)."""
        if self._mwam is None:
            raise RuntimeError("MWAMCallback is not set up yet: pass it to Trainer(callbacks=[...])")
        return self._mwam

    @property
    def per_optimizer_step(self) -> bool:
        """True when this callback applies K (the mean over the accumulated micro-batches) at the optimiser step;
        False when MWAM's gradient hooks scale each micro-batch during backward, or MWAM edits no gradient."""
        mwam = self.mwam
        return mwam.config.intervention in _GRADIENT_INTERVENTIONS and not mwam.gradient_hooks

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._mwam = find_mwam(pl_module, self.attribute)

    # ------------------------------------------------------------------ training hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._window.clear()
        self._mark = self.mwam.steps.detach().clone()  # after a resumed checkpoint is loaded

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._window.append(self.mwam.weight.detach().clone())  # this micro-batch's K (training_step's step)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        mwam, window = self.mwam, self._window
        self._window = []
        if self.check_steps:
            self._check_steps(mwam, len(window))
        if not self.per_optimizer_step:
            return  # hooks scaled every micro-batch during backward (or MWAM edits no gradient)
        if not window:
            raise RuntimeError(
                "MWAMCallback saw no backward pass before this optimiser step: under manual optimisation use "
                "self.manual_backward(loss), not loss.backward()"
            )
        scale = torch.stack(window).mean(dim=0)
        mwam.scale_gradients(scale)  # after AMP's unscale_, before Lightning's gradient clipping
        self.applied = scale
        if self.log:
            for index, modality in enumerate(mwam.modalities):
                pl_module.log(
                    f"{self.prefix}/K_applied/{modality}", scale[index].float(), on_step=True, on_epoch=False,
                    batch_size=1,
                )  # fmt: skip

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self.log:
            return
        mwam = self.mwam
        for index, modality in enumerate(mwam.modalities):
            for name, values in (("K", mwam.weight), ("frm", mwam.last_frm)):
                pl_module.log(
                    f"{self.prefix}/{name}/{modality}", values[index].float(), on_step=True, on_epoch=False,
                    batch_size=1,
                )  # fmt: skip

    def _check_steps(self, mwam: MWAM, backward_passes: int) -> None:
        mark = self._mark if self._mark is not None else torch.zeros_like(mwam.steps)
        measured = int((mwam.steps - mark.to(mwam.steps.device)).item())  # one host sync per optimiser step
        self._mark = mwam.steps.detach().clone()
        if measured != backward_passes:
            name = self.attribute or "mwam"
            raise RuntimeError(
                f"MWAMCallback: {backward_passes} backward pass(es) since the last optimiser step, but MWAM.step ran "
                f"{measured} time(s). Call self.{name}.step(inputs, present) once per micro-batch in training_step, "
                "before the loss (or pass MWAMCallback(check_steps=False))."
            )
