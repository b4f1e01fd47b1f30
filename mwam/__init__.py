"""MWAM -- the Multimodal Weight Allocation Module of "Plug, Play, and Fortify" (torch only).

Public names: :func:`frequency_components`, :func:`frm`, :func:`weight_fn`, :class:`FRMBank`,
:class:`MWAM`, :class:`MWAMConfig`, :class:`MWAMRecord`.

The names are loaded on first use (PEP 562): ``import mwam`` and ``mwam.MWAMConfig`` import no torch, so that a
training configuration can validate MWAM options without loading it; ``mwam.MWAM`` loads torch as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bank import FRMBank as FRMBank
    from .choices import FRM_RULES as FRM_RULES
    from .config import MWAMConfig as MWAMConfig
    from .dct import dct_matrix as dct_matrix
    from .frequency import frequency_components as frequency_components
    from .frequency_ratio import frm as frm
    from .frequency_ratio import frm_terms as frm_terms
    from .module import MWAM as MWAM
    from .record import MWAMRecord as MWAMRecord
    from .weighting import relative_frm as relative_frm
    from .weighting import weight_fn as weight_fn

_HOMES = {
    "FRM_RULES": "choices",
    "MWAM": "module",
    "FRMBank": "bank",
    "MWAMConfig": "config",
    "MWAMRecord": "record",
    "dct_matrix": "dct",
    "frequency_components": "frequency",
    "frm": "frequency_ratio",
    "frm_terms": "frequency_ratio",
    "relative_frm": "weighting",
    "weight_fn": "weighting",
}
__all__ = sorted(_HOMES)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mwam' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
