"""GSS's training method (Qiu et al., ICCV 2023, "Scratch Each Other's Back"): ``method: {name: gss}``.

GSS is RFNet trained further with a category-aware group self-support loss; its checkpoints are RFNet's (the
authors' README: "fully compatible with the RFNet code"), so the host is ``rfnet`` and only training differs.
What the authors' ``GSS.sh`` / ``train_GSS.py`` do, as hooks of a training plug-in:

1. **Stages.** ``GSS.sh`` starts from a trained RFNet and runs five successive stages of 300 epochs, each
   initialised from the previous stage's last weights, with a fresh Adam and the poly schedule restarting (their
   ``startepoch`` is read and never used). Here stage ``k`` (``stage``) is a run whose dependency is stage
   ``k - 1`` -- the same configuration with ``stage: k - 1`` -- and stage 1's is the initial host run: this run's
   configuration with the standard method, no MWAM (unless ``init_mwam``) and no SDE, i.e. exactly Table 2's RFNet
   column, trained once and shared. ``init_weights`` starts stage 1 from a checkpoint file instead (the authors'
   pretrained RFNet ``model_last_brast2020.pth``, DataParallel keys accepted, or a ``model.pt`` of this registry).
   Their script has a slip: stages 3 and 4 point ``--pretrain`` at their own (still empty) output folders, so run
   as written it stops after three stages; the chain here is the five stages the script evidently meant.
2. **Loss** (``train_GSS.py``): ``fuse + 0.7 sep + prm + 0.3 T^2 / 10 soft_sep`` with T = 8. The task's fused and
   PRM terms are kept, and on from the first epoch (``train_GSS.py`` never applies ``region_fusion_start_epoch``);
   the separate decoders' terms are weighted by ``sep_weight`` (:meth:`GSS.loss_terms`, before MWAM's Eq. 7 when
   its intervention is ``loss`` / ``hybrid``); ``soft_sep`` is the group self-support term of
   :mod:`reproduce.methods.gss.group_self_support`, the target built without gradient from this step's own separate
   decoders, per class from its teacher group (BraTS: background FLAIR; NCR/NET T1ce; oedema FLAIR + T2; enhancing
   tumour T1ce), thresholds 0.75 / 0.85, blend 0.3, 20 % of the voxels removed. ``target_rule`` picks the
   authors' target as their code computes it (``released``, default: it produced GSS's numbers in Table 2) or as
   it evidently meant (``intended``); docs/training.md lists the difference.

MWAM, SDE and listed plug-ins combine with it as with any method (``mwam: grad`` edits the encoders' gradients in
every stage, ``sde`` enhances the encoders' deepest level; the initial RFNet trains without them unless
``init_mwam``). Files: ``options.py`` (torch-free options and the stage chain), ``group_self_support.py`` (the
target and the loss), ``plugin.py`` (the hooks). This package imports no torch.
"""

from reproduce.methods.gss.options import BRATS_GROUPS, RESERVED_INIT_SECTIONS, TARGET_RULES, GSSOptions
from reproduce.methods.gss.plugin import GSS

__all__ = ["BRATS_GROUPS", "GSS", "RESERVED_INIT_SECTIONS", "TARGET_RULES", "GSSOptions"]
