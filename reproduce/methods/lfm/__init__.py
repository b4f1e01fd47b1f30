"""LFM (Yang et al., "Facilitating Multimodal Classification via Dynamically Learning Modality Gap", NeurIPS 2024)
as a training plug-in (``plugins: [{name: lfm, options: {...}}]``), for the balancing comparison of the paper's
Tables 13 / 14. Official code: njustkmg/NeurIPS24-LFM (``Crema_epoch.py``, ``Crema_epoch_learnable.py``); the
BalanceBenchmark port (GeWu-Lab/BalanceBenchmark ``balancemm/trainer/LFM_trainer.py``) is ``variant:
balancebenchmark``.

**Loss** (``loss`` hook; it *replaces* the step's loss -- the fused CE and any per-modality terms): ``2 *
(lambda_c * CE(mean of the unimodal logits, y) + lambda_g * A)`` (``Crema_epoch.py`` l.69-71), where A aligns the
modalities' predictive distributions: the official ``Alignment`` (l.38-45), ``0.5 * [KL(m||p) + KL(m||q)]`` with
``m = (p + q) / 2``, ``batchmean`` -- the argument order of ``F.kl_div`` makes each term KL(m || p), not the
textbook Jensen-Shannon KL(p || m); the code's form is kept (``maths``). The unimodal logits are the host's
per-modality predictions (``Task.modality_logits``: resnet18_concat's head slices ``f_m W_m^T + b/M`` under
``fusion="concat"``, its own heads under ``fusion="sum"`` -- the official ``AVClassifier`` has one head per
modality, summed -- or a host's auxiliary heads); a host without them is refused with a clear error.

**Schedules.** ``fitted`` (the official README's script): lambda_c is the degree-5 polynomial of ``Crema_epoch.py``
l.47-53 in the 0-based epoch (0.205 at 0, 0.301 at 20, 0.437 at 50, 0.500 at 80, 0.537 at 99), lambda_g = 1 -
lambda_c; *clipped to [0, 1]* -- fitted to the official 200 epochs, it exceeds 1 at epochs 177-188 and is negative
from 227 on. It is read from the absolute epoch, as in the official loop (not rescaled to a run's length).
``learnable`` (``Crema_epoch_learnable.py`` l.55-97), once per epoch before its first step (in ``before_forward``
-- or ``loss`` -- when ``ctx.epoch`` has not been updated yet; the updated epoch is in the state, so a resume in
the middle of an epoch does not repeat it): on a held-out batch, the first parameter's block of the Hessian of
``lambda_c * CE + lambda_g * A`` times the gradient of CE, averaged; ``lambda_g -= lr_alpha * that``, clipped to
[0.05, 0.95], lambda_c = 1 - lambda_g; ``lr_alpha`` 1e-4 halved every 20 epochs; start lambda_c 0.05 / lambda_g
0.95 (official; BalanceBenchmark starts 0.95 / 0.05, ``init: balancebenchmark``). The "first parameter" is the
first trainable parameter of ``host.parameters()`` (resnet18_concat: the first modality's conv1 weight, as the
official model's audio conv1). It is measured on hook-free leaves (detached views) of the parameters, so that MWAM's
gradient hooks do not scale it; under DDP every process computes it and rank 0's value is used.

**Choices the code leaves open** (defaults; options):

- held-out batch: the official code removes 16 random training samples and uses 8 of them; a plug-in cannot change
  the training set, so the batch is the first ``heldout_size`` samples (8) of ``heldout_split`` (``val``) --
  samples never trained on, as the official intends, fixed for the run (read once, in order), as the official
  batch is; BalanceBenchmark also takes the validation split (a quarter of its first batch: ``heldout_size``
  None under ``variant: balancebenchmark``).
- the held-out pass runs with the host in eval mode (the official code's mode from its second epoch on, since its
  ``val()`` leaves the model in eval mode; no BatchNorm statistics updated, no random draw); BalanceBenchmark runs
  it in train mode (``heldout_mode: train``).
- more than two modalities (the official code has two): ``divergence: pairwise`` (BalanceBenchmark: the
  two-distribution term averaged over pairs, default) or ``mean`` (each distribution against the mean of all).
- the classification term: CE of the mean of the unimodal logits (official; ``cls_input: mean``) or of the
  host's fused output (BalanceBenchmark; ``cls_input: fused``).
- MWAM's loss interventions (``loss`` / ``hybrid``) are refused (their Eq. 7 loss would be replaced); ``grad``
  composes (its tensor hooks scale the branches' gradients of the LFM loss).

Values: ``loss/lfm``, ``loss/lfm_cls``, ``loss/lfm_align`` among the step's parts; ``lfm/lambda_c``,
``lfm/lambda_g`` (and ``lfm/hypergradient``) on the logged steps; the epoch's lambdas in its history entry
(``lfm``). Options in ``options.py`` (torch-free), the schedules in ``schedule.py`` (torch-free), the loss and the
hypergradient in ``maths.py``, the hooks in ``plugin.py``.
"""

from reproduce.methods.lfm.options import LFMOptions
from reproduce.methods.lfm.plugin import LFMPlugin

__all__ = ["LFMOptions", "LFMPlugin"]
