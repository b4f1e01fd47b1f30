"""CRMT-JT, Certifiable Robust Multi-modal Training with joint training (Yang, Wei, Liang and Hu, "Quantifying and
Enhancing Multi-modal Robustness with Modality Preference", ICLR 2024; the official code
GeWu-Lab/Certifiable-Robust-Multi-modal-Training, commit 5c17d92: ``train.py``, ``models/fusion_model.py``,
``cfgs/methods/CRMT_JT.yaml``, ``cfgs/train.yaml``): Table 17's CRMT-JT column
(``plugins: [{name: crmt}]`` on the host ``resnet18_crmt``, whose head is CRMT's orthogonal, per-class-scaled
classifier ``out = sum_m a^(m) * (W~^(m) phi_m) + b``; ``models/resnet18_crmt.py``).

Hooks, by training step (step 1: the run's first ``train.epochs - scale_epochs`` epochs; step 2: the last
``scale_epochs``):

* ``setup``: refuses a host other than ``resnet18_crmt`` (the scales are its parameters), one modality or one class.
* ``loss``, step 1: the task's loss (the fused CE) plus ``rho x mean_i log(sum_m [sum_k e^{z^m_k} e^{-z^m_y} - 1]
  + 1e-5)`` over the unimodal logits ``z^m = W~^(m) phi_m`` (``train.py`` l.67-77; ``maths.margin_regulariser``),
  rho = 2.0 (``CRMT_JT.yaml`` at HEAD; 1.0 in the initial commit). Every parameter trains, scales included, with
  the run's optimiser (official: one SGD over ``model.parameters()``).
* ``on_epoch_end`` of the last step-1 epoch: the Lipschitz estimate (``train.py`` ``get_lip`` l.105-126;
  ``maths.lipschitz_constants``): over the training split (``ctx.loader("train")``: every sample, in order, without
  augmentation -- the official loop reads its augmented, shuffled training loader; a maximum does not depend on the
  order), the host in eval mode, per modality m and class k the maximum per-sample norm of the gradient of the
  fused logit ``out_k`` with respect to ``x_m``; merged over processes by the maximum. Then step 2.
* ``loss``, step 2: replaced by minus the batch mean of the certified bound against the runner-up class
  ``j = argmax_{k != y} out_k`` (``train.py`` l.275-290; ``maths.scale_objective``):
  ``[sum_m (a^m_y z^m_y - a^m_j z^m_j) + b_y - b_j] / sqrt(sum_m (a^m_y L^m_y + a^m_j L^m_j)^2)``, the unimodal
  logits and the bias detached, so only the scales get gradients. Under DDP ``0 x sum(logits)`` is added so that
  every parameter takes part in the all-reduce (the official code runs DataParallel).
* ``before_optimizer_step``, step 2: the plug-in's own SGD on the scales (lr = 0.03 x ``optim.lr``, momentum 0.9,
  weight decay 1e-2: l.267-268) steps, then every parameter's ``.grad`` is set to None, so that the run's optimiser
  (torch's SGD / Adam skip a parameter without gradient) changes nothing else -- no weight decay, no momentum.
* ``on_log``: ``crmt/step``, ``crmt/margin`` (step 1) or ``crmt/bound`` (step 2), ``crmt/scale_mean/<m>``; the
  history entry of each epoch gets ``crmt: {step, scale_mean, lipschitz (at the switch)}``.
* State (exact resume): the step, the Lipschitz constants, step 2's optimiser state and the epoch it was built in.

Choices the paper and the code leave open, or where this port departs from the code:

* **Epochs.** The official loop trains ``n_epochs`` step-1 epochs (140 in ``cfgs/train.yaml`` at HEAD, 100 in the
  initial commit) then ``for epoch in range(1, n_epochs // 3)``, i.e. ``n_epochs // 3 - 1`` step-2 epochs. Here step 2
  is the run's last ``scale_epochs`` epochs, default ``train.epochs // 4`` (at least 1 in a run of 2 or more epochs):
  a run of ``n + n // 3`` epochs has n step-1 and about n // 3 step-2 epochs (Table 17: ``train.epochs = 133``,
  ``scale_epochs = 33``, i.e. the official n = 100 with n // 3 step-2 epochs, one more than the official loop's 32).
  The run's schedule (e.g. its StepLR) counts every epoch; it does not matter in step 2, where the run's optimiser
  updates nothing.
* **Step-2 optimiser.** Rebuilt at the start of every step-2 epoch (``reset_scale_optimizer``, default true: the
  official ``the_second_step`` builds it per epoch, so its momentum restarts), learning rate from the run's base
  ``optim.lr`` (the official ``opt.lr``), not the decayed one.
* **BatchNorm in step 2**: train mode, as the official ``the_second_step`` (``model.train()``, l.266): batch
  statistics in the forward pass, and the running statistics keep adapting though no parameter changes.
* **The Lipschitz bug** (``lipschitz``): the official ``get_lip`` zeroes only ``audio.grad`` (its second modality),
  and right after reading the first modality's gradient: the first modality's input gradients accumulate over the
  classes of a batch, and the second's is read as zeros, so its constants are all 0. Default ``fixed`` (every
  class's gradient on its own, ``torch.autograd.grad``); ``official_bug`` reproduces it exactly (for M > 2 every
  modality but the second accumulates).
* **What is differentiated** (``lipschitz_of``): the official code differentiates the fused logit ``out_k``, whose
  gradient carries the scale ``a^m_k`` of the switch, and step 2 multiplies by ``a^m_k`` again; ``unimodal``
  differentiates ``z^m_k`` (the paper's tau, the bound's own constants). Default ``fused`` (the official code).
* **Numerics.** The regulariser's ``sum_k e^{z_k} e^{-z_y} - 1`` is computed as ``sum_{k != y} e^{z_k - z_y}``
  (equal in exact arithmetic, no overflow); the bound's denominator is floored at 1e-12 (only all-zero constants
  reach it); step 2 skips the scales' step when their gradient is not finite (fp16 overflow).
* **More than two modalities**: the sums over m run over every modality (the official code has two).
* **BalanceBenchmark** has no CRMT, so there is no variant; ``certified_radius`` (``maths``) is the paper's bound
  (the minimum over every class k != y, not only the runner-up) for evaluation.

Options in ``options.py`` (torch-free), the hooks in ``plugin.py``, the formulas in ``maths.py``.
"""

from reproduce.methods.crmt.options import CRMTOptions
from reproduce.methods.crmt.plugin import CRMTPlugin

__all__ = ["CRMTOptions", "CRMTPlugin"]
