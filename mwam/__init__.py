"""MWAM -- the Multimodal Weight Allocation Module of "Plug, Play, and Fortify" (torch only).

Public names: :func:`frequency_components`, :func:`frm`, :func:`weight_fn`, :class:`FRMBank`,
:class:`MWAM`, :class:`MWAMConfig`, :class:`MWAMRecord`.
"""

from .bank import FRMBank
from .config import MWAMConfig
from .dct import dct_matrix
from .frequency import frequency_components
from .frm import FRM_RULES, frm, frm_terms
from .module import MWAM
from .record import MWAMRecord
from .weighting import relative_frm, weight_fn

__all__ = [
    "FRM_RULES",
    "MWAM",
    "FRMBank",
    "MWAMConfig",
    "MWAMRecord",
    "dct_matrix",
    "frequency_components",
    "frm",
    "frm_terms",
    "relative_frm",
    "weight_fn",
]
__version__ = "0.1.0"
