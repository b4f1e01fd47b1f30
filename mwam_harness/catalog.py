"""One registry class for everything the harness builds by name: hosts, data sets, training plug-ins, tasks and
runners (as timm registers models and MONAI its transforms).

A :class:`Catalog` holds the entries of one kind by name. Each kind is filled by the modules that define its
entries, which register themselves when imported (``@register_model``, ``register_dataset``, ``@register_plugin``,
``@register_task``, ``@register_runner``); the first look-up imports the kind's home -- every module of its package
-- once. The homes below are the only place that says where each kind lives: adding a host, a data set, a plug-in, a
task or a runner is adding a file there, and nothing lists the entries by hand (CLI help and table specs read the
catalogs).

This module imports nothing of the repository at import time, so that ``models`` and ``datasets`` may register into
it without importing ``reproduce``, and ``reproduce.runs`` (the bottom layer of the harness) may validate a run's
plug-in options through it without importing any plug-in module.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def import_home(home: str, exclude: tuple[str, ...] = ()) -> None:
    """Import ``home``: a module (``"reproduce.engine.runner"``); with a trailing ``.*`` every module and sub-package
    of a package (``"reproduce.methods.*"``); with a trailing ``.*/`` its sub-packages only
    (``"mwam_harness.datasets.*/"``). Names in ``exclude`` and names starting with ``_`` are skipped."""
    if not home.endswith((".*", ".*/")):
        importlib.import_module(home)
        return
    packages_only = home.endswith("/")
    package = importlib.import_module(home.rstrip("/")[:-2])
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in exclude or (packages_only and not info.ispkg):
            continue
        importlib.import_module(f"{package.__name__}.{info.name}")


class Catalog(Generic[T]):
    """Entries of one ``kind`` by name, discovered by importing ``homes`` on the first look-up.

    ``exclude`` names modules of a home that define no entries (``base``: the contract itself). ``entries`` is the
    plain dict (tests may patch it); :meth:`get`, :meth:`names` and ``in`` discover first.
    """

    def __init__(self, kind: str, homes: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> None:
        self.kind, self.homes, self.exclude = kind, homes, exclude
        self.entries: dict[str, T] = {}
        self._discovered = False
        self._lock = threading.RLock()

    def add(self, name: str, entry: T, same: Callable[[T, T], bool] | None = None) -> T:
        """Register ``entry`` as ``name``. The same entry again is fine (a module imported twice); another entry
        under a taken name is an error. ``same`` decides what counts as the same (default: equal qualified names)."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"{self.kind} names must be non-empty strings without surrounding spaces, got {name!r}")
        known = self.entries.get(name)
        if known is not None:
            if same is None:
                equal = getattr(known, "__qualname__", known) == getattr(entry, "__qualname__", entry)
            else:
                equal = same(known, entry)
            if not equal:
                raise ValueError(f"{self.kind} {name!r} is already registered by {known!r}")
        self.entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda entry: self.add(name, entry)

    def discover(self) -> None:
        """Import the homes once (their modules register their entries)."""
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._discovered = True  # before importing: a home's module may look the catalog up while it loads
            try:
                for home in self.homes:
                    import_home(home, self.exclude)
            except BaseException:
                self._discovered = False
                raise

    def get(self, name: str) -> T:
        """The entry ``name``; ValueError listing the known ones otherwise."""
        self.discover()
        if name not in self.entries:
            known = ", ".join(self.names()) or "none registered"
            raise ValueError(f"unknown {self.kind} {name!r}; known: {known}")
        return self.entries[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.discover()
        return sorted(self.entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self.discover()
        return iter(sorted(self.entries.items()))

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self.entries

    def __repr__(self) -> str:
        return f"Catalog({self.kind!r}, homes={self.homes})"


#: Host networks (``models/``: ``models.register_model``); importing ``models`` imports every host module.
HOSTS: Catalog = Catalog("host", ("mwam_harness.models",))
#: Data sets (``datasets/<name>/__init__.py``: ``datasets.register_dataset``).
DATASETS: Catalog = Catalog("data set", ("mwam_harness.datasets.*/",))
#: Training plug-ins: methods, MWAM, SDE, loggers, balancing methods (``reproduce/methods/<name>/``).
PLUGINS: Catalog = Catalog("plug-in", ("reproduce.methods.*",))
#: Task kinds (``reproduce/tasks/<task>.py``).
TASKS: Catalog = Catalog("task", ("reproduce.tasks.*",))
#: Predictors: apply a finished run of one data set to a user's files (``reproduce/predict/<dataset>.py``).
PREDICTORS: Catalog = Catalog("predictor", ("reproduce.predict.*",), exclude=("base", "trained"))
#: Runners: what trains a run (the engine's trainer; ultralytics' loop for the hosts it trains).
RUNNERS: Catalog = Catalog("runner", ("reproduce.engine.runner", "reproduce.yolo.runner"))
