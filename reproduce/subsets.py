"""Missing-modality subsets of every data set, in the row order the paper prints them.

The paper's text lost its check marks, so each order is established from evidence, written beside it
(docs/tables.md, "Subset row orders", has the long form). A subset is a tuple of modality names in the data
set's modality order; its key joins them with ``+`` (``rgb+ir``, ``flair+t1ce+t1+t2``).

This module holds no data set's order: a registered data set's lives in its spec (``DatasetSpec.subsets``,
``datasets/<name>/__init__.py``), that of a data set known from the paper's tables only in
:mod:`datasets.paper_only`. Only the rule of the restricted two-modality blocks is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mwam_harness.catalog import DATASETS as REGISTERED
from mwam_harness.datasets.paper_only import PAPER_ONLY
from mwam_harness.datasets.registry import dataset_spec

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class DatasetSubsets:
    """A data set's modalities (paper order) and the paper's row order of its 2^M - 1 subsets (a view of its spec's
    :class:`~mwam_harness.datasets.registry.SubsetOrder`, or of its :mod:`datasets.paper_only` entry)."""

    name: str
    modalities: tuple[str, ...]
    header: tuple[tuple[str, str], ...]  # (modality, printed name) in the printed column order of the marks
    order: tuple[tuple[str, ...], ...]
    evidence: str


def _pairs_first_then_second(a: str, b: str) -> tuple[tuple[str, ...], ...]:
    return ((a,), (b,), (a, b))


PAIR_EVIDENCE = (
    "Two-modality CASIA-SURF blocks (Tables 13, 14, 17) print the header's first modality alone first: in the "
    "Rgb/Depth blocks row 2 is the stronger one, as Depth is on CASIA-SURF (Table 1: Depth 95.21 vs RGB 80.10); "
    "in the Depth/Ir blocks row 1 is the stronger one (MWAM 98.12 vs 91.70, Table 1: Depth 95.21 vs IR 90.94)."
)


def dataset_names() -> list[str]:
    """Every data set with a subset order: the registered ones and those known from the paper only, sorted."""
    return sorted({*REGISTERED.names(), *PAPER_ONLY})


def dataset(name: str) -> DatasetSubsets:
    """The subset order of data set ``name``: its registered spec's, else its paper-only entry's."""
    if name in REGISTERED:
        entry = dataset_spec(name)
    elif name in PAPER_ONLY:
        entry = PAPER_ONLY[name]
    else:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(dataset_names())}")
    order = entry.subsets
    return DatasetSubsets(entry.name, entry.modalities, order.header, order.order, order.evidence)


def subsets(name: str, modalities: Sequence[str] | None = None) -> list[tuple[str, ...]]:
    """The subsets of data set ``name`` in paper row order; the full set is last.

    ``modalities`` restricts to a subset of the data set's modalities (the paper's two-modality CASIA-SURF
    blocks): the order is then first-listed alone, second alone, both.
    """
    info = dataset(name)
    if modalities is None:
        return list(info.order)
    chosen = tuple(m for m in info.modalities if m in modalities)
    unknown = [m for m in modalities if m not in info.modalities]
    if unknown or len(chosen) != 2:
        raise ValueError(
            f"modalities must be two of {list(info.modalities)} for a restricted block, got {list(modalities)}"
        )
    return list(_pairs_first_then_second(*chosen))


def subset_key(subset: Sequence[str]) -> str:
    """``("rgb", "ir")`` -> ``"rgb+ir"`` (callers keep the data set's modality order)."""
    return "+".join(subset)


def parse_subset_key(name: str, key: str) -> tuple[str, ...]:
    """Inverse of :func:`subset_key`, validated against the data set's modalities and put in their order."""
    info = dataset(name)
    parts = key.split("+")
    unknown = [p for p in parts if p not in info.modalities]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise ValueError(f"bad subset {key!r} for {name}: modalities are {list(info.modalities)}")
    return tuple(m for m in info.modalities if m in parts)


def subset_masks(name: str, modalities: Sequence[str] | None = None) -> np.ndarray:
    """Boolean masks (S, M) over the data set's modality order, one row per subset in paper order.

    For a restricted block, M counts only the block's modalities.
    """
    import numpy as np

    info = dataset(name)
    columns = info.modalities if modalities is None else tuple(m for m in info.modalities if m in modalities)
    rows = subsets(name, modalities)
    return np.array([[m in row for m in columns] for row in rows], dtype=bool)


def _header(name: str, modalities: Sequence[str] | None) -> list[tuple[str, str]]:
    return [(m, printed) for m, printed in dataset(name).header if modalities is None or m in modalities]


def marks(name: str, subset: Sequence[str], fmt: str = "md", modalities: Sequence[str] | None = None) -> list[str]:
    """One mark per printed modality column (the paper's header order): ``●``/``○``, or ``$\\bullet$``/``$\\circ$``."""
    if fmt in ("md", "text"):
        on, off = "●", "○"
    elif fmt == "tex":
        on, off = r"$\bullet$", r"$\circ$"
    else:
        raise ValueError(f"fmt must be 'md', 'text' or 'tex', got {fmt!r}")
    return [on if m in subset else off for m, _ in _header(name, modalities)]


def display_names(name: str, modalities: Sequence[str] | None = None) -> list[str]:
    """The printed names of the mark columns, in the paper's header order (BraTS: F, T1, T1c, T2)."""
    return [printed for _, printed in _header(name, modalities)]
