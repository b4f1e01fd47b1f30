"""AGM (Li et al., ICCV 2023, "Boosting Multi-modal Model Performance with Adaptive Gradient Modulation"), a
balancing comparator of the paper's Tables 13 / 14 (``plugins: [{name: agm, options: {...}}]``).

**What it does.** Each modality's mono-modal output o_m is read off the fused model by zeroing inputs (a Shapley
decomposition of the fused logits); its score s_m (batch mean of -log softmax(o_m)[y], p floored at 1e-8; dense
outputs: the task's per-sample loss, below) is compared with the running mean S_m of all earlier iterations'
scores, and the modality's learning signal is multiplied by k_m = exp(alpha min(opt_m - ratio_m, cap)). Hook by hook:

- ``setup``: the modalities (official: exactly two; BalanceBenchmark: two or more; a clear error otherwise), the
  fusion head's weights -- the host's trainable parameters *outside* ``host.branches()`` with more than one dimension
  (resnet18_concat: ``head.weight``, the authors' ``fusion_module.fc_out.weight``; a host's auxiliary heads, being
  outside the branches too, would count) -- and, for BalanceBenchmark,
  each branch's non-1-D parameters. AGM needs no per-modality predictions of the host (it derives them from zeroed
  inputs), only fused logits: (B, C) for the official variant, (B, C) or dense (B, C, *spatial) for
  BalanceBenchmark. ``head`` names the fusion head instead (RFNet: ``decoder_fuse.seg_layer``); ``clipping:
  false`` turns the clip off (no head needed).
- ``before_forward`` (BalanceBenchmark): its extra passes (below), before the training forward pass, where its
  ``newGrad`` runs them (so they read BatchNorm's running statistics before this batch updates them), under the
  run's autocast and memory format.
- ``loss``: the official extra passes (after the training forward pass, where ``GradMod.forward`` runs them), o_m,
  s_m, then k from (s, S), then S_m <- S_m (t-1)/t + s_m/t (t: every iteration of the run, from 1; S updated after
  k, in every epoch). Official: the loss's fused term becomes the
  task's cross-entropy on o_1' + o_2', where o_m' has o_m's value and k_m times its gradient (the authors' full
  backward hooks on identity modules, ``CREMAD_net.py`` l.25-55): the value is the plain CE on the fused output
  (o_1 + o_2 = total), the gradient reaching total, pad_1 and pad_2 is the k-weighted Shapley mix. Other loss terms
  (auxiliary heads, other plug-ins') are kept (``loss - fused + CE(o_1' + o_2')``).
- ``before_optimizer_step``: BalanceBenchmark multiplies each branch's non-1-D parameter gradients by k_m; both
  variants then clip every gradient to total norm ``clip`` when any gradient of the fusion head's weights lies
  outside +-``clip`` (official ``CREMAD_main.py`` l.233-243: 1.0; BalanceBenchmark l.582-585: 5.0), unless
  ``clipping: false``.
- ``on_log``: ``agm/k/<m>`` (the coefficient in force), ``agm/score/<m>``, ``agm/running_score/<m>``,
  ``agm/ratio/<m>``, ``agm/optimal_ratio/<m>``, ``agm/modulating``, ``agm/clipped``.

**Cost** (also in ``describe()``: ``extra_forward_passes_per_step``). Official: per step two extra forward passes
with gradient (each modality zeroed; they are back-propagated too, about three forward + backward passes in all)
and one without gradient (both zeroed: the authors' ``zero_padding_out``, computed and never used; it changes no
number, ``all_zero_pass: false`` skips it). BalanceBenchmark: 2^M - 1 extra forward passes without gradient (M = 2:
three). Every extra pass runs in eval mode (``host.eval()``, each module's own mode restored afterwards: BatchNorm on
its running statistics, which the passes do not update). The passes go through the host's forward hooks: SDE's
enhancement hooks act in training mode only, so they leave these passes alone, and MWAM measures the step's
inputs in ``before_forward`` (not in forward) and scales parameter gradients, so the passes change neither; under
DDP the passes go through the unwrapped host (a DDP wrapper takes one forward per backward).

**Variants** (``variant``). ``official`` is lihong2303/AGM_ICCV2023 (5a65542): ``model/CREMAD_net.py::GradMod``
l.57-72 (total in train mode; pad_a, pad_v and the all-zero pass with the net in eval mode, gradients enabled;
o_a = 1/2 (total - pad_a + pad_v), o_v = 1/2 (total - pad_v + pad_a): the two-player Shapley values with the
empty coalition's value taken as 0) and ``run/CREMAD_main.py`` l.127-166 (ratio_a = exp(s_v - s_a), opt_a =
exp(S_v - S_a), k_a = exp(alpha min(opt_a - ratio_a, 10)), symmetric for v). ``balancebenchmark`` is
GeWu-Lab/BalanceBenchmark ``balancemm/trainer/AGM_trainer.py`` (4c1482f): ``newGrad`` l.221-271 runs every
non-empty coalition under ``no_grad`` in eval mode and sums |T|!(M-|T|-1)!/M! (v(T+m) - v(T)) over the non-empty
coalitions T of the other modalities only (``include_empty=False``: for M = 2, o_a = 1/2 (v_eval(all) - pad_a),
not the exact Shapley value); ``training_step`` l.535-589: ratio_m = exp(M/(M-1) (s_m - mean s)), opt_m likewise
from S, k_m = exp(alpha min(opt_m - ratio_m, 7)), k multiplying the parameter gradients (the loss is the plain CE
on the train-mode output). For M = 2 its ratio_a = exp(s_a - s_v) has the **opposite sign** of the official
exp(s_v - s_a) (it boosts the modality whose loss fell below its running mean, the official one the modality whose
loss rose above it); transcribed as written. BalanceBenchmark's trainer never reads its configured
``modulation_starts`` / ``modulation_ends``: it modulates in every epoch. The differences that are options default
to the variant's value: ``alpha`` (1.0 / 0.1: ``utils/config.py`` l.76 / ``trainer_config.yaml`` l.14-19),
``cap`` (10 / 7), ``clip`` (1.0 / 5.0), ``after_modulation`` (``hold`` / ``release``) and ``all_zero_pass``
(true / -); the way the outputs are formed and where k acts follow the variant.

**Dense predictions, more modalities** (``balancebenchmark``; RFNet on BraTS2020, four modalities). The coalition
passes are unchanged (2^M - 1 = 15 for RFNet, each a full eval-mode forward pass without gradient; in eval mode
RFNet returns its fused logits only, no modality dropout). RFNet's encoders map an all-zero input to zero features
(conv bias, then InstanceNorm of a constant), so AGM's zeroed inputs coincide with RFNet's own feature-level
masking of that modality (tested). Readings: (1) the score of a dense mono-modal output is the batch mean of the
task's ``per_sample_loss`` (BraTS: RFNet's weighted cross-entropy plus soft Dice on the softmax, the loss every RFNet
output is trained with; NYUv2: ESANet's class-weighted cross-entropy over the non-void pixels), not -log of the
mean correct-class probability: AGM's s_m is "the loss of the mono-modal output" (the authors' cross-entropy, the
classification task's loss), and the task's loss is that reading for a dense task; (B, C) outputs keep the
authors' floored cross-entropy exactly. (2) The fusion head: BalanceBenchmark reads ``fusion_module.fc_out.weight``,
the layer mapping the fused features to the fused prediction; RFNet's counterpart is ``decoder_fuse.seg_layer``
(the 1x1x1 conv giving the fused logits); the default rule (every weight outside the branches) would take all of
``decoder_fuse`` and the shared ``decoder_sep``, a different trigger, so an RFNet run names ``head:
decoder_fuse.seg_layer``. The clip (total norm 5 once an element of that gradient leaves +-5) transfers as a rule
but is inert there: the fused loss is a voxel mean, its seg_layer gradient was at most 0.04 in a synthetic 32^3 run,
and it is 0 before ``fused_loss_start_epoch`` (the fused term is multiplied by 0). (3) Before that epoch (RFNet:
20) the fused output's last layer is untrained, so the Shapley outputs and the running means S_m of those epochs
read an untrained head (``modulation_start`` can start the modulation later; S_m still accumulates, as both codes
do). (4) BalanceBenchmark scales parameters whose name contains the modality's name (``t1`` would also match
``t1ce``); here each modality's ``host.branches()`` entry.

**Choices the paper and the code leave open.**

- Modulation epochs (default: the whole run, ``modulation_start: 0``, ``modulation_end: null``). The official
  ``utils/config.py`` has ``--modulation_starts 0 --modulation_ends 20`` with ``--EPOCHS 10`` (so its defaults
  modulate every epoch), the author's CREMA-D setting ends at epoch 1500 (lihongcs/AGM #3, #5: again every epoch),
  and BalanceBenchmark modulates every epoch; in every public configuration AGM modulates throughout, so a 100-epoch
  run does too. The official loop counts epochs from 1 (``range(start_epoch, EPOCHS + 1)``, ``start_epoch = 1``)
  and tests ``starts <= epoch <= ends``: its 0-20 are its epochs 1-20, i.e. ``modulation_start: 0``,
  ``modulation_end: 19`` here (0-based, inclusive).
- After ``modulation_end`` the official hooks keep the last ``update_scale`` coefficients (``hold``, the default of
  the official variant; it only matters when an end is set); before ``modulation_start`` k = 1. The running scores
  and the clipping act in every epoch, as in both codes.
- The fusion head whose gradient triggers the clipping is identified as the parameters outside the branches (see
  ``setup``) unless ``head`` names it; the clipping itself acts on every parameter of the host, as the authors'
  ``model.parameters()``. ``clipping`` (default true, both codes) and ``head`` (default null) are options of
  this implementation, not of either code.
- The scores are computed in float32 from the logits (whatever the autocast precision) and the running means in
  Python floats (BalanceBenchmark keeps float32 tensors). Under DDP each process's scores are averaged over the
  processes (one gather per step), so S_m and k are the same on every process; S_m, the iteration count and the
  coefficients in force are the plug-in's checkpoint state (exact resume).
"""

from reproduce.methods.agm.options import AFTER_MODULATION, VARIANT_DEFAULTS, VARIANTS, AGMOptions
from reproduce.methods.agm.plugin import AGM, fusion_head_weights

__all__ = ["AFTER_MODULATION", "AGM", "VARIANTS", "VARIANT_DEFAULTS", "AGMOptions", "fusion_head_weights"]
