"""The validation loss per epoch (``plugins: [{name: validation_loss}]``): the curves of Fig. 1b.

Fig. 1 of "Plug, Play, and Fortify" (Sec. 3.1, Appendix A.5) plots, per epoch, the training loss (a), the
**validation loss** (b) and the validation accuracy (c) of models trained on frequency-filtered CASIA-SURF. The engine
records the training loss (``entry["loss"]``) and the validation metrics (``entry["val"]``); this plug-in adds the
validation loss.

Hook by hook: ``on_epoch_end`` only -- after the epoch's training and validation, it runs the host in eval mode
(its mode restored) over ``ctx.loader(split)`` (every sample of the split, in order, no augmentation) with complete
inputs (every modality present), takes the task's loss of the **fused** prediction per sample,
``task.per_sample_loss(output.logits, batch)`` (cross-entropy for classification), and writes the mean over the
split's samples (merged over the processes: sum of losses / number of samples) into the epoch's history entry as
``entry["val_loss"]`` (``<split>_loss`` for another split), and logs it to the tracker as ``epoch/val_loss``.

Choices the paper leaves open: the paper does not define its validation loss; this is the mean per-sample loss of
the fused prediction on complete inputs -- the same loss term the training loss's fused part (``loss/fused``)
averages, so the two curves are comparable (the engine's ``entry["loss"]`` is the mean of ``loss/fused`` over the
epoch's steps, measured in train mode, hence with the host's own modality dropout where it has one; the validation
loss is measured without dropout). The loss runs under the engine's autocast dtype and memory format, as the
engine's validation does, and is accumulated in float64. It reads the whole split (not ``runtime.val_cases``).

It draws no randomness (the evaluation loader has its own generator; the host is in eval mode), holds no state
(its value lives in the history, which the checkpoint keeps), and edits nothing: a run's training is bit-identical
with or without it. Options (``options.py``, torch-free): ``split`` (default ``val``).
"""

from reproduce.methods.validation_loss.options import ValidationLossOptions
from reproduce.methods.validation_loss.plugin import ValidationLoss

__all__ = ["ValidationLoss", "ValidationLossOptions"]
