"""GSS's training method (Qiu et al., ICCV 2023, "Scratch Each Other's Back"): ``method: {name: gss}``.

GSS is RFNet trained further with a category-aware group self-support loss; its checkpoints are RFNet's (the
authors' README: "fully compatible with the RFNet code"), so the host is ``rfnet`` and only training differs.
What the authors' ``GSS.sh`` / ``train_GSS.py`` do, as hooks of the one trainer:

1. **Stages.** ``GSS.sh`` starts from a trained RFNet and runs five successive stages of 300 epochs, each
   initialised from the previous stage's last weights, with a fresh Adam and the poly schedule restarting (their
   ``startepoch`` is read and never used). Here stage ``k`` (``stage``) is a run whose dependency is stage
   ``k - 1`` -- the same configuration with ``stage: k - 1`` -- and stage 1's is the initial host run: this run's
   configuration with the standard method, no MWAM (unless ``init_mwam``) and no SDE, i.e. exactly Table 2's RFNet
   column, trained once and shared. ``init_weights`` starts stage 1 from a checkpoint file instead (the authors'
   pretrained RFNet ``model_last_brast2020.pth``, DataParallel keys accepted, or a ``model.pt`` of this registry).
   Their script has a slip: stages 3 and 4 point ``--pretrain`` at their own (still empty) output folders, so run
   as written it stops after three stages; the chain here is the five stages the script evidently meant.
2. **Loss** (``train_GSS.py``): ``fuse + 0.7 sep + prm + 0.3 T^2 / 10 soft_sep`` with T = 8. The task's fused and
   PRM terms are kept, and on from the first epoch (``train_GSS.py`` never applies ``region_fusion_start_epoch``);
   the separate decoders' terms are weighted by ``sep_weight`` (:meth:`GSS.loss_terms`, before MWAM's Eq. 7 when
   its intervention is ``loss`` / ``hybrid``); ``soft_sep`` is the group self-support term of
   :mod:`reproduce.engine.group_self_support`, the target built without gradient from this step's own separate
   decoders, per class from its teacher group (BraTS: background FLAIR; NCR/NET T1ce; oedema FLAIR + T2; enhancing
   tumour T1ce), thresholds 0.75 / 0.85, blend 0.3, 20 % of the voxels removed. ``target_rule`` picks the
   authors' target as their code computes it (``released``, default: it produced GSS's numbers in Table 2) or as
   it evidently meant (``intended``); docs/training.md lists the difference.

MWAM combines with it as with any host (``mwam: grad`` edits the encoders' gradients in every stage; the initial
RFNet trains without MWAM unless ``init_mwam``). This module imports no torch at module level.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reproduce.methods.base import Dependency, FinishedRun, Method, check_run_overrides, register_method

log = logging.getLogger(__name__)

#: BraTS2020's classes (0 background, 1 NCR/NET, 2 oedema, 3 enhancing tumour) and their teachers (``train_GSS.py``).
BRATS_GROUPS: tuple[tuple[str, ...], ...] = (("flair",), ("t1ce",), ("flair", "t2"), ("t1ce",))
RESERVED_INIT_SECTIONS = ("method", "sde", "seed")
TARGET_RULES = ("released", "intended")


@dataclass(frozen=True)
class GSSOptions:
    """Options of the GSS method (``method.options``); defaults are the authors' (``train_GSS.py``, ``GSS.sh``).

    stage: which stage of the chain this run is (1 starts from the initial host run or ``init_weights``; the
        authors run 5).
    temperature, sep_weight, soft_weight: T = 8 and the loss weights 0.7 (sep) and 0.3 (soft_sep, times T^2 / 10).
    confident, others_confident, blend: the teacher threshold TP = 0.75, the others' threshold TM = 0.85 and the
        double-teacher blend DTP = 0.3.
    mask_ratio: the share of voxels drawn (with replacement) and removed from each modality's soft term (0.2).
    groups: per class, its teacher modality or pair (BraTS2020's by default).
    target_rule: ``released`` (the authors' code) or ``intended`` (see :mod:`reproduce.engine.group_self_support`).
    init_weights: a checkpoint file to start stage 1 from instead of training the initial host run (its path is
        part of the run's key, its SHA-256 is recorded in the registry entry).
    init_mwam: the initial host run trains with this run's MWAM settings (default: without MWAM).
    init_seed: the initial host run's seed (None: this run's seed, so that Table 2's column of the same seed is it).
    init_run: nested overrides of the initial host run (e.g. ``{"train": {"epochs": 300}}``).
    """

    stage: int = 5
    temperature: float = 8.0
    sep_weight: float = 0.7
    soft_weight: float = 0.3
    confident: float = 0.75
    others_confident: float = 0.85
    blend: float = 0.3
    mask_ratio: float = 0.2
    groups: tuple[tuple[str, ...], ...] = BRATS_GROUPS
    target_rule: str = "released"
    init_weights: str | None = None
    init_mwam: bool = False
    init_seed: int | None = None
    init_run: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.stage, int) or isinstance(self.stage, bool) or self.stage < 1:
            raise ValueError(f"stage must be an integer >= 1, got {self.stage!r}")
        if self.target_rule not in TARGET_RULES:
            raise ValueError(f"target_rule must be one of {', '.join(TARGET_RULES)}; got {self.target_rule!r}")
        for name in ("temperature", "sep_weight", "soft_weight", "confident", "others_confident", "blend"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 <= self.mask_ratio < 1:
            raise ValueError(f"mask_ratio must lie in [0, 1), got {self.mask_ratio}")
        groups = tuple(tuple(str(m) for m in g) for g in self.groups)
        if not groups or any(len(g) not in (1, 2) or len(set(g)) != len(g) for g in groups):
            raise ValueError(f"groups: one or two distinct teacher modalities per class, got {self.groups!r}")
        object.__setattr__(self, "groups", groups)
        if self.init_weights is not None and (self.stage != 1 or self.init_mwam or self.init_run):
            raise ValueError("init_weights starts stage 1 from a file: it goes with stage 1, no init_mwam / init_run")
        check_run_overrides(self.init_run, "init_run", RESERVED_INIT_SECTIONS, "init_seed / init_mwam")


def _sha256(path: str) -> str:
    """The file's SHA-256 (recorded beside its path: the run's key holds only the path)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@register_method("gss")
class GSS(Method):
    """The task's loss with GSS's weights plus the group self-support term, from the previous stage's weights (see
    the module docstring)."""

    options_class = GSSOptions

    # ------------------------------------------------------------------ planning
    @classmethod
    def dependencies(cls, config: Any) -> dict[str, Dependency]:
        """Stage k > 1: stage k - 1 (this configuration, ``stage: k - 1``). Stage 1: the initial host run (this
        configuration, standard method, no MWAM unless ``init_mwam``, no SDE, ``init_run`` on top), unless
        ``init_weights`` names a file."""
        from reproduce.runs.config import RunConfig
        from reproduce.runs.overrides import deep_merge

        o = config.method.resolved_options()
        values = config.to_dict()
        if o.stage > 1:
            values["method"] = {"name": "gss", "options": {**config.method.options, "stage": o.stage - 1}}
            mwam = "" if config.mwam.intervention in ("none", "off") else " +MWAM"
            label = f"GSS{mwam}{' +SDE' if config.sde.enabled else ''} stage {o.stage - 1}"
            previous = RunConfig.from_dict(values, source=label)
            return {"previous": Dependency(previous, column=label)}
        if o.init_weights is not None:
            return {}
        values["method"] = {"name": "standard", "options": {}}
        if not o.init_mwam:
            values["mwam"] = {"intervention": "none", "options": {}}
        values["sde"] = {"enabled": False, "options": {}}
        if o.init_seed is not None:
            values["seed"] = o.init_seed
        initial = RunConfig.from_dict(deep_merge(values, o.init_run), source="GSS initial run")
        return {"init": Dependency(initial, column=f"{config.host.name} (GSS initialisation)")}

    # ------------------------------------------------------------------ set-up
    def setup(self, trainer: Any, dependencies: Mapping[str, FinishedRun]) -> None:
        """Check the host and task, switch the fused term on from the first epoch, load the starting weights."""
        o = self.options
        modalities = tuple(trainer.host.modalities)
        unknown = sorted({m for g in o.groups for m in g} - set(modalities))
        if unknown:
            raise ValueError(f"GSS groups name modalities {unknown} the host {trainer.config.host.name!r} lacks")
        if len(o.groups) != trainer.task.num_classes:
            raise ValueError(
                f"GSS needs one teacher group per class: {trainer.task.num_classes} classes, {len(o.groups)} groups"
            )
        if not hasattr(trainer.task, "fused_loss_start_epoch"):
            raise ValueError(f"GSS trains a 3-D segmentation task, not {type(trainer.task).__name__}")
        trainer.task.fused_loss_start_epoch = 0  # train_GSS.py: the fused term from the first epoch
        self.source = self._load_start(trainer, dependencies)

    def _load_start(self, trainer: Any, dependencies: Mapping[str, FinishedRun]) -> dict[str, Any]:
        """Load the starting weights into the trainer's host (a resumed run then loads its checkpoint over them)."""
        from reproduce.engine.checkpoint import load_checkpoint

        o = self.options
        if o.init_weights is not None:
            state = load_checkpoint(o.init_weights, trainer.device)
            weights = state.get("host", state.get("state_dict", state))
            weights = {k.removeprefix("module."): v for k, v in weights.items()}
            try:
                trainer.host.load_state_dict(weights)
            except RuntimeError as error:
                host = trainer.config.host.name
                raise ValueError(f"GSS init_weights {o.init_weights}: not a {host} checkpoint: {error}") from None
            return {"init_weights": str(o.init_weights), "init_weights_sha256": _sha256(o.init_weights)}
        role = "previous" if o.stage > 1 else "init"
        start = dependencies[role]
        state = load_checkpoint(start.weights, trainer.device)
        if state.get("config_key") != start.config.key:
            raise ValueError(f"{start.weights} holds run {state.get('config_key')}, not {start.config.key}")
        trainer.host.load_state_dict(state["host"])
        return {role: start.config.key}

    # ------------------------------------------------------------------ loss
    def loss_terms(self, trainer: Any, terms: Any, ctx: Any) -> Any:
        """The separate decoders' terms times ``sep_weight`` (0.7)."""
        from reproduce.tasks.base import LossTerms

        weight = self.options.sep_weight
        return LossTerms(terms.fused, {m: weight * value for m, value in terms.per_modality.items()})

    def loss(self, trainer: Any, inputs: Any, output: Any, batch: Any, ctx: Any, loss: Any, parts: dict) -> tuple:
        import torch

        from reproduce.engine.group_self_support import group_soft_target, self_support_loss

        o = self.options
        aux = output.aux or {}
        missing = sorted(set(trainer.host.modalities) - set(aux))
        if missing:
            raise ValueError(
                f"GSS needs the separate decoders' logits of every modality (HostOutput.aux); "
                f"{trainer.config.host.name!r} returns none for {missing}"
            )
        logits = {m: aux[m].float() for m in trainer.host.modalities}
        softened = {m: torch.softmax(v / o.temperature, dim=1) for m, v in logits.items()}
        with torch.no_grad():
            probabilities = {m: torch.softmax(v, dim=1) for m, v in logits.items()}
            target = group_soft_target(
                probabilities,
                {m: v.detach() for m, v in softened.items()},
                o.groups,
                o.confident,
                o.others_confident,
                o.blend,
                o.target_rule,
            )
        soft = self_support_loss(softened, target, o.mask_ratio)
        total = loss + o.soft_weight * o.temperature**2 / 10.0 * soft
        parts.update({"loss/soft_sep": soft.detach(), "loss/total": total.detach()})
        return total, parts

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "method": "gss",
            "stage": o.stage,
            "target_rule": o.target_rule,
            "temperature": o.temperature,
            "sep_weight": o.sep_weight,
            "soft_weight": o.soft_weight,
            "groups": [list(g) for g in o.groups],
            **self.source,
        }
