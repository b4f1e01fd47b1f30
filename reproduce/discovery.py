"""Registries that fill themselves: a :class:`Catalog` of named classes, filled by importing every module of a
package once (each module's decorator registers what it defines). Training methods and task kinds use it."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, TypeVar

T = TypeVar("T")


def import_modules(package: str, exclude: tuple[str, ...] = ()) -> None:
    """Import every module of ``package`` except ``exclude`` (their decorators register hosts, methods, tasks)."""
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        if info.name not in exclude:
            importlib.import_module(f"{package}.{info.name}")


class Catalog(Generic[T]):
    """Entries of one ``kind`` (``"method"``, ``"task"``) by name, discovered from the modules of ``package``.

    ``entries`` is the plain dict (tests may patch it); ``get`` and ``names`` import the package's modules first.
    """

    def __init__(self, kind: str, package: str, exclude: tuple[str, ...] = ()) -> None:
        self.kind, self.package, self.exclude = kind, package, exclude
        self.entries: dict[str, T] = {}
        self._discovered = False

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` as ``name``; the same class again is fine (a module imported twice), another not."""
        known = self.entries.get(name)
        if known is not None and getattr(known, "__qualname__", None) != getattr(entry, "__qualname__", None):
            raise ValueError(f"{self.kind} {name!r} is already registered by {known!r}")
        self.entries[name] = entry
        return entry

    def discover(self) -> None:
        if not self._discovered:
            import_modules(self.package, self.exclude)
            self._discovered = True

    def get(self, name: str) -> T:
        """The entry ``name``; ValueError listing the known ones otherwise."""
        self.discover()
        if name not in self.entries:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self.entries[name]

    def names(self) -> list[str]:
        self.discover()
        return sorted(self.entries)
