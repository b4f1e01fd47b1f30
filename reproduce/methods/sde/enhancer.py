"""SDE as a variant of any host (``sde: {enabled: true}``): forward hooks that enhance each branch's embedding.

The host only has to name its per-modality branches (``Host.feature_branches()``: by default ``branches()``, the
same contract MWAM uses; mmFormer names its CNN encoders, since its MWAM branches are never called whole). A forward
hook on each branch reads the branch's output (B, C, *spatial) or (B, C) and its per-sample embedding, the
spatial mean (B, C), and during training (a branch returning a tuple or list of feature maps, as RFNet's multi-level
encoders do, is enhanced at its last, deepest map -- the embedding of the modality; the other levels pass as they
are)

1. **enhances** it: ``SDE.enhance`` returns the change ``F' - F`` of the batch's embedding matrix (Sec. "Spectral
   Enhancement", F' = U(Sigma + Delta)V^T); the hook adds that change to every pixel of the branch output, so that
   the spatial mean of the new output is exactly F' and everything downstream (masking, fusion, heads) sees the
   enhanced features;
2. **keeps** the enhanced embeddings of the step, from which the SDE plug-in computes the dual-domain loss
   (``SDE.loss``) on every pair of modalities present in a sample (``HostOutput.present``, the mask the host
   applied; all present when the host returns none) and adds it to the task's loss. A host that returns its own
   per-modality embeddings (``HostOutput.features``, (B, C) each) has the loss computed on those instead: the host
   chooses where its embedding is (SF's pooled branch outputs are exactly the hooks' enhanced embeddings).

In evaluation the hooks pass the outputs through untouched. Training progress t = (completed epochs + fraction
of this epoch) / epochs drives the curriculum alpha(t) and lambda(t).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sde import SDE, SDEConfig


class BranchEnhancer:
    """Forward hooks that enhance each branch's embedding and record it (see the module docstring)."""

    def __init__(self, branches: dict[str, nn.Module], options: dict[str, Any], seed: int = 0) -> None:
        # The strong directions' random signs come from SDE's own generator, seeded by the run's seed unless the
        # options name one; its state is part of the checkpoint (the plug-in's process state), so resume is exact.
        self.sde = SDE(SDEConfig(**{"seed": seed, **options}))
        self.modalities = tuple(branches)
        self.progress = 0.0
        self.embeddings: dict[str, torch.Tensor] = {}
        self._handles = [module.register_forward_hook(self._hook(m)) for m, module in branches.items()]

    def _hook(self, modality: str):
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            if not module.training:
                return None
            levels = output if isinstance(output, tuple | list) and output else None
            feature = levels[-1] if levels is not None else output
            if not isinstance(feature, torch.Tensor) or feature.dim() < 2:
                raise ValueError(
                    f"SDE: branch {modality!r} must return a tensor (B, C, ...), or a tuple of them, to enhance; got "
                    f"{type(output).__name__} {tuple(getattr(feature, 'shape', ()))}"
                )
            spatial = tuple(range(2, feature.dim()))
            embedding = feature.mean(dim=spatial) if spatial else feature
            delta = self.sde.enhance({modality: embedding.detach()}, self.progress)[modality]
            delta = delta.to(feature.dtype)
            self.embeddings[modality] = embedding + delta
            enhanced = feature + delta.reshape(*delta.shape, *([1] * len(spatial)))
            if levels is None:
                return enhanced
            return type(levels)([*levels[:-1], enhanced])

        return hook

    def begin_step(self, progress: float) -> None:
        self.progress = float(min(max(progress, 0.0), 1.0))
        self.embeddings = {}

    def loss(self, output: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The dual-domain loss over every pair of modalities present in a sample, for this step's embeddings:
        ``output.features`` when the host returns them, else the branches' pooled outputs recorded by the hooks."""
        features = getattr(output, "features", None)
        if features:
            self.embeddings = {m: features[m] for m in self.modalities}
        missing = [m for m in self.modalities if m not in self.embeddings]
        if missing:
            raise RuntimeError(f"SDE: no embedding recorded for {missing} in this step (did the branches run?)")
        first = self.embeddings[self.modalities[0]]
        present = getattr(output, "present", None)
        if present is None:
            present = torch.ones(first.shape[0], len(self.modalities), dtype=torch.bool, device=first.device)
        return self.sde.loss(self.embeddings, present.to(first.device), self.modalities, self.progress)

    def energy(self) -> dict[str, float]:
        """Strong / weak / noise energy fractions of this step's embeddings, per modality (for logging)."""
        return self.sde.energy({m: e.detach() for m, e in self.embeddings.items()})

    def state_dict(self) -> dict[str, Any]:
        return self.sde.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sde.load_state_dict(state)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
