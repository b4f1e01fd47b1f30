"""The ultralytics training recipe (method ``ultralytics``): the options of ultralytics' own loop for the
two-stream YOLOv8n of Table 12 (``recipe.py``). The ultralytics runner (``reproduce/yolo``) reads them; MWAM and SDE
join that loop as the same plug-ins the engine uses."""

from __future__ import annotations

from reproduce.methods.ultralytics.recipe import (
    MWAM_CLIPS,
    MWAM_EDITS,
    OWNED_BY_RUN,
    UltralyticsOptions,
    UltralyticsRecipe,
    ultralytics_arguments,
)

__all__ = [
    "MWAM_CLIPS",
    "MWAM_EDITS",
    "OWNED_BY_RUN",
    "UltralyticsOptions",
    "UltralyticsRecipe",
    "ultralytics_arguments",
]
