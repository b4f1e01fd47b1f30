"""Dual-domain contrastive loss: InfoNCE in the instance space, Hellinger and subspace terms in the spectrum.

The text ("Dual-Domain Contrastive Learning"): instance-level InfoNCE; the singular-value vectors of the
paired modalities aligned with the Hellinger distance; the top-k right singular vectors V_{1:k} aligned by
"minimizing the deviation of their Gram matrices"; a dynamic weight lambda(t) shifting the emphasis from
the spectral terms to the instance term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import SDEConfig
from .svd import Decomposition, decompose, singular_values, top_right_subspace
from .validation import check_pair, check_positive, check_positive_int

HELLINGER_EPS = 1e-8
ROW_EPS = 1e-8


def _float(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()


def _smooth_sqrt(x: torch.Tensor, eps: float = HELLINGER_EPS) -> torch.Tensor:
    """``sqrt(x + eps) - sqrt(eps)``, written ``x / (sqrt(x + eps) + sqrt(eps))``: exactly 0 at 0, no
    cancellation, derivative at most ``1 / (2 sqrt(eps))`` (sqrt's own is infinite at 0)."""
    x = x.clamp_min(0)
    return x / (torch.sqrt(x + eps) + eps**0.5)


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit norm; rows of norm <= 1e-8 become 0 with zero gradient (F.normalize's is 1 / eps)."""
    norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    usable = norm > ROW_EPS
    return torch.where(usable, x / torch.where(usable, norm, torch.ones_like(norm)), torch.zeros_like(x))


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Symmetric InfoNCE of paired rows (m x n): cosine similarities / temperature, the i-th row of ``a``
    against all rows of ``b`` and vice versa, averaged. 0 for m = 1 (no negatives). A zero row (norm
    <= 1e-8) has similarity 0 to everything and receives no gradient. Computed in float32 (float64 stays
    float64) with autocast off.
    """
    check_pair(a, b)
    check_positive(temperature, "temperature")
    with torch.autocast(a.device.type, enabled=False):
        logits = _unit_rows(_float(a)) @ _unit_rows(_float(b)).T / temperature
        target = torch.arange(a.shape[0], device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _hellinger(sa: torch.Tensor, sb: torch.Tensor, squared: bool) -> torch.Tensor:
    tiny = torch.finfo(sa.dtype).tiny
    ta, tb = sa.sum(), sb.sum()
    valid = (ta > tiny) & (tb > tiny)
    pa = sa / torch.where(valid, ta, torch.ones_like(ta))
    pb = sb / torch.where(valid, tb, torch.ones_like(tb))
    h2 = (0.5 * (_smooth_sqrt(pa) - _smooth_sqrt(pb)).pow(2).sum()).clamp(0.0, 1.0)
    h2 = torch.where(valid, h2, torch.zeros_like(h2))
    return h2 if squared else _smooth_sqrt(h2)


def _subspace(da: Decomposition, db: Decomposition, k: int) -> torch.Tensor:
    k = min(k, da.rank, db.rank)
    if k == 0:
        return (da.x.sum() + db.x.sum()) * 0.0
    va, vb = top_right_subspace(da, k), top_right_subspace(db, k)
    return (1.0 - (va.T @ vb).pow(2).sum() / k).clamp(0.0, 1.0)


def spectral_hellinger(a: torch.Tensor, b: torch.Tensor, *, center: bool = True, squared: bool = False) -> torch.Tensor:
    """Hellinger distance between ``p = sigma(a) / sum sigma(a)`` and ``q`` likewise for b, in [0, 1].

    ``H^2 = 1/2 sum (sqrt p_i - sqrt q_i)^2`` on the min(m, n) singular values of the (centred) matrices,
    with every sqrt replaced by ``sqrt(x + 1e-8) - 1e-4`` so that gradients stay finite (|error| < 1e-4);
    exactly 0 for equal spectra. A zero spectrum (zero matrix, m = 1 centred) has no distribution: the
    distance is then defined as 0, with zero gradient. ``squared=True`` returns H^2.
    """
    check_pair(a, b)
    with torch.autocast(a.device.type, enabled=False):
        sa = singular_values(decompose(a, center=center))
        sb = singular_values(decompose(b, center=center))
        return _hellinger(sa, sb, squared)


def subspace_consistency(a: torch.Tensor, b: torch.Tensor, k: int = 8, *, center: bool = True) -> torch.Tensor:
    """``||P_a - P_b||_F^2 / (2k) = 1 - ||V_a^T V_b||_F^2 / k`` in [0, 1], P = V_{1:k} V_{1:k}^T.

    V_{1:k}: the top-k right singular vectors of the (centred) matrix; invariant to their signs and to
    rotations inside the subspace, 0 iff the subspaces coincide, 1 when orthogonal. k is clipped to the
    numerical rank of both matrices; 0 (with zero gradient) when either has rank 0.
    """
    check_pair(a, b)
    check_positive_int(k, "k")
    with torch.autocast(a.device.type, enabled=False):
        return _subspace(decompose(a, center=center), decompose(b, center=center), k)


class DualDomainLoss(nn.Module):
    """``total = w_instance InfoNCE + lambda(t) (w_hellinger H + w_subspace S_k)`` for paired a, b (m x n).

    lambda(t) falls from ``lambda_start`` to ``lambda_end`` (config), so the spectral terms dominate early
    and the instance term late. Returns ``(total, parts)``, parts holding the detached ``info_nce``,
    ``hellinger``, ``subspace``, ``lambda`` and ``total``. One SVD per matrix serves both spectral terms.
    """

    def __init__(self, config: SDEConfig | None = None) -> None:
        super().__init__()
        self.config = config or SDEConfig()

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, progress: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        check_pair(a, b)
        c = self.config
        lam = c.curriculum(progress).lam
        nce = info_nce(a, b, c.temperature)
        with torch.autocast(a.device.type, enabled=False):
            da = decompose(a, center=c.center, dtype=c.torch_compute_dtype)
            db = decompose(b, center=c.center, dtype=c.torch_compute_dtype)
            h = _hellinger(singular_values(da), singular_values(db), squared=False)
            s = _subspace(da, db, c.subspace_k)
        total = c.w_instance * nce + lam * (c.w_hellinger * h + c.w_subspace * s)
        parts = {
            "info_nce": nce.detach(),
            "hellinger": h.detach(),
            "subspace": s.detach(),
            "lambda": torch.tensor(lam, dtype=total.dtype, device=total.device),
            "total": total.detach(),
        }
        return total, parts
