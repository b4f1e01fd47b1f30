"""The run's logger as a training plug-in (built-in, in every run, last in the order).

It writes what the other plug-ins put in a logged step's values (the loss parts, MWAM's FRM / T / K, SDE's
energies, the learning rate) to the tracker (W&B: offline by default, ``--wandb``) and the loss and MWAM series to
the run's ``curves.csv`` (what ``python -m reproduce plot losses`` draws); after each epoch its mean loss and
learning rate; at the end the per-subset results table and summary. The tracker itself is the run's (the engine
opens it, so that a resumed run continues the same W&B run); only the main process writes files.
"""

from __future__ import annotations

from reproduce.methods.logger.plugin import LoggerPlugin

__all__ = ["LoggerPlugin"]
