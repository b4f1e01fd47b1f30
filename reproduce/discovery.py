"""Registries that fill themselves: import every module of a package once (each registers what it defines)."""

from __future__ import annotations

import importlib
import pkgutil


def import_modules(package: str, exclude: tuple[str, ...] = ()) -> None:
    """Import every module of ``package`` except ``exclude`` (their decorators register hosts, methods, tasks)."""
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        if info.name not in exclude:
            importlib.import_module(f"{package}.{info.name}")
