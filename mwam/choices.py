"""The vocabularies of MWAM's options (torch-free, so that ``mwam.config`` imports no torch)."""

from __future__ import annotations

from typing import Literal

FRMRule = Literal["ratio", "low_l1", "sum", "weighted_sum"]
FRM_RULES: tuple[str, ...] = ("ratio", "low_l1", "sum", "weighted_sum")
Pairing = Literal["patch", "map"]
PAIRINGS: tuple[str, ...] = ("patch", "map")
TRule = Literal["batch", "bank"]
T_RULES: tuple[str, ...] = ("batch", "bank")
Intervention = Literal["grad", "loss", "hybrid", "none"]
INTERVENTIONS: tuple[str, ...] = ("grad", "loss", "hybrid", "none")
