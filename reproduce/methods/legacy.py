"""Reading resume checkpoints written before the training plug-ins existed (the trainer then held MWAM, SDE and
the method itself), so that a run interrupted under an older version resumes after an upgrade."""

from __future__ import annotations

from typing import Any


def legacy_checkpoint(state: dict[str, Any], plugins: list[str], method: str) -> dict[str, Any]:
    """A resume checkpoint written before the training plug-ins (MWAM, SDE and the method as trainer attributes:
    ``mwam`` / ``method`` and, per process, ``sde`` / ``epoch_sde`` / ``epoch_energy``) in today's layout, so that
    a run interrupted then resumes after an upgrade."""
    state = dict(state)
    shared = {name: {} for name in plugins}
    shared[method] = state.pop("method", {})
    mwam = state.pop("mwam", None)
    if "mwam" in shared:
        shared["mwam"] = mwam
    processes = []
    for process in state["processes"]:
        process = dict(process)
        own = {name: {} for name in plugins}
        sde = process.pop("sde", None), process.pop("epoch_sde", []), process.pop("epoch_energy", [])
        if "sde" in own:
            own["sde"] = {"sde": sde[0], "epoch_terms": sde[1], "epoch_energy": sde[2]}
        process["plugins"] = own
        processes.append(process)
    state["plugins"], state["processes"] = shared, processes
    return state
