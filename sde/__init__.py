"""SDE -- Spectral Disentanglement and Enhancement (torch only).

The SVD of a feature matrix split into strong / weak / noise directions (Marchenko-Pastur edge and IQR
fence), a curriculum-driven, norm-bounded spectral enhancement ``F' = U (Sigma + Delta) V^T``, and the
dual-domain contrastive loss (InfoNCE + Hellinger distance of the spectra + top-k subspace consistency).
Every formula the text leaves open is decided in ``docs/sde.md``.

Public names: :func:`spectral_split`, :class:`SpectralSplit`, :func:`spectral_enhance`, :class:`Enhancement`,
:func:`info_nce`, :func:`spectral_hellinger`, :func:`subspace_consistency`, :class:`DualDomainLoss`,
:func:`energy_fractions`, :class:`SDEConfig`, :class:`SDE`, the schedule (:func:`alpha`,
:func:`spectral_weight`, :func:`snr_penalty`, :class:`Curriculum`) and the MP helpers.
"""

from .config import SDEConfig
from .diagnostics import energy_fractions
from .enhancement import Enhancement, adversarial_signs, delta_diagonal, random_signs, spectral_enhance
from .losses import DualDomainLoss, info_nce, spectral_hellinger, subspace_consistency
from .marchenko_pastur import estimate_noise_sigma, mp_edge, mp_median, tw_scale
from .module import SDE
from .schedule import Curriculum, alpha, noise_attenuation, ramp, snr_penalty, spectral_weight
from .spectrum import SUBSPACES, SpectralSplit, spectral_split

__all__ = [
    "SDE",
    "SUBSPACES",
    "Curriculum",
    "DualDomainLoss",
    "Enhancement",
    "SDEConfig",
    "SpectralSplit",
    "adversarial_signs",
    "alpha",
    "delta_diagonal",
    "energy_fractions",
    "estimate_noise_sigma",
    "info_nce",
    "mp_edge",
    "mp_median",
    "noise_attenuation",
    "ramp",
    "random_signs",
    "snr_penalty",
    "spectral_enhance",
    "spectral_hellinger",
    "spectral_split",
    "spectral_weight",
    "subspace_consistency",
    "tw_scale",
]
__version__ = "0.1.0"
