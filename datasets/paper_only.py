"""Data sets known from the paper's tables only: no package, no loader yet, but their subset row order.

FGVC-Aircraft (Tables 18-22) and Stanford Dogs (Table 22) are printed by ``python -m reproduce paper`` in the
paper's row order, so their order is recorded here -- and only here -- with its evidence. When a data set's issue
adds its loader (its package ``datasets/<name>/``), its order moves into its spec (``DatasetSpec.subsets``) and its
entry here is deleted (UCF-101's did, into ``datasets/ucf101``): a test fails while a name is both here and
registered.

Torch-free and import-light, like the specs; ``reproduce.subsets`` reads it for these names. The data-set catalog
does not import it (it imports the sub-packages of ``datasets`` only), so these names are not registered data sets.
"""

from __future__ import annotations

from dataclasses import dataclass

from mwam_harness.datasets.registry import SubsetOrder


@dataclass(frozen=True)
class PaperOnlyDataset:
    """A data set of the paper without a package: its name, title, modalities (paper order) and subset order."""

    name: str
    title: str
    modalities: tuple[str, ...]
    subsets: SubsetOrder

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        self.subsets.check(self.name, self.modalities)


def _entries(*entries: PaperOnlyDataset) -> dict[str, PaperOnlyDataset]:
    return {entry.name: entry for entry in entries}


#: Name -> the data set's entry, for the data sets known from the paper's tables only.
PAPER_ONLY: dict[str, PaperOnlyDataset] = _entries(
    PaperOnlyDataset(
        name="fgvc_aircraft",
        title="FGVC-Aircraft",
        modalities=("rgb", "depth"),
        subsets=SubsetOrder(
            header=(("rgb", "RGB"), ("depth", "Depth")),
            order=(("rgb",), ("depth",), ("rgb", "depth")),
            evidence=(
                "Header order RGB, Depth; row 1 (61.60) must be RGB: the depth maps are generated from the RGB image "
                "(DepthAnything v2) and lose the texture a fine-grained task needs; row 2 (39.81) is depth."
            ),
        ),
    ),
    PaperOnlyDataset(
        name="stanford_dogs",
        title="Stanford Dogs",
        modalities=("rgb", "depth"),
        subsets=SubsetOrder(
            header=(("rgb", "Rgb"), ("depth", "Depth")),
            order=(("rgb",), ("depth",), ("rgb", "depth")),
            evidence=(
                "Same construction and header as FGVC-Aircraft (Table 22); row 1 (32.91) RGB, row 2 (27.90) depth."
            ),
        ),
    ),
)
