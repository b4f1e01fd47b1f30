"""Where the harness writes: the results root (``--results-dir``, else ``$MWAM_RESULTS_DIR``, else ``./results``).

Everything generated lives under it: the run registry (``runs/``), synthetic data sets (``cache/synthetic/``),
W&B's offline runs (``wandb/``) and the default output folders of the tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENVIRONMENT_VARIABLE = "MWAM_RESULTS_DIR"


def results_root(explicit: str | Path | None = None) -> Path:
    """``explicit``, else ``$MWAM_RESULTS_DIR``, else ``results`` in the current directory."""
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ.get(ENVIRONMENT_VARIABLE) or "results")


def runs_dir(root: str | Path | None = None) -> Path:
    """The run registry: one ``<key>.json`` per finished run and a ``<key>/`` folder per run."""
    return results_root(root) / "runs"


def synthetic_dir(dataset: str, preset: str, root: str | Path | None = None) -> Path:
    """Where the synthetic stand-in of ``dataset`` for ``preset`` is generated (once) and reused."""
    return results_root(root) / "cache" / "synthetic" / f"{dataset}_{preset}"


@contextmanager
def results_root_set_to(root: str | Path | None) -> Iterator[None]:
    """Within the block, :func:`results_root` is ``root`` for this process and the processes it starts (torchrun);
    nothing changes when ``root`` is None."""
    if root is None:
        yield
        return
    previous = os.environ.get(ENVIRONMENT_VARIABLE)
    os.environ[ENVIRONMENT_VARIABLE] = str(Path(root).resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENVIRONMENT_VARIABLE, None)
        else:
            os.environ[ENVIRONMENT_VARIABLE] = previous
