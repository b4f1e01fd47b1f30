"""The standard method: the task's loss, with MWAM and SDE as the run configures them; no hook of its own."""

from __future__ import annotations

from reproduce.methods.base import Method, register_method


@register_method("standard")
class Standard(Method):
    """Train on the task's loss (plus MWAM's Eq. 7 and SDE's loss where the run enables them)."""
