"""The standard method: the task's loss, with whatever plug-ins the run adds (MWAM, SDE, listed plug-ins); no hook
of its own."""

from __future__ import annotations

from reproduce.methods.base import Plugin, register_method


@register_method("standard")
class Standard(Plugin):
    """Train on the task's loss (plus MWAM's Eq. 7, SDE's loss and the listed plug-ins where the run enables them)."""
