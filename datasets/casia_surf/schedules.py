"""CASIA-SURF's two named learning-rate schedules (``schedule: {preset: paper | released}``), per host.

Both are SGD learning-rate factors per epoch over 100 epochs (``reproduce.runs.schedules``, ``interval: epoch``).

``paper`` -- exactly the words of the MWAM paper (Sec. A.3), no warm-up (none is mentioned):
    SF / SF-MD (and the SF teacher of MMANet): "divided by 10 every 30 epochs" -> drops at 30, 60, 90.
    MMANet: "at epochs 16, 33 and 50" -> drops at 16, 33, 50. Every epoch trains.

``released`` -- the learning rate each epoch of the authors' released code trains with (``lib/model_develop.py``
of a6103121/MWAM; ``../shared/notes/host-facts.md`` section 3): every loop skips the batches of epoch 0
(``if epoch == 0: continue``) and steps its scheduler with ``step(epoch=epoch)`` after each epoch.
    SF / SF-MD (``configuration/config_baseline_multi.py``: ``lr_warmup=False``; the script that trains MMANet's
    teacher ``multi_full__2__average.pth``): ``MultiStepLR([16, 33, 50])`` stepped after epoch e sets the rate of
    epoch e + 1 -> drops at 17, 34, 51.
    MMANet (``config_feature_kd.py``: ``lr_warmup=1``, ``total_epoch=5``): ``GradualWarmupScheduler(multiplier=1)``
    starts at 0 and sets ``lr * e / 5`` after epoch e <= 5, then hands over to ``MultiStepLR([16, 33, 50])``
    stepped with ``e - 5`` -> epoch 1 trains at 0, epochs 2-5 at 0.2, 0.4, 0.6, 0.8, epoch 6 at 1, drops at 22,
    39, 56.

This module imports nothing heavy: the run configuration resolves presets without torch.
"""

from __future__ import annotations

from typing import Any

PAPER_SF: dict[str, Any] = {"name": "step", "milestones": (30, 60, 90)}
PAPER_MMANET: dict[str, Any] = {"name": "step", "milestones": (16, 33, 50)}
RELEASED_SF: dict[str, Any] = {"name": "step", "skip_epochs": 1, "milestones": (17, 34, 51)}
RELEASED_MMANET: dict[str, Any] = {
    "name": "step",
    "skip_epochs": 1,
    "warmup_start": 2,
    "warmup_epochs": 5,
    "milestones": (22, 39, 56),
}

#: name -> host -> ScheduleConfig fields ("*": every host without its own entry: SF, SF-MD and other hosts).
SCHEDULES: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {"*": PAPER_SF, "mmanet": PAPER_MMANET},
    "released": {"*": RELEASED_SF, "mmanet": RELEASED_MMANET},
}
