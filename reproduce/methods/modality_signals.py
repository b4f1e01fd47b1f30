"""What the balancing plug-ins (OGM-GE, AGM, LFM, MSLR, MSES, CRMT) read of each modality, shared by them: the
host's per-modality predictions, the parameters of a modality's branch under a selection rule, and each
modality's own validation accuracy and loss.

Every function takes the :class:`~reproduce.methods.context.TrainContext` (or the host) and needs a host with
per-modality predictions (``Task.modality_logits``). ``correct_class_probability`` and ``unimodal_validation``
are classification readings: logits (B, C) against class labels (``Task.target``). ``correct_class_score`` is the
task's own reading (``Task.correct_class_score``: the mean over a sample's labelled positions, so dense predictions
-- segmentation's voxels / pixels, void excluded, labels resized -- are scored with the task's label conventions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: the plug-in catalog imports this module without it
    import torch
    from torch import nn

    from reproduce.methods.context import TrainContext

#: Which parameters of a modality's branch a gradient rule edits: ``conv`` (conv weights, 4-D / 5-D: OGM-GE's
#: official rule), ``matrix`` (every parameter with more than one dimension: BalanceBenchmark's), ``all``.
PARAMETER_RULES = ("conv", "matrix", "all")


def unimodal_logits(ctx: TrainContext, output: Any, who: str) -> dict[str, torch.Tensor]:
    """The per-modality predictions of ``output`` for every modality of the run, in the run's order; a clear
    error naming ``who`` (the plug-in) when the host has none."""
    logits = ctx.task.modality_logits(output)
    modalities = tuple(ctx.task.modalities)
    missing = [m for m in modalities if m not in logits]
    if missing:
        raise ValueError(
            f"{who} scores each modality by its own prediction, but the host {type(ctx.host).__name__} gives none "
            f"for {missing} (HostOutput.modality_logits or per-modality auxiliary heads): use a host that has "
            "them, e.g. resnet18_concat (the concat head's slices) or a host with auxiliary heads"
        )
    return {m: logits[m] for m in modalities}


def classification_logits(logits: torch.Tensor, who: str) -> torch.Tensor:
    """``logits`` when they are (B, C) classification logits; a clear error otherwise."""
    if logits.dim() != 2:
        raise ValueError(
            f"{who} scores classification predictions (B, C); this host's per-modality predictions have shape "
            f"{tuple(logits.shape)}"
        )
    return logits


def correct_class_probability(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """softmax(logits)[target] per sample (B,), in float32 (OGM-GE's score terms)."""
    import torch

    probs = torch.softmax(logits.float(), dim=1)
    return probs.gather(1, target.long().unsqueeze(1)).squeeze(1)


def correct_class_score(
    ctx: TrainContext,
    logits: torch.Tensor,
    batch: Mapping[str, Any],
    who: str,
    *,
    cosine: bool = False,
    correct_only: bool = False,
) -> torch.Tensor:
    """Per sample (B,), float32: the mean over its labelled positions of softmax(logits)[true class] (``cosine``:
    softmax(cos(logits)); ``correct_only``: only where argmax(logits) is the true class), read by the run's task
    (``Task.correct_class_score``). A task object without that accessor (a plain loop's) gets the classification
    reading: (B, C) logits against ``task.target(batch)``, a clear error naming ``who`` otherwise."""
    task = ctx.task
    if hasattr(task, "correct_class_score"):
        return task.correct_class_score(logits, batch, cosine=cosine, correct_only=correct_only)
    from reproduce.tasks.base import correct_class_scores

    logits = classification_logits(logits, who)
    target = task.target(batch, logits.device)
    return correct_class_scores(logits, target, cosine=cosine, correct_only=correct_only)


def branch_parameters(host: nn.Module, modality: str, rule: str = "all") -> list[tuple[str, nn.Parameter]]:
    """The trainable parameters of ``host.branches()[modality]`` that ``rule`` selects (``PARAMETER_RULES``),
    with their names in the branch."""
    if rule not in PARAMETER_RULES:
        raise ValueError(f"parameter rule must be one of {PARAMETER_RULES}, got {rule!r}")
    branches = host.branches()
    if modality not in branches:
        raise ValueError(f"the host {type(host).__name__} has no branch {modality!r}; it has {sorted(branches)}")
    out = []
    for name, p in branches[modality].named_parameters():
        if not p.requires_grad:
            continue
        if rule == "conv" and p.dim() not in (4, 5):
            continue
        if rule == "matrix" and p.dim() <= 1:
            continue
        out.append((name, p))
    return out


def unimodal_validation(ctx: TrainContext, split: str = "val", who: str = "plug-in") -> dict[str, dict[str, float]]:
    """Each modality's own prediction on ``split`` (complete inputs, the host in eval mode, its mode restored):
    ``{modality: {"acc": percent, "loss": mean task loss per sample}}``, merged over the processes."""
    import torch

    host, task, device = ctx.host, ctx.task, ctx.device
    was_training = host.training
    host.eval()
    sums: dict[str, list[float]] = {m: [0.0, 0.0, 0.0, 0.0] for m in task.modalities}  # correct, n, loss sum, n
    try:
        with torch.no_grad():
            for batch in ctx.loader(split):
                inputs = task.inputs(batch, device)
                output = host(inputs, None)
                target = task.target(batch, device)
                for m, logits in unimodal_logits(ctx, output, who).items():
                    logits = classification_logits(logits, who)
                    s = sums[m]
                    s[0] += float((logits.argmax(1) == target).sum())
                    s[1] += float(target.numel())
                    s[2] += float(task.per_sample_loss(logits.float(), batch).sum())
                    s[3] += float(logits.shape[0])
    finally:
        host.train(was_training)
    merged = _merge(ctx, sums)
    return {m: {"acc": 100.0 * c / max(n, 1.0), "loss": loss / max(k, 1.0)} for m, (c, n, loss, k) in merged.items()}


def _merge(ctx: TrainContext, sums: Mapping[str, list[float]]) -> dict[str, list[float]]:
    gathered = ctx.distributed.gather(dict(sums))
    return {m: [sum(part[m][i] for part in gathered) for i in range(4)] for m in sums}
