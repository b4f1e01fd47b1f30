"""MMANet's training method (Wei et al., CVPR 2023): ``method: {name: mmanet}``.

What the authors' ``train_knowledge_distill_patch_feature_auxi_weak`` does on CASIA-SURF, as hooks of a training
plug-in (the loss and the end of each epoch):

1. **Teacher.** A full-modality model (``teacher_host``, SF by default) is a dependency: an ordinary run of the
   registry (the student's data, the teacher host and seed, no MMANet, MWAM or SDE, plus ``teacher_run``
   overrides; one teacher seed for every student seed, as the authors), trained first by the planner, then loaded
   from its ``model.pt``, frozen and kept in eval mode. A student whose schedule names a preset
   (``schedule.preset``) gets a teacher with that preset's schedule *for the teacher's host* (CASIA-SURF: SF's,
   not MMANet's); an explicit student schedule is the teacher's too.
2. **Weak-combination search.** At the end of each epoch in ``search_epochs`` the student predicts the validation
   split with each candidate combination -- every pair of modalities and the full set (RD, RI, DI, RDI on
   CASIA-SURF) -- and the histogram of its predicted labels is compared with the full set's:
   ``KL(softmax(h_pair) || softmax(h_full))`` (the authors soften the normalised histograms once more with a
   softmax; kept), summed over the search epochs. At the end of epoch ``begin_epoch`` the pair with the largest
   summed divergence is the weak combination; the weak set is that pair and its two single modalities. Under DDP
   the histograms are merged over the processes, so every process picks the same weak combination.
3. **Loss.** Up to ``begin_epoch`` the task loss alone; from epoch ``begin_epoch + 1`` on
   ``L = CE + lambda_auxiliary * L_aux + lambda_distill * MAD(layer4_s, layer4_t, teacher logits)`` -- the
   auxiliary classifier learns the weak combinations, MAD distils the teacher's batch relations weighted by its
   uncertainty. CASIA-SURF weights: (30, 0.5) (paper, Sec. A.3). ``L_aux`` (:func:`auxiliary_loss`, option
   ``aux_loss``): ``intended`` -- ``sum_i CE_aux,i [subset_i in weak set] / B``, the formula of the MMANet paper;
   ``released`` (default) -- what the authors' code computes, ``n_weak * mean_i CE_aux,i`` over *all* B samples
   (its weak-sample index has shape (B, 1, 1, 1) and broadcasts against the (B,) losses), about 50x the intended
   term at batch 64 with every sample receiving gradient. The default is ``released`` because the MWAM paper's
   MMANet numbers (with and without MWAM) were produced by that code.

MWAM, SDE and listed plug-ins combine with it as with any method (``mwam: grad`` edits the branch gradients; MMANet
has no per-modality heads). The authors' loops skip every batch of epoch 0; that is part of the ``released``
schedule preset (``schedule.skip_epochs``). Files: ``options.py`` (torch-free: the options and the teacher run,
read by the planner), ``teacher.py`` (loading a frozen teacher, shared with MMANet-seg), ``distillation.py`` (MAD),
``plugin.py`` (the hooks, the auxiliary term, the search's divergence). This package imports no torch (the hooks
do).
"""

from reproduce.methods.mmanet.options import (
    AUX_LOSSES,
    RESERVED_TEACHER_SECTIONS,
    MMANetOptions,
    candidate_subsets,
    teacher_dependency,
)
from reproduce.methods.mmanet.plugin import MMANet, auxiliary_loss, histogram_divergence
from reproduce.methods.mmanet.teacher import load_teacher

__all__ = [
    "AUX_LOSSES",
    "RESERVED_TEACHER_SECTIONS",
    "MMANet",
    "MMANetOptions",
    "auxiliary_loss",
    "candidate_subsets",
    "histogram_divergence",
    "load_teacher",
    "teacher_dependency",
]
