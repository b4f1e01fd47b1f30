"""The Multimodal Weight Allocation Module (Sec. 4, Fig. 2, Alg. 1)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .bank import FRMBank
from .config import MWAMConfig
from .distributed import all_reduce_sum
from .frequency_ratio import frm
from .record import MWAMRecord
from .validation import check_image
from .weighting import relative_frm, weight_fn

Branch = nn.Module | nn.Parameter | Iterable[torch.Tensor]


def _branch_parameters(modality: str, branch: Branch) -> list[torch.Tensor]:
    if isinstance(branch, nn.Module):
        params = list(branch.parameters())
    elif isinstance(branch, torch.Tensor):
        params = [branch]
    elif isinstance(branch, Iterable) and not isinstance(branch, (str, bytes)):
        params = list(branch)
    else:
        raise ValueError(
            f"branch {modality!r}: expected an nn.Module, a parameter or an iterable of parameters, "
            f"got {type(branch).__name__}"
        )
    unique: dict[int, torch.Tensor] = {}
    for p in params:
        if not isinstance(p, torch.Tensor) or not p.is_leaf:
            raise ValueError(
                f"branch {modality!r}: every entry must be a leaf parameter tensor, got {type(p).__name__}"
            )
        if p.requires_grad:
            unique[id(p)] = p
    if not unique:
        raise ValueError(f"branch {modality!r} has no trainable parameters (requires_grad=True); nothing to rescale")
    return list(unique.values())


class MWAM(nn.Module):
    """Plug-and-play MWAM: measure each modality's FRM, smooth it, turn it into weights K, intervene.

    Use::

        mwam = MWAM(branches={"rgb": net.rgb_encoder, "depth": net.depth_encoder})  # gradient editing
        for batch in loader:
            mwam.step({"rgb": batch["rgb"], "depth": batch["depth"]})  # Alg. 1 lines 3-5
            loss = criterion(net(batch), batch["label"])
            loss.backward()            # each branch's gradients arrive multiplied by its K (line 8)
            optimizer.step(); optimizer.zero_grad()

    Gradient editing is applied by tensor hooks on the branch parameters (``gradient_hooks=False``: by calling
    ``scale_gradients()`` before the optimiser step instead, for trainers that own that step), so each backward
    pass is scaled by the K of the step it belongs to: the result equals multiplying the gradients after ``backward()``
    (Alg. 1), stays exact under gradient accumulation, is linear so AMP's grad scaling is unaffected, and
    happens before DistributedDataParallel's all-reduce. Only the named branches are touched.
    ``weighted_loss`` implements Eq. 7 for hosts with auxiliary heads. ``step`` never synchronises the
    host with the device; under torch.distributed it sums the FRMs over ranks so that all ranks agree.
    """

    grad_scale: torch.Tensor
    weight: torch.Tensor
    last_frm: torch.Tensor
    last_relative: torch.Tensor
    last_present: torch.Tensor
    steps: torch.Tensor

    def __init__(
        self,
        modalities: Sequence[str] | None = None,
        branches: Mapping[str, Branch] | None = None,
        *,
        config: MWAMConfig | None = None,
        process_group: Any = None,
        gradient_hooks: bool = True,
        **options: Any,
    ) -> None:
        super().__init__()
        config = MWAMConfig(**options) if config is None else config.replace(**options)
        if modalities is None:
            if branches is None:
                raise ValueError("MWAM needs the modality names: pass modalities=(...) or branches={name: module}")
            modalities = tuple(branches)
        if isinstance(modalities, str):
            raise ValueError(f"modalities must be a sequence of names, got the single string {modalities!r}")
        modalities = tuple(modalities)
        if (
            not modalities
            or len(set(modalities)) != len(modalities)
            or not all(isinstance(m, str) and m for m in modalities)
        ):
            raise ValueError(f"modalities must be distinct non-empty strings, got {modalities!r}")
        self.modalities: tuple[str, ...] = modalities
        self.config = config
        self.process_group = process_group
        count = len(modalities)

        self._hooks: list[Any] = []
        self._branch_params: dict[str, list[torch.Tensor]] = {}
        if branches is not None:
            if set(branches) != set(modalities):
                raise ValueError(f"branches must name exactly the modalities {list(modalities)}; got {list(branches)}")
            owner: dict[int, str] = {}
            for m in modalities:
                params = _branch_parameters(m, branches[m])
                for p in params:
                    if id(p) in owner:
                        raise ValueError(
                            f"a parameter of shape {tuple(p.shape)} belongs to both branch {owner[id(p)]!r} and "
                            f"branch {m!r}; branches must not share parameters"
                        )
                    owner[id(p)] = m
                self._branch_params[m] = params
        self.gradient_hooks = gradient_hooks
        if config.intervention in ("grad", "hybrid"):
            if branches is None:
                raise ValueError(
                    f"intervention={config.intervention!r} rescales branch gradients: "
                    "pass branches={modality: module}"
                )
            for index, m in enumerate(modalities if gradient_hooks else ()):
                for p in self._branch_params[m]:
                    self._hooks.append(p.register_hook(functools.partial(self._scale_gradient, index)))

        self.bank = FRMBank(count, momentum=config.momentum, soft_start=config.soft_start)
        self.register_buffer("grad_scale", torch.ones(count, dtype=torch.float32))
        self.register_buffer("weight", torch.ones(count, dtype=torch.float64))
        self.register_buffer("last_frm", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("last_relative", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("last_present", torch.zeros(count, dtype=torch.bool))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    @classmethod
    def for_host(cls, host: nn.Module, **options: Any) -> MWAM:
        """Build from a host that follows the Host contract (``modalities`` and ``branches()``)."""
        return cls(modalities=host.modalities, branches=host.branches(), **options)

    def _scale_gradient(self, index: int, grad: torch.Tensor) -> torch.Tensor:
        return grad * self.grad_scale[index].to(device=grad.device, dtype=grad.dtype)

    @torch.no_grad()
    def scale_gradients(self, scale: torch.Tensor | None = None) -> None:
        """Multiply each branch's accumulated ``.grad`` by its K (Alg. 1 line 8), for a trainer that owns its
        optimiser step (ultralytics): build with ``gradient_hooks=False`` and call this after the backward passes
        (after ``GradScaler.unscale_``). ``scale`` (M,) overrides the K of the last ``step`` (e.g. the mean K of the
        mini-batches accumulated into these gradients)."""
        if self.gradient_hooks and self._hooks:
            raise ValueError("this MWAM already scales gradients through its hooks; build it with gradient_hooks=False")
        if not self._branch_params:
            raise ValueError("scale_gradients needs branches={modality: module}")
        factors = self.grad_scale if scale is None else scale
        if tuple(factors.shape) != (len(self.modalities),):
            raise ValueError(f"scale must have shape ({len(self.modalities)},), got {tuple(factors.shape)}")
        for index, m in enumerate(self.modalities):
            for p in self._branch_params[m]:
                if p.grad is not None:
                    p.grad.mul_(factors[index].to(device=p.grad.device, dtype=p.grad.dtype))

    def remove_hooks(self) -> None:
        """Stop editing gradients (the hooks are removed from the branch parameters)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    # ------------------------------------------------------------------ measuring and weighting
    def _check_inputs(
        self, inputs: Mapping[str, torch.Tensor], present: torch.Tensor | None
    ) -> tuple[int, torch.device]:
        if not isinstance(inputs, Mapping):
            raise ValueError(
                f"inputs must be a mapping {{modality: tensor}} for {list(self.modalities)}, "
                f"got {type(inputs).__name__}"
            )
        if set(inputs) != set(self.modalities):
            missing = [m for m in self.modalities if m not in inputs]
            unexpected = [m for m in inputs if m not in self.modalities]
            raise ValueError(
                f"inputs must hold exactly the modalities {list(self.modalities)}; "
                f"missing {missing}, unexpected {unexpected}"
                " (mark a modality absent through `present` or an all-zero tensor instead of leaving it out)"
            )
        sizes = {m: check_image(inputs[m], name=f"inputs[{m!r}]").shape[0] for m in self.modalities}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"all modalities must have the same batch size, got {sizes}")
        devices = {m: inputs[m].device for m in self.modalities}
        if len(set(devices.values())) != 1:
            raise ValueError(f"all modalities must be on one device, got {devices}")
        batch = next(iter(sizes.values()))
        if present is not None:
            expected = (batch, len(self.modalities))
            if not isinstance(present, torch.Tensor) or present.dtype != torch.bool or tuple(present.shape) != expected:
                got = (
                    f"{present.dtype} {tuple(present.shape)}"
                    if isinstance(present, torch.Tensor)
                    else type(present).__name__
                )
                raise ValueError(
                    f"present must be a bool tensor of shape (B, M) = {expected} in modality order, got {got}"
                )
        return batch, next(iter(devices.values()))

    @torch.no_grad()
    def step(self, inputs: Mapping[str, torch.Tensor], present: torch.Tensor | None = None) -> torch.Tensor:
        """Measure this mini-batch and set the weights K (M,) used by the next backward / ``weighted_loss``.

        ``inputs`` maps every modality to its batch (B, C, H, W) or (B, C, D, H, W), as fed to the model.
        ``present`` (B, M) bool optionally marks samples whose modality is missing. A modality's FRM is
        the Eq. 4 sum over its usable samples, rescaled by B / (usable samples) so that a partly missing
        modality is not judged by its sample count (with every sample present this is Eq. 4 exactly).
        """
        cfg = self.config
        batch, device = self._check_inputs(inputs, present)
        if self.weight.device != device:
            self.to(device)
        sums, counts = [], []
        for index, m in enumerate(self.modalities):
            x = inputs[m].detach()
            usable = (
                torch.ones(batch, dtype=torch.bool, device=device) if present is None else present[:, index].to(device)
            )
            if cfg.detect_blank_inputs:
                flat = x.flatten(1)  # amax/amin: several times faster than aminmax on CPU
                usable = usable & (flat.amax(dim=1) != flat.amin(dim=1))
            per_sample = frm(
                x,
                rule=cfg.rule,
                patch=cfg.patch,
                window=cfg.window,
                sigma=cfg.sigma,
                reduction="none",
                omega=cfg.omega,
                pairing=cfg.pairing,
            )
            sums.append(torch.where(usable, per_sample, torch.zeros_like(per_sample)).sum())
            counts.append(usable.sum())
        total = torch.full((1,), float(batch), dtype=torch.float64, device=device)  # no host-to-device copy
        stats = torch.cat([torch.stack(sums), torch.stack(counts).to(torch.float64), total])
        if cfg.sync_ranks:
            stats = all_reduce_sum(stats, self.process_group)
        count = len(self.modalities)
        frm_sum, usable_count, batch_total = stats[:count], stats[count : 2 * count], stats[-1]
        measured = frm_sum * (batch_total / usable_count.clamp(min=1.0))
        valid = (usable_count > 0) & torch.isfinite(measured)
        measured = torch.where(valid, measured, torch.zeros_like(measured))

        used = self.bank.update(measured, valid)
        relative = relative_frm(measured, used, self.bank.value, self.bank.initialized, cfg.t_rule, cfg.sigma)
        weights = weight_fn(relative, cfg.alpha, cfg.beta, cfg.lam, cfg.gamma)
        weights = torch.where(used, weights, torch.full_like(weights, cfg.absent_weight))

        self.weight.copy_(weights)
        if cfg.intervention in ("grad", "hybrid"):
            self.grad_scale.copy_(weights)
        self.last_frm.copy_(measured)
        self.last_relative.copy_(relative)
        self.last_present.copy_(used)
        self.steps.add_(1)
        return weights.to(torch.float32)

    def forward(self, inputs: Mapping[str, torch.Tensor], present: torch.Tensor | None = None) -> torch.Tensor:
        return self.step(inputs, present)

    def weighted_loss(self, fused_loss: torch.Tensor, auxiliary_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Eq. 7: ``L_total = sum_i K_i L(y, y_i) + L(y, y_o)``, K from the last ``step`` (no gradient through K)."""
        if self.config.intervention not in ("loss", "hybrid"):
            raise ValueError(
                "weighted_loss is the loss-level intervention; this MWAM has "
                f"intervention={self.config.intervention!r}."
                " Use intervention='loss' or 'hybrid'."
            )
        if not auxiliary_losses:
            raise ValueError("weighted_loss needs at least one auxiliary loss {modality: loss}")
        unknown = [m for m in auxiliary_losses if m not in self.modalities]
        if unknown:
            raise ValueError(
                f"auxiliary losses for unknown modalities {unknown}; expected some of {list(self.modalities)}"
            )
        total = fused_loss
        for index, m in enumerate(self.modalities):
            if m in auxiliary_losses:
                loss = auxiliary_losses[m]
                total = total + self.weight[index].to(device=loss.device, dtype=loss.dtype) * loss
        return total

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """K of the last step per modality (0-d device tensors; 1 before the first step)."""
        return {m: self.weight[i] for i, m in enumerate(self.modalities)}

    def record(self) -> MWAMRecord:
        """FRM, bank, T, K and presence of the last step, for logging."""
        return MWAMRecord(
            modalities=self.modalities,
            step=int(self.steps.item()),
            frm=self.last_frm.clone(),
            bank=self.bank.value.clone(),
            relative=self.last_relative.clone(),
            weight=self.weight.clone(),
            present=self.last_present.clone(),
        )

    # ------------------------------------------------------------------ checkpointing
    def get_extra_state(self) -> dict[str, Any]:
        return {"modalities": list(self.modalities), "config": self.config.to_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        saved = tuple(state.get("modalities", ()))
        if saved != self.modalities:
            raise ValueError(
                f"checkpoint was saved for modalities {list(saved)}, this MWAM has {list(self.modalities)}"
            )

    def extra_repr(self) -> str:
        cfg = self.config
        return (
            f"modalities={self.modalities}, intervention={cfg.intervention!r}, rule={cfg.rule!r}, "
            f"p={cfg.patch}, q={cfg.window}, t_rule={cfg.t_rule!r}, "
            f"alpha={cfg.alpha}, beta={cfg.beta}, lam={cfg.lam}, gamma={cfg.gamma}"
        )
