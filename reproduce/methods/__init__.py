"""Training methods by name: how a run is trained, as hooks the one trainer calls (``reproduce.methods.base``).

One file per method in this package, registered with ``@register_method("name")``: ``standard`` (the task's loss,
with MWAM and SDE as configured), ``mmanet`` (MMANet's teacher distillation and weak-combination loss), later
OGM-GE, AGM ... A method declares its options dataclass and the runs it depends on (MMANet's frozen teacher); the
planner trains those first, as ordinary runs of the registry.

The method modules import no torch at module level (their hooks import it when they run), so that the run
configuration validates a method's options, and ``--dry-run`` plans its dependencies, without loading torch.
"""

from reproduce.methods.base import Dependency, FinishedRun, Method, list_methods, method_class, register_method

__all__ = ["Dependency", "FinishedRun", "Method", "list_methods", "method_class", "register_method"]
