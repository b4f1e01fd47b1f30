"""Task kinds by name (``register_task``): classification today; 2-D / 3-D segmentation and detection later.

``build_task(name, spec, root, seed, options, modalities)`` builds the task of a run; the trainer knows no task
by name. Each task kind is one module of this package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reproduce.discovery import import_modules
from reproduce.tasks.base import LossTerms, StepContext, Task

TASKS: dict[str, type[Task]] = {}
T = TypeVar("T", bound=type[Task])
_DISCOVERED = False


def register_task(name: str) -> Callable[[T], T]:
    """Class decorator: register a :class:`Task` subclass as ``name``."""

    def decorate(cls: T) -> T:
        known = TASKS.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"task {name!r} is already registered by {known!r}")
        TASKS[name] = cls
        return cls

    return decorate


def _discover() -> None:
    global _DISCOVERED
    if not _DISCOVERED:
        import_modules("reproduce.tasks", exclude=("base",))
        _DISCOVERED = True


def build_task(name: str, spec: Any, root: str, seed: int, options: dict | None = None, modalities=None) -> Task:
    """The task ``name`` of data set ``spec`` (a ``DatasetSpec``) at ``root``."""
    _discover()
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](spec, root, seed, options, modalities)


__all__ = ["TASKS", "LossTerms", "StepContext", "Task", "build_task", "register_task"]
