"""MMANet's classification student on CASIA-SURF (the authors' ``SURF_MMANet``): SF-MD plus an auxiliary trunk.

The student is SF-MD (three ``special_bone_*`` branches, per-sample modality dropout over the 7 non-empty subsets,
feature zeroing, concatenation, ``shared_bone``) with ``auxi_bone``: a second layer3_new / layer4 / pool / fc trunk
on the same masked, fused feature map. Its logits are ``HostOutput.extras["auxiliary"]``; MMANet's trainer
(``reproduce.methods.mmanet``) trains them with MMANet's auxiliary term (option ``aux_loss``: the authors'
released computation, ``n_weak * mean CE`` over every sample, or the MMANet paper's Eq. 14, the weak-combination
samples only) and distils the frozen full-modality teacher into ``extras["layer4"]``.

The authors' forward evaluates ``auxi_bone`` three times on the same input (``x_rgb_out``, ``x_rgb_depth``,
``x_depth_out`` are identical tensors), one copy per weak combination; evaluating it once gives the same outputs,
so either auxiliary term has the same value and gradients. The only difference: the three passes update the
trunk's BatchNorm running statistics three times, which nothing reads (the trunk runs in training only).
State-dict keys equal the authors' (``auxi_bone.*``).
"""

from __future__ import annotations

from typing import Any

import torch

from .registry import register_model
from .resnet18_se import shared_bone
from .sf import BRANCH_CHANNELS, SFConfig, SFHost

__all__ = ["MMANetStudent", "mmanet"]


class MMANetStudent(SFHost):
    """SF-MD + MMANet's auxiliary trunk (``auxi_bone``); 24.33 M parameters with the default options."""

    def __init__(self, config: SFConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.auxi_bone = shared_bone(BRANCH_CHANNELS * len(self.modalities), self.config.num_classes)

    def extra_outputs(self, fused: torch.Tensor, layer4: torch.Tensor) -> dict[str, torch.Tensor]:
        """``layer4`` (distilled) and ``auxiliary``: the auxiliary trunk's logits on the masked fused features.

        The auxiliary trunk only serves training; at evaluation it is skipped (the prediction is ``logits``).
        """
        extras = {"layer4": layer4}
        if self.training:
            extras["auxiliary"] = self.auxi_bone(fused)
        return extras


@register_model("mmanet", parameters=24_330_000, reference="authors' SURF_MMANet (MMANet code): 24.33 M")
def mmanet(**cfg: Any) -> MMANetStudent:
    """MMANet's student: SF-MD with the auxiliary trunk (train it with ``trainer: mmanet``)."""
    if "modality_dropout" in cfg:
        raise ValueError("'mmanet' always trains with modality dropout (its student is SF-MD)")
    return MMANetStudent(SFConfig(modality_dropout=True), **cfg)
