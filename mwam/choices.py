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
Layout = Literal["image", "volume", "video"]
#: image (B, C, H, W); volume (B, C, D, H, W), cut into p x p x p cubes; video (B, C, T, H, W), each frame cut
#: into p x p patches (the frames are folded into the batch for the DCT).
LAYOUTS: tuple[str, ...] = ("image", "volume", "video")
FrameReduction = Literal["sum", "mean"]
FRAME_REDUCTIONS: tuple[str, ...] = ("sum", "mean")
FRMNormalisation = Literal["none", "per_element"]
FRM_NORMALISATIONS: tuple[str, ...] = ("none", "per_element")
