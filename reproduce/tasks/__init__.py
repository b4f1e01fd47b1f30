"""Task adapters, built by name: ``build_task(name, dataset, data_root, seed)``."""

from __future__ import annotations

from reproduce.tasks.base import Task
from reproduce.tasks.classification import ClassificationTask

TASKS: dict[str, type[Task]] = {"classification": ClassificationTask}


def build_task(name: str, dataset: str, data_root: str, seed: int, data_options: dict | None = None) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](dataset, data_root, seed, data_options)


__all__ = ["TASKS", "ClassificationTask", "Task", "build_task"]
