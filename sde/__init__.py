"""SDE -- Spectral Disentanglement and Enhancement (torch only).

The SVD of a feature matrix split into strong / weak / noise directions (Marchenko-Pastur edge and IQR
fence), a curriculum-driven, norm-bounded spectral enhancement ``F' = U (Sigma + Delta) V^T``, and the
dual-domain contrastive loss (InfoNCE + Hellinger distance of the spectra + top-k subspace consistency).
Every formula the text leaves open is decided in ``docs/sde.md``.

Public names: :func:`spectral_split`, :class:`SpectralSplit`, :func:`spectral_enhance`, :class:`Enhancement`,
:func:`info_nce`, :func:`spectral_hellinger`, :func:`subspace_consistency`, :class:`DualDomainLoss`,
:func:`energy_fractions`, :class:`SDEConfig`, :class:`SDE`, the schedule (:func:`alpha`,
:func:`spectral_weight`, :func:`snr_penalty`, :class:`Curriculum`) and the MP helpers.

The names are loaded on first use (PEP 562): ``import sde`` and ``sde.SDEConfig`` import no torch, so that a
training configuration can validate SDE options without loading it; ``sde.SDE`` loads torch as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import SDEConfig as SDEConfig
    from .diagnostics import energy_fractions as energy_fractions
    from .enhancement import (
        Enhancement as Enhancement,
    )
    from .enhancement import (
        adversarial_signs as adversarial_signs,
    )
    from .enhancement import (
        delta_diagonal as delta_diagonal,
    )
    from .enhancement import (
        random_signs as random_signs,
    )
    from .enhancement import (
        spectral_enhance as spectral_enhance,
    )
    from .losses import (
        DualDomainLoss as DualDomainLoss,
    )
    from .losses import (
        info_nce as info_nce,
    )
    from .losses import (
        spectral_hellinger as spectral_hellinger,
    )
    from .losses import (
        subspace_consistency as subspace_consistency,
    )
    from .marchenko_pastur import (
        estimate_noise_sigma as estimate_noise_sigma,
    )
    from .marchenko_pastur import (
        mp_edge as mp_edge,
    )
    from .marchenko_pastur import (
        mp_median as mp_median,
    )
    from .marchenko_pastur import (
        tw_scale as tw_scale,
    )
    from .module import SDE as SDE
    from .schedule import (
        Curriculum as Curriculum,
    )
    from .schedule import (
        alpha as alpha,
    )
    from .schedule import (
        noise_attenuation as noise_attenuation,
    )
    from .schedule import (
        ramp as ramp,
    )
    from .schedule import (
        snr_penalty as snr_penalty,
    )
    from .schedule import (
        spectral_weight as spectral_weight,
    )
    from .spectrum import SUBSPACES as SUBSPACES
    from .spectrum import SpectralSplit as SpectralSplit
    from .spectrum import spectral_split as spectral_split

_HOMES = {
    "Curriculum": "schedule",
    "DualDomainLoss": "losses",
    "Enhancement": "enhancement",
    "SDE": "module",
    "SDEConfig": "config",
    "SUBSPACES": "spectrum",
    "SpectralSplit": "spectrum",
    "adversarial_signs": "enhancement",
    "alpha": "schedule",
    "delta_diagonal": "enhancement",
    "energy_fractions": "diagnostics",
    "estimate_noise_sigma": "marchenko_pastur",
    "info_nce": "losses",
    "mp_edge": "marchenko_pastur",
    "mp_median": "marchenko_pastur",
    "noise_attenuation": "schedule",
    "ramp": "schedule",
    "random_signs": "enhancement",
    "snr_penalty": "schedule",
    "spectral_enhance": "enhancement",
    "spectral_hellinger": "losses",
    "spectral_split": "spectrum",
    "spectral_weight": "schedule",
    "subspace_consistency": "losses",
    "tw_scale": "marchenko_pastur",
}
__all__ = sorted(_HOMES)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sde' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
