"""OGM-GE (Peng et al., CVPR 2022, "Balanced Multimodal Learning via On-the-fly Gradient Modulation"), a balancing
comparator of the paper's Tables 13 / 14 (``plugins: [{name: ogm_ge, options: {...}}]``).

**What it does.** Plain cross-entropy training; after backward, the dominant modality's branch gradients are damped
by k = 1 - tanh(alpha rho) (the OGM-GE paper's Eq. 10) and, for OGM-GE, Gaussian noise is added. Hook by hook:

- ``setup``: the modalities -- official: exactly two (Eq. 10 compares two scores; a clear error otherwise);
  BalanceBenchmark: two or more (below) -- the modulated parameters of each branch (``branch_parameters(host, m,
  rule)``) and the noise generator.
- ``loss``: records, detached, each modality's score s_m = sum over the batch of the task's correct-class score
  (``Task.correct_class_score``: classification, softmax(out_m)[y]; dense tasks, its mean over the sample's labelled
  positions), from the host's per-modality predictions (``Task.modality_logits``: resnet18_concat's head slices
  f_m W_m^T + b/2, exactly the authors' ``out_a`` / ``out_v``, ``main.py`` l.84-93; RFNet's separate decoders; a
  host without them is a clear error). The loss is unchanged.
- ``before_optimizer_step`` (gradients complete, after MWAM's K when both run): rho and k from the scores; within
  the modulation epochs each selected gradient becomes g <- k_m g + N(0, std(g) + 1e-8), std of the unmodulated
  gradient (Issue #5 of the official repository: Sigma, not k^2 Sigma), noise added to both modalities, also where
  k = 1 (``noise: false`` gives plain OGM: g <- k_m g).
- ``on_log``: ``ogm_ge/k/<m>``, ``ogm_ge/score/<m>``, ``ogm_ge/ratio`` (s_1 / s_0; more than two modalities:
  ``ogm_ge/ratio/<m>``, s_m over the minimum) and ``ogm_ge/modulating``.

**Variants** (``variant``). ``official`` is GeWu-Lab/OGM-GE_CVPR2022 ``main.py`` (343dc1d) l.98-153: rho_v =
s_v / s_a (the run's second modality plays visual's role, the first audio's; they are concatenated in that order
as the authors concatenate audio first); if rho_v > 1, k_v = 1 - tanh(alpha rho_v), k_a = 1, else k_a = 1 -
tanh(alpha / rho_v), k_v = 1 (a tie modulates the first modality); only 4-D parameters, i.e. the conv weights of
the branches, are modulated. ``balancebenchmark`` is GeWu-Lab/BalanceBenchmark ``balancemm/trainer/OGM_trainer.py``
(4c1482f) l.89-168: rho_m = s_m / (s_other + 1e-5) for each modality, k_m = max(1 - tanh(alpha rho_m), 0) where
rho_m > 1 (a tie modulates neither), every non-1-D branch parameter modulated. The differences that are options
default to the variant's value: ``alpha`` (0.1 / 0.3), ``modulation_start`` / ``modulation_end`` (0-50 / 10-80) and
``parameters`` (``conv`` / ``matrix``); the ratio's 1e-5 and the clamp follow the variant.

**More than two modalities** (``balancebenchmark`` only; RFNet's four MRI modalities). BalanceBenchmark's
configured method ``OGM_GE`` (``configs/trainer_config.yaml`` l.9-13) has a rule for three modalities
(``OGM_trainer.py`` l.109, 115-116, 123, 144-145, 147-151): s_m = the sum over the samples whose argmax(out_m) is
the label of softmax(cos(out_m))[y] -- ``torch.cos`` of each logit, not a cosine similarity of features, so a
segmentation host needs nothing it lacks -- then rho_m = s_m / (min_n s_n + 1e-5) and k_m = max(1 - tanh(alpha
rho_m), 0) where rho_m > 1, else 1: every modality but the weakest is modulated. Readings: (1) its l.117-118 raise
for four modalities; the three-modality rule is applied unchanged to M >= 3 (nothing in it depends on M = 3). (2)
Dense predictions: per sample, the mean over its labelled positions of that term (``Task.correct_class_score(...,
cosine=True, correct_only=True)``; argmax of the logits, not of their cosine, as l.116), summed over the batch.
(3) A score summed from integer zeros (no correct sample) fails their ``.detach()``, is skipped by ``except:
continue`` before ``minscore = min(...)`` and then raises a KeyError at l.137; here it is left out of the minimum
and gets k = 1 (the weakest modality). (4) Their alternative method ``OGM_GE3`` (plain softmax, mean of pairwise
ratios, the division by the count indented outside its loop) is not the configured one and is not implemented.
(5) Their gradient rule selects parameters whose name contains the modality's name (on RFNet ``t1`` would also
match ``t1ce_encoder``); here each modality's ``host.branches()`` entry (RFNet: its encoder's 5-D conv weights
under ``matrix``). RFNet's shared ``decoder_sep`` and ``decoder_fuse`` are never modulated.

**Choices the paper and the code leave open.**

- alpha (official): ``main.py`` requires ``--alpha``; the README's "default modulation setting" is alpha 0.1 (also
  its VGGSound value; CREMA-D: 0.8). The paper (Tables 13 / 14) names no alpha, so the README's default is used.
- Epochs: both codes count epochs from 0 (``for epoch in range(args.epochs)``; BalanceBenchmark's
  ``current_epoch`` starts at 0) and test ``start <= epoch <= end``, as the trainer's 0-based epochs do here, so
  the bounds carry over unchanged (official: epochs 0-50 of 100, 51 modulated epochs).
- Which parameters: the authors' ``name.split('.')[1]`` containing ``audio`` / ``visual`` selects their encoders;
  here the host's ``branches()`` (resnet18_concat: the two ResNet-18 encoders). The fusion head is never modulated.
- The scores and the ratio are the batch's; under DDP each process's scores are averaged over the processes (one
  gather per step), so every process computes the same k and the all-reduced gradients stay identical. The noise
  generator is seeded by the run's seed (+ 62022), lives on the gradients' device, draws the same numbers on every
  process, and is saved in the process state (exact resume); torch's ``randn`` times the std replaces the
  authors' ``zeros_like(g).normal_(0, std)`` (the same distribution, not their numbers).
- The scores are computed in float32 (``Task.correct_class_score``) whatever the autocast precision. A zero
  score (every probability underflowed) in a ratio's denominator gives rho = inf, and 0 / 0 gives rho = 1 (a tie),
  where torch would give inf / nan.
"""

from reproduce.methods.ogm_ge.options import PARAMETER_RULES, VARIANT_DEFAULTS, VARIANTS, OGMGEOptions
from reproduce.methods.ogm_ge.plugin import (
    OGMGE,
    balancebenchmark_coefficients,
    multimodal_coefficients,
    official_coefficients,
)

__all__ = [
    "OGMGE",
    "PARAMETER_RULES",
    "VARIANTS",
    "VARIANT_DEFAULTS",
    "OGMGEOptions",
    "balancebenchmark_coefficients",
    "multimodal_coefficients",
    "official_coefficients",
]
