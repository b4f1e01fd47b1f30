"""The options of ``validation_loss`` (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

#: The splits a run's data set has (every registered data set's loader takes these three).
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ValidationLossOptions:
    """split: the split whose loss is measured at each epoch's end (``val``: the validation split, Fig. 1b); its
    value goes into the epoch's history entry as ``<split>_loss`` (``val_loss``)."""

    split: str = "val"

    def __post_init__(self) -> None:
        if not isinstance(self.split, str) or self.split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {self.split!r}")

    @property
    def key(self) -> str:
        """The history entry's key: ``val_loss`` for the validation split."""
        return f"{self.split}_loss"
