"""``SDE``: enhancement, dual-domain loss and diagnostics for a dict of per-modality embeddings."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .config import SDEConfig
from .diagnostics import energy_fractions
from .enhancement import spectral_enhance
from .losses import DualDomainLoss
from .spectrum import SUBSPACES
from .validation import check_matrix, check_progress

PARTS: tuple[str, ...] = ("info_nce", "hellinger", "subspace")


def _rows(
    embeddings: Mapping[str, torch.Tensor], present: torch.Tensor | None, modalities: Sequence[str] | None
) -> dict[str, torch.Tensor | None]:
    """Per modality, the indices of its present samples (None = all), after checking shapes."""
    if not embeddings:
        raise ValueError("embeddings must map at least one modality name to a (B, n) tensor")
    sizes = {name: check_matrix(x, f"embeddings[{name!r}]").shape[0] for name, x in embeddings.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"every modality must have the same batch size B, got {sizes}")
    if present is None:
        return dict.fromkeys(embeddings)
    batch = next(iter(sizes.values()))
    modalities = list(modalities) if modalities is not None else list(embeddings)
    if not isinstance(present, torch.Tensor) or present.dtype != torch.bool:
        raise ValueError(
            "present must be a boolean tensor (B, M): present[b, i] is True if modality i of sample b exists"
        )
    if present.shape != (batch, len(modalities)):
        raise ValueError(f"present must have shape (B, M) = {(batch, len(modalities))}, got {tuple(present.shape)}")
    missing = [name for name in modalities if name not in embeddings]
    if missing:
        raise ValueError(f"modalities {missing} have no embeddings (got {list(embeddings)})")
    index = {name: i for i, name in enumerate(modalities)}
    return {name: present[:, index[name]].nonzero().squeeze(1) if name in index else None for name in embeddings}


class SDE(nn.Module):
    """Spectral Disentanglement and Enhancement for multimodal embeddings (see ``docs/sde.md``).

    ``enhance``: per-modality feature change (training only; zeros in eval mode), ``loss``: the
    dual-domain loss over every pair of modalities on their jointly present samples, ``energy``: the
    strong / weak / noise energy fractions for logging. ``progress`` is always t in [0, 1].
    The random signs of the strong perturbation come from a CPU generator seeded with ``config.seed``;
    its state is in ``state_dict()`` (extra state), so resuming from it continues the same draws.
    """

    def __init__(self, config: SDEConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        config = config or SDEConfig()
        self.config = config.replace(**overrides) if overrides else config
        self.dual = DualDomainLoss(self.config)
        self.generator = torch.Generator().manual_seed(self.config.seed)

    def get_extra_state(self) -> dict[str, Any]:
        """``state_dict`` carries the generator of the random strong signs, so a resumed run draws the same."""
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def enhance(
        self,
        embeddings: Mapping[str, torch.Tensor],
        progress: float,
        *,
        present: torch.Tensor | None = None,
        modalities: Sequence[str] | None = None,
        grads: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{modality: delta (B, n)}`` to add to the embeddings (or to the map they were pooled from).

        Each modality is split and enhanced on its present samples (all without ``present``); absent
        samples get a zero change. ``grads`` (dLoss/dembedding per modality) is needed only for
        ``strong_sign="adversarial"``. The deltas carry no gradient. In eval mode every delta is zero.
        """
        t = check_progress(progress)
        rows = _rows(embeddings, present, modalities)
        deltas: dict[str, torch.Tensor] = {}
        for name, x in embeddings.items():
            delta = torch.zeros_like(x, requires_grad=False)
            index = rows[name]
            if self.training and (index is None or index.numel() > 0):
                grad = None if grads is None else grads[name]
                if index is None:
                    delta = spectral_enhance(
                        x, t, config=self.config, generator=self.generator, grad=grad
                    ).delta_features
                else:
                    grad = None if grad is None else grad[index]
                    enhanced = spectral_enhance(x[index], t, config=self.config, generator=self.generator, grad=grad)
                    delta = delta.index_copy(0, index, enhanced.delta_features)
            deltas[name] = delta
        return deltas

    def loss(
        self,
        embeddings: Mapping[str, torch.Tensor],
        present: torch.Tensor,
        modalities: Sequence[str],
        progress: float,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean of the dual-domain loss over the modality pairs, each on the samples where both are present.

        A pair with fewer than ``min_pair_samples`` (2) such samples is skipped; with no pair left the
        total is a zero that still back-propagates (zero gradients). ``parts`` always has the same keys
        (so that steps can be averaged): ``sde/{info_nce, hellinger, subspace}`` averaged over the pairs
        used (0 with none), ``sde/lambda``, ``sde/pairs`` (number used) and ``sde/total``; all detached.
        """
        t = check_progress(progress)
        modalities = list(modalities)
        if present is None:
            raise ValueError("present (B, M) is required; use torch.ones(B, M, dtype=torch.bool) if all exist")
        rows = _rows({name: embeddings[name] for name in modalities if name in embeddings}, present, modalities)
        totals: list[torch.Tensor] = []
        parts: dict[str, torch.Tensor] = {}
        sums = dict.fromkeys(PARTS, 0.0)
        for first, second in itertools.combinations(modalities, 2):
            both = present[:, modalities.index(first)] & present[:, modalities.index(second)]
            index = both.nonzero().squeeze(1)
            if index.numel() < self.config.min_pair_samples:
                continue
            total, pair = self.dual(embeddings[first][index], embeddings[second][index], t)
            totals.append(total)
            for name in PARTS:
                sums[name] = sums[name] + pair[name]
        if totals:
            total = torch.stack(totals).mean()
        else:
            total = torch.stack([embeddings[name].float().sum() for name in rows]).sum() * 0.0
        count = max(len(totals), 1)
        device = total.device
        for name in PARTS:
            parts[f"sde/{name}"] = torch.as_tensor(sums[name] / count, dtype=torch.float32, device=device)
        parts["sde/lambda"] = torch.tensor(self.config.curriculum(t).lam, device=device)
        parts["sde/pairs"] = torch.tensor(len(totals), device=device)
        parts["sde/total"] = total.detach()
        return total, parts

    def energy(
        self,
        embeddings: Mapping[str, torch.Tensor],
        *,
        present: torch.Tensor | None = None,
        modalities: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """``{"sde/energy/{m}/{strong,weak,noise}": fraction, "sde/dims/{m}/...": fraction}`` per modality."""
        rows = _rows(embeddings, present, modalities)
        values: dict[str, float] = {}
        for name, x in embeddings.items():
            index = rows[name]
            if index is not None and index.numel() == 0:
                fractions = {s: float(s == "noise") for s in SUBSPACES}
                fractions.update({f"{s}_dims": float(s == "noise") for s in SUBSPACES})
            else:
                fractions = energy_fractions(x if index is None else x[index], **self.config.split_kwargs())
            for s in SUBSPACES:
                values[f"sde/energy/{name}/{s}"] = fractions[s]
                values[f"sde/dims/{name}/{s}"] = fractions[f"{s}_dims"]
        return values
