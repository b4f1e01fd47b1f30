"""The Multimodal Weight Allocation Module (Sec. 4, Fig. 2, Alg. 1)."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .bank import FRMBank
from .config import MWAMConfig
from .distributed import all_reduce_sum
from .frequency_ratio import frm
from .precision import KeepsBufferDtypes
from .record import MWAMRecord
from .validation import check_image
from .weighting import relative_frm, weight_fn

Branch = nn.Module | nn.Parameter | Iterable[torch.Tensor]

_REDUCED_PRECISION = (torch.float16, torch.bfloat16)
_LAYOUT_SHAPES = {"image": "(B, C, H, W)", "volume": "(B, C, D, H, W)", "video": "(B, C, T, H, W)"}


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


def _varying(x: torch.Tensor, layout: str) -> torch.Tensor:
    """True where some channel of a sample (B,) -- of each frame (B, T) for a video -- is not constant.

    A sample constant within every channel carries no content: all zeros, a fill value, or a black frame after
    per-channel normalisation (``(0 - mean_c) / std_c``, a different constant per channel).
    """
    if layout == "video":
        flat = x.transpose(1, 2).flatten(3)  # (B, T, C, H*W); amax/amin: faster than aminmax on CPU
        return (flat.amax(dim=3) != flat.amin(dim=3)).any(dim=2)
    flat = x.flatten(2)
    return (flat.amax(dim=2) != flat.amin(dim=2)).any(dim=1)


class MWAM(KeepsBufferDtypes, nn.Module):
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
    The statistics (bank, K, FRM: float64 buffers) keep their dtype when the model around MWAM is cast
    (``model.to(torch.bfloat16)``); device moves apply as usual.
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
        unknown = [m for m in config.layouts if m not in modalities]
        if unknown:
            raise ValueError(f"layouts names modalities {unknown} that are not among {list(modalities)}")
        self.modalities: tuple[str, ...] = modalities
        self.config = config
        self._warned: set[str] = set()  # one-time warnings of this instance (unequal sizes, reduced precision)
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
            if gradient_hooks:
                self._register_hooks()

        self.bank = FRMBank(count, momentum=config.momentum, soft_start=config.soft_start)
        self.register_buffer("grad_scale", torch.ones(count, dtype=torch.float32))
        self.register_buffer("weight", torch.ones(count, dtype=torch.float64))
        self.register_buffer("last_frm", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("last_relative", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("last_present", torch.zeros(count, dtype=torch.bool))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    @classmethod
    def for_host(cls, host: nn.Module, **options: Any) -> MWAM:
        """Build from a host that follows the Host contract (``modalities`` and ``branches()``; its
        ``input_layouts()``, when it has one, gives ``layouts`` -- e.g. ``video`` clips --, the ``layouts`` passed
        here overriding it per modality)."""
        declared = getattr(host, "input_layouts", None)
        layouts = {**(declared() if callable(declared) else {}), **dict(options.get("layouts") or {})}
        if layouts:
            options = {**options, "layouts": layouts}
        return cls(modalities=host.modalities, branches=host.branches(), **options)

    def _register_hooks(self) -> None:
        for index, m in enumerate(self.modalities):
            for p in self._branch_params[m]:
                if p.requires_grad:
                    # marked unserializable: a copy of the model re-registers its hooks (__setstate__), so torch's
                    # warning that pickling a hooked tensor drops the hook does not apply
                    hook = torch.utils.hooks.unserializable_hook(functools.partial(self._scale_gradient, index))
                    self._hooks.append(p.register_hook(hook))

    def __getstate__(self) -> dict[str, Any]:
        # Tensor hooks are not serialised: pickle, copy.deepcopy and torch.save(model) -- and so Lightning's
        # ddp_spawn, which pickles the model into its processes -- would give a copy whose branch gradients are
        # silently left unscaled. __setstate__ registers the hooks again, on the copy's parameters.
        state = super().__getstate__()
        state["_hooks"] = []
        state["_rehook"] = bool(self._hooks)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        rehook = state.pop("_rehook", False)
        super().__setstate__(state)
        if rehook:
            self._register_hooks()

    def __copy__(self) -> MWAM:
        # A shallow copy shares the parameters, and so the hooks already on them: registering again would apply K
        # twice. It shares the buffers too, as copy.copy of any module does.
        clone = type(self).__new__(type(self))
        clone.__dict__.update(super().__getstate__())
        return clone

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

    def add_hooks(self) -> None:
        """Edit gradients through hooks again after :meth:`remove_hooks` (nothing when they are on already)."""
        if not self._branch_params:
            raise ValueError("add_hooks needs branches={modality: module}")
        if not self._hooks:
            self._register_hooks()

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

    def _layouts(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, str]:
        """Each modality's layout: the declared one (checked against the tensor's rank) or 4-D image, 5-D volume."""
        layouts = {}
        for m in self.modalities:
            x, declared = inputs[m], self.config.layouts.get(m)
            if declared is None:
                layouts[m] = "image" if x.ndim == 4 else "volume"
            elif x.ndim != (4 if declared == "image" else 5):
                raise ValueError(
                    f"inputs[{m!r}]: layouts declares {declared!r} {_LAYOUT_SHAPES[declared]}, got a tensor of "
                    f"shape {tuple(x.shape)}"
                )
            else:
                layouts[m] = declared
        return layouts

    def _terms_per_sample(self, shape: torch.Size, layout: str) -> int:
        """How many Eq. 4 terms one sample's FRM sums: C x patches x q^d (x T frames for a summed video)."""
        cfg = self.config
        spatial = shape[3:] if layout == "video" else shape[2:]
        count = shape[1] * math.prod(s // cfg.patch for s in spatial) * cfg.window ** len(spatial)
        if layout == "video" and cfg.frame_reduction == "sum":
            count *= shape[2]
        return count

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, UserWarning, stacklevel=5)  # past step and its no_grad wrapper

    def _check_sizes_and_precision(self, inputs: Mapping[str, torch.Tensor], terms: Mapping[str, int]) -> None:
        reduced = {m: inputs[m].dtype for m in self.modalities if inputs[m].dtype in _REDUCED_PRECISION}
        if reduced:
            self._warn_once(
                "precision",
                f"MWAM.step got reduced-precision inputs {reduced}: rounding to 8 (bfloat16) or 11 (float16) bits "
                "changes the near-zero high-frequency DCT coefficients that Eq. 4 divides by, and so K. Pass the "
                "data to step() before any cast (the float32 batch; under autocast the inputs are still float32); "
                "the FRM is computed from the tensor given.",
            )
        if self.config.frm_normalisation == "none" and len(set(terms.values())) > 1:
            shapes = {m: tuple(inputs[m].shape[1:]) for m in self.modalities}
            self._warn_once(
                "sizes",
                f"MWAM: the modalities differ in size ({shapes}; Eq. 4 terms per sample {dict(terms)}). Eq. 4 sums "
                "over channels and patches, so a larger modality gets a proportionally larger FRM -- and a smaller "
                "K -- whatever its content. Pass frm_normalisation='per_element' to compare the mean Eq. 4 term "
                "instead (the default 'none' is the paper's and the authors' sum).",
            )

    def _per_sample_frm(self, x: torch.Tensor, layout: str, frames: torch.Tensor | None) -> torch.Tensor:
        """Eq. 4 per sample (B,), float64; a video's frames are measured as images and reduced per sample
        (``frames`` (B, T): the frames that count, the others are left out and the rest rescaled to T)."""
        cfg = self.config
        options: dict[str, Any] = {
            "rule": cfg.rule,
            "patch": cfg.patch,
            "window": cfg.window,
            "sigma": cfg.sigma,
            "omega": cfg.omega,
            "pairing": cfg.pairing,
        }
        if layout != "video":
            return frm(x, reduction="none", **options)
        batch, channels, length = x.shape[:3]
        folded = x.transpose(1, 2).reshape(batch * length, channels, *x.shape[3:])
        per_frame = frm(folded, reduction="none", **options).view(batch, length)
        if frames is None:
            return per_frame.sum(dim=1) if cfg.frame_reduction == "sum" else per_frame.mean(dim=1)
        kept = torch.where(frames, per_frame, torch.zeros_like(per_frame)).sum(dim=1)
        count = frames.sum(dim=1).to(torch.float64)  # >= 1: a sample with no varying frame keeps them all
        return kept * (length / count) if cfg.frame_reduction == "sum" else kept / count

    @torch.no_grad()
    def step(self, inputs: Mapping[str, torch.Tensor], present: torch.Tensor | None = None) -> torch.Tensor:
        """Measure this mini-batch and set the weights K (M,) used by the next backward / ``weighted_loss``.

        ``inputs`` maps every modality to its batch as fed to the model, in the layout declared by
        ``layouts`` (default: (B, C, H, W) image, (B, C, D, H, W) volume; ``video``: (B, C, T, H, W)), in the
        precision of the data (a float16 / bfloat16 tensor warns once: its rounding changes K).
        ``present`` (B, M) bool optionally marks samples whose modality is missing; when given it decides,
        otherwise (``detect_blank_inputs``) a sample constant within every channel counts as missing. A
        modality's FRM is the Eq. 4 sum over its usable samples, rescaled by B / (usable samples) so that a
        partly missing modality is not judged by its sample count (with every sample present this is Eq. 4
        exactly), and divided by its number of Eq. 4 terms per sample under ``frm_normalisation="per_element"``.
        """
        cfg = self.config
        batch, device = self._check_inputs(inputs, present)
        layouts = self._layouts(inputs)
        terms = {m: self._terms_per_sample(inputs[m].shape, layouts[m]) for m in self.modalities}
        self._check_sizes_and_precision(inputs, terms)
        if self.weight.device != device:
            self.to(device)
        sums, counts = [], []
        for index, m in enumerate(self.modalities):
            x, layout = inputs[m].detach(), layouts[m]
            frames = None
            if present is not None:
                usable = present[:, index].to(device)  # given, the caller's word decides
            else:
                usable = torch.ones(batch, dtype=torch.bool, device=device)
            if cfg.detect_blank_inputs and (present is None or layout == "video"):
                varying = _varying(x, layout)
                if layout == "video":
                    frames = varying | ~varying.any(dim=1, keepdim=True)  # blank frames left out, unless all are
                    varying = varying.any(dim=1)
                if present is None:
                    usable = varying  # a sample constant within every channel is absent
            per_sample = self._per_sample_frm(x, layout, frames)
            if cfg.frm_normalisation == "per_element":
                per_sample = per_sample / max(terms[m], 1)
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
        # The configuration is informative only: set_extra_state checks the modality names, so a checkpoint saved
        # before an option existed loads, and the options of the MWAM it is loaded into apply.
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
            + (f", layouts={cfg.layouts}, frame_reduction={cfg.frame_reduction!r}" if cfg.layouts else "")
            + (f", frm_normalisation={cfg.frm_normalisation!r}" if cfg.frm_normalisation != "none" else "")
        )
