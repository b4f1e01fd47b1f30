"""Missing-modality subsets of every data set, in the row order the paper prints them.

The paper's text lost its check marks, so each order is established from evidence, written beside it
(docs/tables.md, "Subset row orders", has the long form). A subset is a tuple of modality names in the data
set's modality order; its key joins them with ``+`` (``rgb+ir``, ``flair+t1ce+t1+t2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class DatasetSubsets:
    """A data set's modalities (paper order) and the paper's row order of its 2^M - 1 subsets."""

    name: str
    modalities: tuple[str, ...]
    header: tuple[tuple[str, str], ...]  # (modality, printed name) in the printed column order of the marks
    order: tuple[tuple[str, ...], ...]
    evidence: str


def _pairs_first_then_second(a: str, b: str) -> tuple[tuple[str, ...], ...]:
    return ((a,), (b,), (a, b))


DATASETS: dict[str, DatasetSubsets] = {
    "casia_surf": DatasetSubsets(
        name="casia_surf",
        modalities=("rgb", "depth", "ir"),
        header=(("rgb", "Rgb"), ("depth", "Depth"), ("ir", "Ir")),
        order=(("rgb",), ("depth",), ("ir",), ("rgb", "depth"), ("rgb", "ir"), ("depth", "ir"), ("rgb", "depth", "ir")),
        evidence=(
            "MMANet/MWAM test scripts loop p over [1,0,0],[0,1,0],[0,0,1],[1,1,0],[1,0,1],[0,1,1],[1,1,1] "
            "(R, D, I, RD, RI, DI, RDI). Table 1 confirms it: the text says losing Depth hurts most and losing "
            "RGB least -- row 5 (RI) is the lowest pair (92.24) and row 6 (DI) the highest (97.79) -- and the "
            "FRM column is largest in row 2 (Depth, 2.33e10), the modality the paper calls dominant."
        ),
    ),
    "brats2020": DatasetSubsets(
        name="brats2020",
        modalities=("flair", "t1ce", "t1", "t2"),
        header=(("flair", "F"), ("t1", "T1"), ("t1ce", "T1c"), ("t2", "T2")),
        order=(
            ("t2",),
            ("t1ce",),
            ("t1",),
            ("flair",),
            ("t1ce", "t2"),
            ("t1ce", "t1"),
            ("flair", "t1"),
            ("t1", "t2"),
            ("flair", "t2"),
            ("flair", "t1ce"),
            ("flair", "t1ce", "t1"),
            ("flair", "t1", "t2"),
            ("flair", "t1ce", "t2"),
            ("t1ce", "t1", "t2"),
            ("flair", "t1ce", "t1", "t2"),
        ),
        evidence=(
            "RFNet/mmFormer/GSS evaluate the 15 masks in this order (host-facts). The header 'F T1 T1c T2' is the "
            "column order of the check marks, not the row order. Whole-tumour Dice confirms it in every column of "
            "Tables 2 and 15: rows 1 and 4 (T2, FLAIR alone) score ~85 while rows 2-3 (T1c, T1) score 72-75; row 6 "
            "(T1c+T1, the only pair without FLAIR or T2) is the lowest pair; row 14 (T1c+T1+T2, the only triple "
            "without FLAIR) is the lowest triple."
        ),
    ),
    "nyuv2": DatasetSubsets(
        name="nyuv2",
        modalities=("rgb", "depth"),
        header=(("rgb", "Rgb"), ("depth", "Depth")),
        order=_pairs_first_then_second("rgb", "depth"),
        evidence=(
            "Two-modality tables print the header's first modality alone first (Tables 11, 12, 13, 17, 18-22: "
            "see their evidence). MMANet's NYUv2 test loops Depth, RGB, RGB-D instead; the paper's Table 3 rows "
            "(41.30 then 38.79 for ESANet-MD) follow the header order Rgb, Depth, as RGB-only NYUv2 models "
            "outscore depth-only ones. Uncertain: recorded in docs/tables.md."
        ),
    ),
    "ucf101": DatasetSubsets(
        name="ucf101",
        modalities=("video", "flow"),
        header=(("video", "Video"), ("flow", "O.F.")),
        order=_pairs_first_then_second("video", "flow"),
        evidence=(
            "Sec. A.11: MWAM 'enhances model performance in the absence of the dominant modality (video)'; MWAM "
            "raises row 2 (55.68 -> 60.45) and not row 1 (74.41 -> 72.36), so row 2 is optical flow alone."
        ),
    ),
    "dronevehicle": DatasetSubsets(
        name="dronevehicle",
        modalities=("rgb", "ir"),
        header=(("rgb", "RGB"), ("ir", "IR")),
        order=_pairs_first_then_second("rgb", "ir"),
        evidence=(
            "Header order RGB, IR; row 1 (mAP50 0.215, PCR 72.78) is the weak RGB stream -- DroneVehicle is "
            "dominated by night scenes where infrared carries the objects -- and row 2 (0.669) infrared."
        ),
    ),
    "fgvc_aircraft": DatasetSubsets(
        name="fgvc_aircraft",
        modalities=("rgb", "depth"),
        header=(("rgb", "RGB"), ("depth", "Depth")),
        order=_pairs_first_then_second("rgb", "depth"),
        evidence=(
            "Header order RGB, Depth; row 1 (61.60) must be RGB: the depth maps are generated from the RGB image "
            "(DepthAnything v2) and lose the texture a fine-grained task needs; row 2 (39.81) is depth."
        ),
    ),
    "stanford_dogs": DatasetSubsets(
        name="stanford_dogs",
        modalities=("rgb", "depth"),
        header=(("rgb", "Rgb"), ("depth", "Depth")),
        order=_pairs_first_then_second("rgb", "depth"),
        evidence="Same construction and header as FGVC-Aircraft (Table 22); row 1 (32.91) RGB, row 2 (27.90) depth.",
    ),
}

PAIR_EVIDENCE = (
    "Two-modality CASIA-SURF blocks (Tables 13, 14, 17) print the header's first modality alone first: in the "
    "Rgb/Depth blocks row 2 is the stronger one, as Depth is on CASIA-SURF (Table 1: Depth 95.21 vs RGB 80.10); "
    "in the Depth/Ir blocks row 1 is the stronger one (MWAM 98.12 vs 91.70, Table 1: Depth 95.21 vs IR 90.94)."
)


def dataset(name: str) -> DatasetSubsets:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


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
