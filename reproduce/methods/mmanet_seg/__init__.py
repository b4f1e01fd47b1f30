"""MMANet's segmentation training method (Wei et al., CVPR 2023) on NYU-Depth V2: ``method: {name: mmanet_seg}``.

What the authors' ``segmentation/train_missing_mmanet.py`` does, as hooks of a training plug-in (facts in
docs/training.md, "NYU-Depth V2"). It shares with the classification method (``mmanet.py``) the teacher
dependency and its loading, and nothing else: the search, the weak set and the loss differ.

1. **Teacher.** The full-modality ESANet (host ``esanet``, MMANet's ``p = [1, 1]``): a dependency run of the
   registry (the student's run with the teacher host and seed, the standard method, no MWAM or SDE), frozen. The
   authors never switch it to eval mode, so its BatchNorm normalises with batch statistics and keeps updating its
   running statistics (``teacher_batchnorm: batch``, default, part of the method's checkpoint state); ``running``
   evaluates it in eval mode.
2. **Weak-combination search.** After each epoch of ``search_epochs`` (6-9) the student's MIoU with each single
   modality and with both on ``search_split`` (the authors' validation loader, which ESANet's ``prepare_data`` makes
   the *test* split on NYUv2) adds ``(MIoU_both - MIoU_single)^2`` per single modality; after ``begin_epoch`` (10)
   the largest sum names the weak combination, which alone is the weak set.
3. **Loss** from epoch ``begin_epoch + 1``: ``seg + lambda_distill * MAD + lambda_auxiliary * aux`` (A.3's
   alpha, beta = 4, 0.2): ``aux`` is the task's loss (all four outputs) of the auxiliary decoder on the samples
   whose applied mask is the weak combination (0 when there is none), ``MAD`` the pixel-level margin-aware
   distillation (:func:`reproduce.methods.mmanet.distillation.pixel_margin_aware_distillation`) of the student's fused
   encoder outputs ``out``, ``skip3``, ``skip2`` (``HostOutput.extras["encoder"]``) towards the teacher's, each
   pooled to at most 30 x 40, weighted by the entropy of the teacher's 1/16 decoder feature
   (``extras["decoder"][2]``, the authors' ``pred_scales_t[6]``); a non-finite MAD counts 0, as theirs.

MWAM, SDE and listed plug-ins combine with it as with any method (``mwam: grad`` on the two encoders). Files:
``options.py`` (torch-free options), ``plugin.py`` (the hooks); the teacher's loading and the distillation are
MMANet's (``reproduce.methods.mmanet``). This package imports no torch.
"""

from reproduce.methods.mmanet_seg.options import TEACHER_BATCHNORM, MMANetSegOptions
from reproduce.methods.mmanet_seg.plugin import MMANetSeg

__all__ = ["TEACHER_BATCHNORM", "MMANetSeg", "MMANetSegOptions"]
