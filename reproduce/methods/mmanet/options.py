"""MMANet's options and the runs it needs (torch-free: the run configuration and the planner read them)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from reproduce.methods.base import Dependency, check_run_overrides

#: Sections of the teacher's run that ``teacher_run`` may not set (the teacher's host, method and seed have their
#: own options; a teacher never trains with MWAM, SDE or another plug-in).
RESERVED_TEACHER_SECTIONS = ("host", "method", "plugins", "mwam", "sde", "seed")
AUX_LOSSES = ("released", "intended")


@dataclass(frozen=True)
class MMANetOptions:
    """Options of the MMANet method (``method.options``); defaults are the authors' CASIA-SURF settings.

    teacher_host / teacher_host_options: the frozen full-modality teacher (the authors' ``SURF_Multi``).
    teacher_run: nested overrides of the teacher's own run (e.g. ``{"train": {"batch_size": 64}}`` when the
        student's batch differs, Table 10); the teacher is otherwise trained like the student.
    teacher_seed: the teacher run's seed, whatever the student's: the authors distil every student version from
        one teacher (``multi_full__2__average.pth``).
    search_epochs: the epochs after which the weak-combination search runs (authors: 2, 3, 4).
    begin_epoch: the weak combination is fixed after this epoch; the auxiliary and distillation terms apply from
        the next epoch on (authors: 5).
    lambda_distill, lambda_auxiliary: MMANet's (alpha, beta) = (30, 0.5) on CASIA-SURF (paper, Sec. A.3).
    aux_loss: ``released`` (the authors' code, which produced the paper's numbers) or ``intended`` (the MMANet
        paper's formula); see :func:`auxiliary_loss`.
    """

    teacher_host: str = "sf"
    teacher_host_options: dict[str, Any] = field(default_factory=dict)
    teacher_run: dict[str, Any] = field(default_factory=dict)
    teacher_seed: int = 0
    search_epochs: tuple[int, ...] = (2, 3, 4)
    begin_epoch: int = 5
    lambda_distill: float = 30.0
    lambda_auxiliary: float = 0.5
    aux_loss: str = "released"

    def __post_init__(self) -> None:
        if self.aux_loss not in AUX_LOSSES:
            raise ValueError(f"aux_loss must be one of {', '.join(AUX_LOSSES)}; got {self.aux_loss!r}")
        object.__setattr__(self, "search_epochs", tuple(int(e) for e in self.search_epochs))
        if not self.search_epochs:
            raise ValueError("search_epochs must name at least one epoch")
        if self.begin_epoch < 0 or min(self.search_epochs) < 0 or max(self.search_epochs) > self.begin_epoch:
            raise ValueError(
                f"search_epochs {self.search_epochs} must lie in [0, begin_epoch={self.begin_epoch}] "
                "(the weak combination is chosen after begin_epoch)"
            )
        if list(self.search_epochs) != sorted(set(self.search_epochs)):
            raise ValueError(f"search_epochs must be increasing and distinct, got {self.search_epochs}")
        check_teacher_options(self)


def check_teacher_options(options: Any) -> None:
    """The checks MMANet's and MMANet-seg's options share: loss weights ``lambda_distill`` / ``lambda_auxiliary``
    >= 0, and ``teacher_run`` overrides that leave the teacher's host, method, plug-ins and seed alone."""
    for name in ("lambda_distill", "lambda_auxiliary"):
        value = getattr(options, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    instead = "teacher_host / teacher_host_options / teacher_seed"
    check_run_overrides(options.teacher_run, "teacher_run", RESERVED_TEACHER_SECTIONS, instead)


def teacher_dependency(config: Any, options: Any, label: str = "MMANet teacher") -> Dependency:
    """The frozen teacher's run: the student's configuration with ``options.teacher_host`` (its options) and
    ``teacher_seed``, the standard method, no MWAM, SDE or other plug-in, and ``teacher_run`` on top (MMANet and
    MMANet-seg)."""
    from reproduce.runs.config import RunConfig
    from reproduce.runs.overrides import deep_merge

    values = config.to_dict()
    values["host"] = {"name": options.teacher_host, "options": dict(options.teacher_host_options)}
    values["method"] = {"name": "standard", "options": {}}
    values["plugins"] = []
    values["mwam"] = {"intervention": "none", "options": {}}
    values["sde"] = {"enabled": False, "options": {}}
    values["seed"] = options.teacher_seed
    teacher = RunConfig.from_dict(deep_merge(values, options.teacher_run), source=f"{label} run")
    return Dependency(teacher, column=f"{options.teacher_host} ({label})")


def candidate_subsets(modalities: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every pair of modalities (in modality order) and the full set last: RD, RI, DI, RDI on CASIA-SURF."""
    if len(modalities) < 2:
        raise ValueError(f"MMANet needs at least two modalities, got {modalities}")
    pairs = [tuple(p) for p in itertools.combinations(modalities, 2)]
    return pairs if len(modalities) == 2 else [*pairs, tuple(modalities)]
