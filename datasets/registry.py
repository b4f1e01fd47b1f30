"""Data sets by name: what each one is, where it comes from, how it is read, checked, synthesised and preset.

A data set registers a :class:`DatasetSpec` from its package's ``__init__`` (``datasets/<name>/__init__.py``),
which must stay import-light: no torch, no OpenCV -- the run configuration, the table planner and ``--dry-run``
read the specs without loading either. The heavy parts (the loader, the synthetic generator, the checker) are
named as ``"module:attribute"`` and imported when used. Adding a data set means adding its package; nothing here
or in the trainer names one.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwam_harness.catalog import DATASETS

#: The file a synthetic data set carries at its root: its generator's parameters (also part of the fingerprint).
SYNTHETIC_MARKER = "synthetic.json"


def read_synthetic_marker(directory: str | Path) -> dict | None:
    """The parameters a synthetic generator recorded in ``directory`` (its :data:`SYNTHETIC_MARKER`), or None
    where there is none or it does not parse."""
    try:
        return json.loads((Path(directory) / SYNTHETIC_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


PRESETS = ("paper", "smoke", "demo")


def _subset_name(subset: tuple[str, ...]) -> str:
    return "+".join(subset)


@dataclass(frozen=True)
class SubsetOrder:
    """The paper's row order of a data set's missing-modality subsets and how its tables print them.

    header: (modality, printed name) per check-mark column, in the printed column order (BraTS prints
        ``F T1 T1c T2``: not the modality order, nor the row order).
    order: every non-empty subset of the modalities once, each a tuple in the data set's modality order, in the
        paper's row order; the full set is last.
    evidence: why this is the order (the paper's text lost its check marks; docs/tables.md, "Subset row orders").

    :meth:`check` validates it against a data set's modalities; :class:`DatasetSpec` calls it when built.
    """

    header: tuple[tuple[str, str], ...]
    order: tuple[tuple[str, ...], ...]
    evidence: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", tuple((str(m), str(printed)) for m, printed in self.header))
        object.__setattr__(self, "order", tuple(tuple(subset) for subset in self.order))

    def check(self, name: str, modalities: tuple[str, ...]) -> None:
        """ValueError (naming data set ``name`` and what is wrong) unless the order holds every non-empty subset of
        ``modalities`` exactly once, each in modality order, the full set last, and the header names every
        modality once with a printed name."""
        where = f"data set {name!r}"
        known = ", ".join(modalities)
        if not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"{where}: the modalities must be distinct and at least one, got {list(modalities)}")
        header = [m for m, _ in self.header]
        if sorted(header) != sorted(modalities):
            raise ValueError(f"{where}: the subset header must name every modality ({known}) once, got {header}")
        blank = [m for m, printed in self.header if not printed.strip()]
        if blank:
            raise ValueError(f"{where}: the subset header has no printed name for {blank}")
        if not isinstance(self.evidence, str) or not self.evidence.strip():
            raise ValueError(f"{where}: the subset order needs its evidence (why the paper's rows are in this order)")
        seen: set[tuple[str, ...]] = set()
        for row, subset in enumerate(self.order, start=1):
            unknown = [m for m in subset if m not in modalities]
            if not subset or unknown:
                raise ValueError(f"{where}: subset row {row} {list(subset)} is not a non-empty subset of ({known})")
            if subset != tuple(m for m in modalities if m in subset):
                raise ValueError(f"{where}: subset row {row} {_subset_name(subset)} is not in modality order ({known})")
            if subset in seen:
                raise ValueError(f"{where}: the subset order repeats {_subset_name(subset)} (row {row})")
            seen.add(subset)
        every = [c for size in range(1, len(modalities) + 1) for c in itertools.combinations(modalities, size)]
        missing = [_subset_name(subset) for subset in every if subset not in seen]
        if missing:
            raise ValueError(f"{where}: the subset order misses {', '.join(missing)}")
        if self.order[-1] != tuple(modalities):
            row = self.order.index(tuple(modalities)) + 1
            raise ValueError(
                f"{where}: the full set {_subset_name(tuple(modalities))} must be the last subset row, it is row "
                f"{row} of {len(self.order)}"
            )


@dataclass(frozen=True)
class Problem:
    """One problem ``check-data`` found: the file, the line (list files) and what is wrong."""

    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class DatasetPreset:
    """Run settings of one preset of a data set.

    synthetic: whether the preset trains on the data set's synthetic stand-in (``generator`` are its arguments) or
        on the real data (a data root the user gives).
    run: nested overrides of the run configuration (``{"train": {"epochs": 2}, "optim": {"lr": 0.01}}``).
    runtime: overrides of the runtime settings (``{"log_every": 2}``).
    methods: per training method, option overrides (``{"mmanet": {"begin_epoch": 0}}``).
    hosts: per host, option overrides a table's columns of that host get under this preset (``{"rfnet":
        {"fused_loss_start_epoch": 1}}``: a short synthetic schedule scales the host's own epochs).
    host_runs: per host, nested run overrides a table's columns of that host get under this preset, over ``run``
        (``{"mmformer": {"train": {"epochs": 1000}}}``: Sec. A.3 trains mmFormer longer than RFNet).
    """

    name: str
    synthetic: bool
    run: Mapping[str, Any] = field(default_factory=dict)
    runtime: Mapping[str, Any] = field(default_factory=dict)
    generator: Mapping[str, Any] = field(default_factory=dict)
    methods: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    hosts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    host_runs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def load_object(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set.

    modalities: in the paper's order. task: the task kind its runs train (``reproduce.tasks``). num_classes, metric:
        what the task predicts and how it is scored (``metric`` names a family the task knows, e.g. ``pad`` for
        CASIA-SURF's presentation-attack accuracy / APCER / NPCER / ACER).
    splits: split name -> its list file, relative to the root (what the fingerprint hashes).
    source, layout: where to get the real data and how it must lie on disk (shown when it is missing).
    loader: ``"module:Class"``, called as ``Class(root, split, train=..., seed=..., **options)``.
    generator: ``"module:function"`` writing the synthetic stand-in, ``function(out_dir, **arguments)``.
    checker: ``"module:function"``, ``function(root, progress=..., workers=...) -> list[Problem]``.
    presets: ``paper`` / ``smoke`` / ``demo`` run settings (:class:`DatasetPreset`).
    subsets: the paper's row order of the missing-modality subsets, the printed header and the evidence
        (:class:`SubsetOrder`, checked against ``modalities`` when the spec is built); ``reproduce.subsets`` reads it.
    schedules: named learning-rate schedules (``schedule.preset`` of a run): name -> host name (or ``"*"`` for every
        other host) -> ``ScheduleConfig`` fields.
    preparer: ``"module:function"`` turning a downloaded layout into the one the loader reads,
        ``function(source, out_dir, progress=..., workers=..., **options) -> Path`` (``python -m reproduce prepare``);
        None when the data set is read as downloaded.
    """

    name: str
    title: str
    modalities: tuple[str, ...]
    task: str
    num_classes: int
    metric: str
    splits: Mapping[str, str]
    source: str
    layout: str
    loader: str
    generator: str
    checker: str
    presets: Mapping[str, DatasetPreset]
    subsets: SubsetOrder
    schedules: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    preparer: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        if not isinstance(self.subsets, SubsetOrder):
            kind = type(self.subsets).__name__
            raise ValueError(f"data set {self.name!r}: subsets must be a SubsetOrder, got {kind}")
        self.subsets.check(self.name, self.modalities)

    def split_files(self, root: str | Path) -> list[Path]:
        """The list files of every split under ``root`` (in ``splits`` order)."""
        return [Path(root) / name for name in self.splits.values()]

    def fingerprint(self, root: str | Path) -> str:
        """A short hash of the split list files (and, for a synthetic set, of its generator parameters): it
        identifies the data in a run's key, wherever the root lies. Raises FileNotFoundError naming what is
        missing."""
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{self.name}: data root {root} is not a directory")
        lists = self.split_files(root)
        for path in lists:
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: missing list file of {self.name}; a root must hold {', '.join(self.splits.values())}"
                )
        marker = root / SYNTHETIC_MARKER
        digest = hashlib.sha256(self.name.encode())
        for path in [*lists, marker] if marker.is_file() else lists:
            digest.update(f"\0{path.name}\0".encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def listed_samples(self, root: str | Path, split: str) -> int:
        """The number of samples the list file of ``split`` names (its non-empty lines), without reading them."""
        path = Path(root) / self.splits[split]
        with path.open(encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())

    def is_synthetic(self, root: str | Path) -> bool:
        """Whether ``root`` holds a synthetic stand-in (it carries :data:`SYNTHETIC_MARKER`)."""
        return (Path(root) / SYNTHETIC_MARKER).is_file()

    def preset(self, name: str) -> DatasetPreset:
        if name not in self.presets:
            raise ValueError(f"{self.name} has no preset {name!r}; it has {sorted(self.presets)}")
        return self.presets[name]

    def schedule_preset(self, name: str, host: str) -> Mapping[str, Any]:
        """The fields of schedule preset ``name`` for ``host`` (its own entry, else the ``"*"`` entry)."""
        if name not in self.schedules:
            raise ValueError(f"{self.name} has no schedule preset {name!r}; it has {sorted(self.schedules) or 'none'}")
        per_host = self.schedules[name]
        if host in per_host:
            return per_host[host]
        if "*" in per_host:
            return per_host["*"]
        raise ValueError(f"{self.name}'s schedule preset {name!r} has no entry for host {host!r} (and no '*')")

    def build_dataset(self, root: str | Path, split: str, train: bool, seed: int, **options: Any) -> Any:
        """The loader of ``split`` (imports the loader module)."""
        return load_object(self.loader)(root, split, train=train, seed=seed, **options)

    def write_synthetic(self, out_dir: str | Path, **arguments: Any) -> Path:
        """Write (or reuse) the synthetic stand-in at ``out_dir`` (imports the generator module)."""
        return Path(load_object(self.generator)(out_dir, **arguments))

    def prepare(self, source: str | Path, out_dir: str | Path, **options: Any) -> Path:
        """Write the layout the loader reads from ``source`` (imports the preparer); ValueError without one."""
        if self.preparer is None:
            raise ValueError(f"{self.name} is read as downloaded: it has no prepare step")
        return Path(load_object(self.preparer)(source, out_dir, **options))

    def check(self, root: str | Path, progress: bool = True, workers: int = 4) -> list[Problem]:
        """Every problem of the data at ``root``: each listed file read and decoded (imports the checker)."""
        return list(load_object(self.checker)(root, progress=progress, workers=workers))

    def missing_data_message(self) -> str:
        return (
            f"The paper preset trains on the real {self.title} data set, and no data root was given.\n"
            f"  Where to get it: {self.source}\n"
            "  Where to put it: anywhere; pass --data-root PATH or set MWAM_DATA_ROOT=PATH.\n"
            f"  Expected layout: {self.layout}\n"
            "  No data? Run the same pipeline on synthetic data in the same layout: --preset smoke (seconds) or\n"
            "  --preset demo (minutes); its tables are labelled synthetic."
        )


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Register ``spec`` under ``spec.name`` (the same spec again is fine: modules may be re-imported)."""
    missing = sorted(set(PRESETS) - set(spec.presets))
    if missing:
        raise ValueError(f"data set {spec.name!r} lacks the presets {missing}")
    return DATASETS.add(spec.name, spec, same=lambda known, new: known == new)


def dataset_spec(name: str) -> DatasetSpec:
    """The registered data set ``name``; ValueError listing the known ones otherwise."""
    return DATASETS.get(name)


def list_datasets() -> list[str]:
    return DATASETS.names()
