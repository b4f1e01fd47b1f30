"""GSS's options and its chain of stage runs (torch-free: the run configuration and the planner read them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reproduce.methods.base import Dependency, check_run_overrides

#: BraTS2020's classes (0 background, 1 NCR/NET, 2 oedema, 3 enhancing tumour) and their teachers (``train_GSS.py``).
BRATS_GROUPS: tuple[tuple[str, ...], ...] = (("flair",), ("t1ce",), ("flair", "t2"), ("t1ce",))
RESERVED_INIT_SECTIONS = ("method", "plugins", "sde", "seed")
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
    target_rule: ``released`` (the authors' code) or ``intended`` (see :mod:`reproduce.methods.gss.group_self_support`).
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



def stage_dependencies(config: Any) -> dict[str, Dependency]:
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
    values["plugins"] = []
    if not o.init_mwam:
        values["mwam"] = {"intervention": "none", "options": {}}
    values["sde"] = {"enabled": False, "options": {}}
    if o.init_seed is not None:
        values["seed"] = o.init_seed
    initial = RunConfig.from_dict(deep_merge(values, o.init_run), source="GSS initial run")
    return {"init": Dependency(initial, column=f"{config.host.name} (GSS initialisation)")}
