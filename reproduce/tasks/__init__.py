"""Task kinds by name (``register_task``): classification, 2-D and 3-D segmentation.

``build_task(name, spec, root, seed, options, modalities)`` builds the task of a run; the trainer knows no task
by name. Each task kind is one module of this package, registered in the harness's catalog
(:data:`mwam_harness.catalog.TASKS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mwam_harness.catalog import TASKS
from reproduce.tasks.base import LossTerms, StepContext, Task

T = TypeVar("T", bound=type[Task])


def register_task(name: str) -> Callable[[T], T]:
    """Class decorator: register a :class:`Task` subclass as ``name``."""

    def decorate(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"@register_task({name!r}) decorates Task subclasses, got {cls!r}")
        return TASKS.add(name, cls)

    return decorate


def build_task(name: str, spec: Any, root: str, seed: int, options: dict | None = None, modalities=None) -> Task:
    """The task ``name`` of data set ``spec`` (a ``DatasetSpec``) at ``root``."""
    return TASKS.get(name)(spec, root, seed, options, modalities)


__all__ = ["TASKS", "LossTerms", "StepContext", "Task", "build_task", "register_task"]
