"""MSLR, modality-specific learning rates (Yao & Mihalcea, "Modality-specific Learning Rates for Effective
Multimodal Additive Late-fusion", Findings of ACL 2022), as a training plug-in (``plugins: [{name: mslr}]``) for
the balancing comparison of the paper's Tables 13 / 14. The paper has no public code; this follows the one public
implementation the comparison can have used, the AGM repository's re-implementation (lihong2303/AGM_ICCV2023
``run/CREMAD_main.py`` l.194-209 and l.671-684, on its sum-fusion ``AVClassifier_Sum``): the per-modality
learning rate is a multiplier of the modality's gradients, applied after backward.

**Hooks.** ``setup``: each modality's parameters -- every trainable parameter of its branch (``host.branches()``,
the AGM repository's ``audio_net`` / ``visual_net``) and, where the host has a head of its own per modality
(``host.heads[m]``: resnet18_concat with ``fusion="sum"``; the repository's ``audio_cls`` / ``visual_cls``), that
head; a shared head (resnet18_concat's concat head) belongs to no modality and is not scaled. ``loss``: on the
first step only, a clear error for a host without per-modality classification predictions. ``before_optimizer_step``
(steps of epochs ``start_epoch``..``end_epoch``): the modality's gradients times ``coefficient_m = base_m x
ratio_m``. ``on_epoch_end``, after the epoch's training: each modality's own validation accuracy
(``modality_signals.unimodal_validation`` on ``split``) enters a FIFO memory of ``memory`` (5) epochs; once it is
full, ``ratio_m = acc_m(now) / mean(the memory's 5 previous accuracies)`` -- it replaces the previous ratio, it does
not accumulate -- and then the oldest accuracy leaves the memory (l.672-682). The ratio starts at 1, so the first
change applies from the seventh epoch's steps (after the sixth epoch's validation). State: the memories and ratios
(exact resume).

**Choices left open** (default; reason):

- ``base``: 1.0 for every modality (the AGM repository's 0.9 audio / 1.1 visual are keyed by its modalities; name
  a run's own, e.g. ``{rgb: 0.9, depth: 1.1}``). Which of a new pair is "audio" is not given by the method.
- ``start_epoch`` 0, ``end_epoch`` None (the whole run): the repository's default window is epochs 0-20 of its
  AGM settings (``utils/config.py``), but its author gives the run's whole length (1500) for CREMA-D
  (lihongcs/AGM issues #3, #5).
- the accuracy is read on the validation split (the repository reads its test loader, which a comparison on a
  test set must not); percent or fraction does not matter (a ratio).
- a memory whose mean accuracy is 0 leaves the ratio at 1 (undefined there; the repository would divide by zero).
- a multiplier of the gradient equals a learning-rate factor under plain SGD except for weight decay and momentum,
  which act on the unscaled term, as in the repository.

Values: ``mslr/coefficient/<m>`` and ``mslr/ratio/<m>`` on the logged steps; the epoch's accuracies, ratios and
coefficients in its history entry (``mslr``). Options in ``options.py`` (torch-free), hooks in ``plugin.py`` (which
also holds what MSES shares: a modality's parameters and modules).
"""

from reproduce.methods.mslr.options import MSLROptions
from reproduce.methods.mslr.plugin import MSLRPlugin

__all__ = ["MSLROptions", "MSLRPlugin"]
