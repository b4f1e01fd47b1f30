"""MSES, modality-specific early stopping (Fujimori et al., "Modality-Specific Learning Rate Control for Multimodal
Classification", ACPR 2019), as a training plug-in (``plugins: [{name: mses}]``) for the balancing comparison of
the paper's Tables 13 / 14. Modality-specific classifiers beside the multimodal one detect each modality's
overfitting on validation data and stop that modality's learning separately. The paper has no public code; this
follows the one public implementation, the AGM repository's re-implementation (lihong2303/AGM_ICCV2023
``run/CREMAD_main.py`` l.211-226 and l.685-745, on its sum-fusion ``AVClassifier_Sum``).

**Hooks.** ``setup``: each modality's parameters and modules -- its branch (``host.branches()[m]``) and, where the
host has one, its own head (``host.heads[m]``, resnet18_concat with ``fusion="sum"``; a shared concat head belongs
to no modality and keeps training) -- and the patience. ``loss``: on the first step only, a clear error for a host
without per-modality classification predictions. ``on_epoch_end``, after the epoch's training: each running
modality's own validation loss (``modality_signals.unimodal_validation``, the mean per-sample task loss on
``split``) is smoothed as ``0.6 L_{t-1} + 0.4 L_t`` with the previous *raw* loss (the first epoch: its raw loss);
a new minimum of the smoothed loss records the epoch and a CPU copy of the state to restore; once ``epoch -
best_epoch > patience`` (the repository's test) the modality stops: its best state is restored and, from then on,
``before_optimizer_step`` zeroes its gradients (the repository's coefficient 0); once every modality is stopped,
``ctx.finish_training`` ends the run after this epoch (the repository calls ``exit()``) and it is evaluated as
usual. State: the previous raw losses, smoothed losses, minima, best epochs, stop epochs and the best-state copies
(exact resume, also of a run that finished early).

**Choices left open** (default; reason):

- ``patience``: None = ``round(patience_fraction x epochs)``, at least 1, with ``patience_fraction`` = 80/1500 --
  the repository's 80 epochs of its author's 1500-epoch CREMA-D runs (lihongcs/AGM #3, #5); 100 epochs give 5.
  ``patience: 80`` is the repository's value as given.
- ``restore: branch`` (default): the stopped modality's branch and own head (with their optimiser state) go back to
  its best epoch -- modality-specific early stopping as the paper describes it, each modality at its own best
  epoch; ``restore: model`` is the repository's reload of the whole model and optimiser from that epoch's
  checkpoint, which also rolls back every other modality and the shared parts to an epoch chosen for this one (the
  optimiser's learning rates are kept: the schedule goes on).
- ``freeze: zero`` (default, the repository's gradient x 0: weight decay and momentum still move the parameters, and
  BatchNorm statistics still update in training mode); ``freeze: skip`` drops the gradients (the optimiser skips
  the parameters).
- the first epoch's state is recorded as the first minimum (the repository saves a checkpoint only on a strict
  improvement and relies on its best-accuracy checkpoint of that epoch).
- a stopped modality's loss is no longer tracked (it never runs again); the validation split replaces the
  repository's test loader; its loss is the mean per sample (the repository's mean of batch means).

Values: ``mses/coefficient/<m>`` (1 running, 0 stopped) and ``mses/smoothed_loss/<m>`` on the logged steps; each
epoch's raw and smoothed losses, best epochs and stop epochs in its history entry (``mses``). Options in
``options.py`` (torch-free), hooks in ``plugin.py``.
"""

from reproduce.methods.mses.options import MSESOptions
from reproduce.methods.mses.plugin import MSESPlugin

__all__ = ["MSESOptions", "MSESPlugin"]
