"""MWAM as a training plug-in (built-in: the run's ``mwam:`` section switches it on).

``mwam: {intervention: ...}`` -- ``off`` (no plug-in), ``none`` (FRM / T / K measured and logged, nothing changed:
every baseline column), ``grad`` (Alg. 1: each branch's gradients times its K), ``loss`` (Eq. 7 over the host's
per-modality terms) or ``hybrid`` (both) -- with ``options`` overriding ``mwam.MWAMConfig``. The section and its
meaning are those of every earlier run, so run keys do not change.

Hooks: ``setup`` builds :class:`mwam.MWAM` on the host's ``branches()``; ``before_forward`` measures the step's
inputs (Alg. 1 lines 3-5); ``combine_terms`` is Eq. 7 under ``loss`` / ``hybrid``; ``on_log`` adds FRM / T / K;
state: the FRM bank and step count. The gradient edit happens in backward, through MWAM's tensor hooks on the
branch parameters (before DDP's all-reduce, exact under accumulation). With ``deferred=True`` -- for a loop that
owns its optimiser step (ultralytics) -- no hooks are installed: every measured micro-batch's K is kept and
``before_optimizer_step`` multiplies the accumulated branch gradients by their mean (:attr:`MWAMPlugin.applied`).
The class lives in ``plugin.py`` (this module imports no torch).
"""

from __future__ import annotations

from reproduce.methods.mwam.plugin import MWAMPlugin

__all__ = ["MWAMPlugin"]
