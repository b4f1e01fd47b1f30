"""Training-time modality dropout over a table of subsets: SF-MD / MMANet (7 subsets), RFNet / mmFormer (15).

A host mixes in :class:`SubsetDropout` before :class:`models.host.Host`, registers its table of subsets (the
authors' order: the index is what their ``randint`` / ``np.random.choice`` draws) with ``register_subsets`` and has
a ``config.modality_dropout`` flag; its forward pass calls ``self.training_dropout(mask)`` in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class SubsetDropout:
    """``draw_subsets`` / ``training_dropout`` for a host whose ``subsets`` buffer is a (S, M) bool table."""

    subsets: torch.Tensor

    def register_subsets(self, table: Sequence[Sequence[bool]]) -> None:
        """Keep ``table`` as the non-persistent ``subsets`` buffer (it moves with the host, is not in its state)."""
        self.register_buffer("subsets", torch.tensor(table, dtype=torch.bool), persistent=False)  # type: ignore[attr-defined]

    def draw_subsets(self, batch: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch, M) bool: one subset of the table per sample, uniform, drawn on ``device`` (on the CPU from
        ``generator`` when one is given, then moved to ``device``)."""
        if generator is not None:
            index = torch.randint(0, len(self.subsets), (batch,), generator=generator).to(device)
        else:
            index = torch.randint(0, len(self.subsets), (batch,), device=device)
        return self.subsets.to(device)[index]

    def training_dropout(self, present: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``present`` and one subset drawn per sample; ``present`` itself without ``config.modality_dropout``."""
        if not self.config.modality_dropout:  # type: ignore[attr-defined]
            return present
        return present & self.draw_subsets(present.shape[0], present.device, generator)
