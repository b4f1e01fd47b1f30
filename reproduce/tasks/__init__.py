"""Task kinds by name (``register_task``): classification and 3-D segmentation today; 2-D segmentation and detection
later.

``build_task(name, spec, root, seed, options, modalities)`` builds the task of a run; the trainer knows no task
by name. Each task kind is one module of this package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reproduce.discovery import Catalog
from reproduce.tasks.base import LossTerms, StepContext, Task

T = TypeVar("T", bound=type[Task])
#: The registered task kinds (every module of this package is imported on the first look-up).
CATALOG: Catalog[type[Task]] = Catalog("task", "reproduce.tasks", exclude=("base",))
TASKS = CATALOG.entries


def register_task(name: str) -> Callable[[T], T]:
    """Class decorator: register a :class:`Task` subclass as ``name``."""
    return lambda cls: CATALOG.add(name, cls)


def build_task(name: str, spec: Any, root: str, seed: int, options: dict | None = None, modalities=None) -> Task:
    """The task ``name`` of data set ``spec`` (a ``DatasetSpec``) at ``root``."""
    return CATALOG.get(name)(spec, root, seed, options, modalities)


__all__ = ["CATALOG", "TASKS", "LossTerms", "StepContext", "Task", "build_task", "register_task"]
