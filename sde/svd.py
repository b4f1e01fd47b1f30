"""Differentiable pieces of an SVD whose backward stays finite for repeated and zero singular values.

torch's SVD backward divides by sigma_i^2 - sigma_j^2 for every pair whenever U or V are used: identical
samples, a zero modality or the centring's zero singular value make it NaN. The spectral losses need
only two derivatives, both written here from one forward SVD (taken without autograd):

- singular values: ``d sigma_i = u_i^T dX v_i`` -> ``grad_X = U diag(g) V^T``; no gaps involved.
- the top-k right singular subspace, for losses invariant to rotations inside it (such as the
  projector V_k V_k^T): only the gaps between the kept and the discarded eigenvalues of X^T X enter,
  and ``1 / gap`` is replaced by ``gap / (gap^2 + eps^2)`` with ``eps = 1e-3 lambda_1``: at most
  ``1 / (2 eps)`` where the subspace is ill-defined (gap -> 0), relative error ``(eps / gap)^2`` otherwise
  (1e-4 for a gap of lambda_1 / 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

GAP_EPS = 1e-3
_TOL = 16


def numerical_floor(s_max: float, f_norm: float, m: int, n: int, dtype: torch.dtype) -> float:
    """Singular values at or below this are rounding: ``eps (max(m, n) sigma_1 + 16 ||F||_F)``.

    The first term is the SVD's own error (``torch.linalg.matrix_rank``'s tolerance), the second the
    rounding of the centring, which scales with the uncentred input (identical rows leave ~eps |F|).
    """
    return torch.finfo(dtype).eps * (max(m, n) * s_max + _TOL * f_norm)


def frobenius(x: torch.Tensor) -> float:
    """``||x||_F`` without under/overflow of the squares (the entries are scaled by their largest first)."""
    top = float(x.detach().abs().amax()) if x.numel() else 0.0
    return top * float(torch.linalg.vector_norm(x.detach() / top)) if top > 0 else 0.0


def power_of_two_scale(x: torch.Tensor) -> float:
    """A power of two near max |x| (1 for a zero matrix): dividing by it is exact and keeps squares in range."""
    top = float(x.detach().abs().amax()) if x.numel() else 0.0
    return 2.0 ** math.frexp(top)[1] if top > 0 else 1.0


@dataclass(frozen=True)
class Decomposition:
    """``x = U diag(S) Vh`` (thin) of a matrix x that may require grad; U, S, Vh are detached."""

    x: torch.Tensor
    U: torch.Tensor
    S: torch.Tensor
    Vh: torch.Tensor
    floor: float

    @property
    def rank(self) -> int:
        """Number of singular values above the numerical floor."""
        return int((self.S > self.floor).sum())


def decompose(features: torch.Tensor, *, center: bool = True, dtype: torch.dtype = torch.float32) -> Decomposition:
    """Cast (differentiably) to ``dtype`` (float64 stays float64), centre the columns if asked, and SVD."""
    work = torch.float64 if features.dtype == torch.float64 else dtype
    f = features.to(work)
    x = f - f.mean(0, keepdim=True) if center else f
    with torch.no_grad():
        U, S, Vh = torch.linalg.svd(x.detach(), full_matrices=False)
        m, n = x.shape
        floor = numerical_floor(float(S[0]), frobenius(f), m, n, work)
    return Decomposition(x=x, U=U, S=S, Vh=Vh, floor=floor)


class _SingularValues(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, U: torch.Tensor, S: torch.Tensor, Vh: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(U, Vh)
        return S.clone()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        U, Vh = ctx.saved_tensors
        return (U * g) @ Vh, None, None, None


class _TopRightSubspace(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, U: torch.Tensor, S: torch.Tensor, Vh: torch.Tensor, k: int) -> torch.Tensor:
        ctx.save_for_backward(x, U, S, Vh)
        ctx.k = k
        return Vh[:k].T.clone()

    @staticmethod
    def backward(ctx: Any, W: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        # L depends on V1 only through V1 V1^T: dL/dG = A V1^T with
        # A = V2 C + (I - V V^T) W diag(1 / lambda1), C_ji = v_j^T W_i / (lambda_i - lambda_j), G = X^T X,
        # and dL/dX = X (dL/dG + dL/dG^T) = X A V1^T + U1 diag(S1) A^T. Inside-subspace terms cancel.
        x, U, S, Vh = ctx.saved_tensors
        k = ctx.k
        top = S[0].clamp_min(torch.finfo(S.dtype).tiny)
        V = Vh.T
        lam = (S / top) ** 2  # in units of lambda_1, so that nothing over- or underflows
        V1, V2, lam1, lam2 = V[:, :k], V[:, k:], lam[:k], lam[k:]
        gap = lam1[None, :] - lam2[:, None]
        C = (V2.T @ W) * (gap / (gap * gap + GAP_EPS**2))
        outside = W - V @ (V.T @ W)
        A = V2 @ C + outside * (lam1 / (lam1 * lam1 + GAP_EPS**2))[None, :]
        grad = (x / top) @ A @ V1.T + (U[:, :k] * (S[:k] / top)) @ A.T
        return grad / top, None, None, None, None


def singular_values(d: Decomposition) -> torch.Tensor:
    """The singular values of ``d.x`` (descending), differentiable w.r.t. ``d.x`` with ``U diag(g) V^T``."""
    return _SingularValues.apply(d.x, d.U, d.S, d.Vh)


def top_right_subspace(d: Decomposition, k: int) -> torch.Tensor:
    """An orthonormal basis V_k (n x k) of the top-k right singular subspace of ``d.x``.

    Only for losses that depend on span(V_k), not on the basis chosen (e.g. through V_k V_k^T): the
    backward drops the within-subspace rotations and regularises the spectral gaps (module docstring).
    """
    if not 0 <= k <= d.S.numel():
        raise ValueError(f"k must be in [0, {d.S.numel()}], got {k}")
    return _TopRightSubspace.apply(d.x, d.U, d.S, d.Vh, k)
