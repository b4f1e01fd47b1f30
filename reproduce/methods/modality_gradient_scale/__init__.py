"""Fixed per-modality gradient weights (``plugins: [{name: modality_gradient_scale, options: {scales: {...}}}]``):
the static counterpart of MWAM's K, and the worked example of a gradient-modulation plug-in
(docs/architecture.md, "To add ... a training plug-in").

After backward, each named modality's branch gradients (the host's ``branches()``, the parameters MWAM rescales)
are multiplied by its fixed scale -- ``{"rgb": 0.5}`` halves RGB's learning signal, ``0`` freezes a branch's
gradient step (weight decay and momentum still act, as for any zero gradient) -- from ``start_epoch`` on. It acts in
``before_optimizer_step``, after MWAM's K (applied during backward), so the two multiply. Options in ``options.py``
(torch-free), the hook in ``plugin.py``.
"""

from reproduce.methods.modality_gradient_scale.options import GradientScaleOptions
from reproduce.methods.modality_gradient_scale.plugin import ModalityGradientScale

__all__ = ["GradientScaleOptions", "ModalityGradientScale"]
