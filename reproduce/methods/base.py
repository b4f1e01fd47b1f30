"""The Method contract and its registry (torch-free).

A method is a class with optional hooks; the trainer calls them at fixed points of its loop and knows no method by
name. The default of every hook does nothing, so the standard method is an empty subclass.

=========================  ===============================================================================
hook                       when
=========================  ===============================================================================
``dependencies(config)``   planning (class method, torch-free): the runs this run needs, trained first
``setup(trainer, deps)``   after the trainer's own set-up; ``deps`` are the finished dependency runs
``on_train_start(trainer)`` once the tracker exists, before the first (or resumed) epoch
``loss_terms(...)``        every step, before the task's terms are combined: reweight them (GSS's 0.7 on sep)
``loss(...)``              every step, after the task's loss and MWAM's Eq. 7: add terms, return the total
``before_optimizer_step``  every step, after backward (and unscaling under fp16): edit gradients here
``on_epoch_end(...)``      after each epoch's training and validation: add to the epoch's history entry
``state_dict`` / ``load``  what the method adds to a checkpoint (exact resume)
``describe()``             what the method adds to the run's registry entry (under ``method``)
=========================  ===============================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from reproduce.discovery import Catalog

if TYPE_CHECKING:
    from reproduce.runs.config import RunConfig

M = TypeVar("M", bound="type[Method]")


@dataclass(frozen=True)
class Dependency:
    """A run another run needs (``config``), and how it is labelled (``column``) in logs and the registry."""

    config: RunConfig
    column: str


@dataclass(frozen=True)
class FinishedRun:
    """A finished dependency: its configuration, its registry entry and its final weights."""

    config: RunConfig
    result: Mapping[str, Any]
    weights: Path


class Method:
    """Base class of the training methods (see the module docstring for the hooks)."""

    name: ClassVar[str] = ""
    options_class: ClassVar[type | None] = None

    def __init__(self, options: Any = None) -> None:
        self.options = options

    @classmethod
    def dependencies(cls, config: RunConfig) -> dict[str, Dependency]:
        """The runs ``config`` needs, by role (e.g. ``{"teacher": ...}``); none by default."""
        return {}

    def setup(self, trainer: Any, dependencies: Mapping[str, FinishedRun]) -> None:
        """Prepare the method for ``trainer`` (its host, task, device ... exist)."""

    def on_train_start(self, trainer: Any) -> None:
        """Called once the tracker exists, before the first (or resumed) epoch."""

    def loss_terms(self, trainer: Any, terms: Any, ctx: Any) -> Any:
        """The task's :class:`reproduce.tasks.base.LossTerms` of the step before they are combined (by MWAM's Eq. 7
        or summed); default: unchanged."""
        return terms

    def loss(self, trainer: Any, inputs: Any, output: Any, batch: Any, ctx: Any, loss: Any, parts: dict) -> tuple:
        """The step's training loss given the task's (``loss``, named parts ``parts``); default: unchanged."""
        return loss, parts

    def before_optimizer_step(self, trainer: Any, ctx: Any) -> None:
        """After backward, before the optimiser step: the gradients are unscaled and may be edited."""

    def on_epoch_end(self, trainer: Any, epoch: int, entry: dict[str, Any]) -> None:
        """After each epoch's training and validation, before its history entry and checkpoint are written."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def describe(self) -> dict[str, Any]:
        """What the method adds to the run's registry entry (under ``method``)."""
        return {"method": self.name}


def check_run_overrides(overrides: Mapping[str, Any], label: str, reserved: tuple[str, ...], instead: str) -> None:
    """Validate nested overrides of a dependency's run (``teacher_run``, ``init_run``): known sections, each a
    mapping, none of ``reserved`` (which the method sets itself; ``instead`` says how)."""
    from reproduce.runs.config import SECTIONS

    forbidden = sorted(set(overrides) & set(reserved))
    if forbidden:
        raise ValueError(f"{label} may not set {forbidden}; use {instead}")
    unknown = sorted(set(overrides) - set(SECTIONS) - {"task"})
    if unknown:
        raise ValueError(f"{label}: unknown run settings {unknown}; it takes sections {sorted(SECTIONS)}")
    bad = sorted(k for k, v in overrides.items() if k != "task" and not isinstance(v, Mapping))
    if bad:
        raise ValueError(f"{label}: sections {bad} must be mappings (e.g. {{'train': {{'batch_size': 64}}}})")


#: The registered methods (every module of ``reproduce.methods`` is imported on the first look-up).
METHODS: Catalog[type[Method]] = Catalog("method", "reproduce.methods", exclude=("base",))


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`Method` subclass as ``name``."""

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register_method({name!r}) decorates Method subclasses, got {cls!r}")
        cls.name = name
        return METHODS.add(name, cls)

    return decorate


def method_class(name: str) -> type[Method]:
    """The method registered as ``name``; ValueError listing the known ones otherwise."""
    return METHODS.get(name)


def list_methods() -> list[str]:
    return METHODS.names()
