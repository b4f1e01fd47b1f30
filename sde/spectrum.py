"""Spectral disentanglement: the SVD of a feature matrix split into strong / weak / noise directions.

The text ("Spectral Disentanglement"): ``F = U Sigma V^T``; singular values are partitioned "using the
inter-quartile range (IQR) and the Marchenko-Pastur distribution as theoretical bounds". Here:

- noise  = sigma_i <= threshold = MP upper edge ``sigma_hat (sqrt(m_eff) + sqrt(n_eff))`` plus ``tw_margin``
  Tracy-Widom scales (or <= the numerical floor),
- strong = above the threshold and above Tukey's fence ``Q3 + iqr_factor * IQR`` of the effective spectrum,
- weak   = above the threshold, not strong.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .marchenko_pastur import estimate_noise_sigma, mp_edge, tw_scale
from .svd import numerical_floor, power_of_two_scale
from .validation import check_bool, check_compute_dtype, check_finite, check_matrix, check_non_negative

SUBSPACES: tuple[str, ...] = ("strong", "weak", "noise")
_REFINE = 3
_TOL = 16  # rounding slack (in eps of the compute dtype) below which a centred row or column counts as constant


@dataclass(frozen=True)
class SpectralSplit:
    """The thin SVD ``X = U diag(S) Vh`` of the (centred) features and its three-way partition.

    U (m, r), S (r,) descending, Vh (r, n) with r = min(m, n), kept in the compute dtype (float32 or
    float64: a float16 S could overflow). ``strong``, ``weak``, ``noise`` are disjoint boolean masks over S
    whose union is everything. ``sigma`` is the estimated noise level, ``edge`` the MP upper edge,
    ``threshold`` the noise threshold (edge + Tracy-Widom margin), ``fence`` the IQR fence, ``floor`` the
    numerical-zero threshold (a singular value below it is noise whatever the edge says),
    ``effective_shape`` the (m_eff, n_eff) the noise model was fitted with, ``dtype`` the input's dtype.
    Nothing here carries gradients.
    """

    U: torch.Tensor
    S: torch.Tensor
    Vh: torch.Tensor
    strong: torch.Tensor
    weak: torch.Tensor
    noise: torch.Tensor
    sigma: float
    edge: float
    threshold: float
    fence: float
    floor: float
    centered: bool
    effective_shape: tuple[int, int]
    dtype: torch.dtype

    @property
    def counts(self) -> dict[str, int]:
        """Number of singular directions in each subspace (sums to r = min(m, n))."""
        return {name: int(getattr(self, name).sum()) for name in SUBSPACES}

    @property
    def rank(self) -> int:
        """Signal rank: strong + weak directions."""
        return int((self.strong | self.weak).sum())

    def mask(self, subspace: str) -> torch.Tensor:
        if subspace not in SUBSPACES:
            raise ValueError(f"subspace must be one of {SUBSPACES}, got {subspace!r}")
        return getattr(self, subspace)


def working_dtype(dtype: torch.dtype, compute_dtype: torch.dtype) -> torch.dtype:
    """float64 input stays float64; everything else (float16, bfloat16, float32) runs in ``compute_dtype``."""
    return torch.float64 if dtype == torch.float64 else compute_dtype


def spectral_split(
    features: torch.Tensor,
    *,
    center: bool = True,
    iqr_factor: float = 1.5,
    tw_margin: float = 2.0,
    top_is_strong: bool = False,
    compute_dtype: torch.dtype = torch.float32,
) -> SpectralSplit:
    """Split the singular directions of ``features`` (m samples x n dims) into strong / weak / noise.

    ``center``: subtract the column means first (PCA convention; the common "cone" direction of the
    embeddings is not a semantic axis). Centring costs one degree of freedom: m_eff = m' - 1, where m'
    counts the rows not (numerically) equal to the mean; n_eff counts the non-constant columns. The noise
    model is an m_eff x n_eff i.i.d. matrix: sigma from the Gavish-Donoho median rule on the first
    min(m_eff, n_eff) singular values, re-fitted without the values found above the threshold (they
    inflate the median), edge ``sigma (sqrt(m_eff) + sqrt(n_eff))``, threshold ``edge + tw_margin *
    tw_scale`` (``tw_margin=0``: the bare edge, which pure noise crosses about one time in five).
    The IQR fence is computed over those min(m_eff, n_eff) values (Tukey's outliers of the whole spectrum:
    the few signal values alone are too few for stable quartiles). ``top_is_strong=True`` makes the largest
    direction strong whenever it is signal (off by default: a direction barely above the threshold, as a
    pure-noise fluctuation is, must not become "strong").
    A zero matrix, m = 1 (centred), identical rows, constant columns: all noise. Inputs are rescaled by an
    exact power of two first, so 1e-30 or 1e30 features split like 1.
    Non-finite input raises ValueError. Computed without gradient; reads a few scalars from the device.
    """
    check_matrix(features)
    check_non_negative(iqr_factor, "iqr_factor")
    check_non_negative(tw_margin, "tw_margin")
    check_bool(center, "center")
    check_bool(top_is_strong, "top_is_strong")
    dtype = working_dtype(features.dtype, check_compute_dtype(compute_dtype))
    with torch.no_grad(), torch.autocast(features.device.type, enabled=False):
        f = check_finite(features.detach().to(dtype))
        scale = power_of_two_scale(f)  # exact rescaling: norms of 1e-30 or 1e30 inputs neither under- nor overflow
        f = f / scale
        m, n = f.shape
        eps = torch.finfo(dtype).eps
        x = f - f.mean(0, keepdim=True) if center else f
        U, S, Vh = torch.linalg.svd(x, full_matrices=False)
        row_tol = _TOL * eps * (f.norm(dim=1) + (f.mean(0).norm() if center else 0.0))
        rows = int((x.norm(dim=1) > row_tol).sum())
        n_eff = int((x.norm(dim=0) > _TOL * eps * f.norm(dim=0)).sum())
        m_eff = max(rows - int(center), 0) if n_eff > 0 else 0
        r, r_eff = S.numel(), min(m_eff, n_eff, S.numel())
        floor = numerical_floor(float(S[0]), float(torch.linalg.vector_norm(f)), m, n, dtype)
        sigma = edge = threshold = 0.0
        if r_eff > 0:
            sigma = estimate_noise_sigma(S[:r_eff], m_eff, n_eff)
            for _ in range(_REFINE):  # re-fit sigma without the k spikes found, which inflate the median
                edge = mp_edge(m_eff, n_eff, sigma)
                threshold = max(edge + tw_margin * tw_scale(m_eff, n_eff, sigma), floor)
                k = int((S[:r_eff] > threshold).sum())
                if k == 0 or k >= r_eff:
                    break
                sigma = estimate_noise_sigma(S[k:r_eff], m_eff - k, n_eff - k)
            edge = mp_edge(m_eff, n_eff, sigma)
            threshold = max(edge + tw_margin * tw_scale(m_eff, n_eff, sigma), floor)
        effective = torch.arange(r, device=S.device) < r_eff
        signal = effective & (threshold < S)
        fence = 0.0
        if r_eff > 0:
            q1, q3 = torch.quantile(S[:r_eff], torch.tensor([0.25, 0.75], dtype=dtype, device=S.device)).tolist()
            fence = q3 + iqr_factor * (q3 - q1)
        strong = signal & (fence < S)
        if top_is_strong:
            strong[0] |= signal[0]
        weak = signal & ~strong
    return SpectralSplit(
        U=U,
        S=S * scale,
        Vh=Vh,
        strong=strong,
        weak=weak,
        noise=~signal,
        sigma=sigma * scale,
        edge=edge * scale,
        threshold=threshold * scale,
        fence=fence * scale,
        floor=floor * scale,
        centered=center,
        effective_shape=(m_eff, n_eff),
        dtype=features.dtype,
    )
