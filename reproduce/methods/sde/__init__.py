"""SDE as a training plug-in (built-in: ``sde: {enabled: true}`` switches it on, ``options`` override
``sde.SDEConfig``; the seed defaults to the run's).

Hooks: ``setup`` puts the enhancement hooks on the host's ``feature_branches()`` (:mod:`.enhancer`);
``before_forward`` starts the step's curriculum at the run's progress; ``loss`` adds the dual-domain loss over every
pair of modalities present in a sample (``sde/*`` parts); ``on_log`` adds the strong / weak / noise energy
fractions; ``on_epoch_end`` puts the epoch's mean loss terms and energies in its history entry (``sde``). Process
state: SDE's generator and this epoch's per-step values, so resume is exact. Any host that names its per-modality
feature modules (the Host contract's ``feature_branches``; every host of this repository does) trains with SDE.
"""

from __future__ import annotations

from reproduce.methods.sde.plugin import SDEPlugin

__all__ = ["SDEPlugin"]
