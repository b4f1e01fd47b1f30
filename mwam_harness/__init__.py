"""The reproduction harness's one distinct package name.

``mwam_harness.models`` (the host networks) and ``mwam_harness.datasets`` (the data-set loaders) are the
repository's top-level folders ``models/`` and ``datasets/``, imported under this name so that the harness never
claims the top-level names ``models`` or ``datasets``: a user's own ``models/`` folder beside a script, and
HuggingFace's ``datasets``, stay theirs (docs/architecture.md, "Packaging"). :mod:`~mwam_harness.catalog` holds the
hosts, data sets, plug-ins, tasks and runners; ``reproduce`` (the CLI, ``python -m reproduce``) reads it.

Three ways resolve the two sub-packages, all to the same folders:

- a wheel (``pip install ./harness``) copies the folders to ``mwam_harness/models`` and ``mwam_harness/datasets``;
- the editable install (``make venv``) maps them through setuptools' import finder (harness/setup.py), which
  exposes only ``reproduce`` and ``mwam_harness`` at the top level;
- a checkout on ``PYTHONPATH`` without any install (a GPU machine, a cluster node) resolves them through
  :class:`RepositoryFolders` below, which is active only beside the checkout's ``harness/setup.py``.

It imports nothing of the repository at import time (docs/architecture.md, "Catalog").
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

#: The repository folders that are sub-packages of this one, by the name they are imported under.
SUBPACKAGE_FOLDERS = ("models", "datasets")


class RepositoryFolders(importlib.abc.MetaPathFinder):
    """Finds ``mwam_harness.<folder>`` at ``<checkout>/<folder>`` for the folders of :data:`SUBPACKAGE_FOLDERS`.

    Consulted after the standard finders (it is appended to ``sys.meta_path``), so an installed copy always wins;
    it answers for those exact names only, and only in a checkout (``harness/setup.py`` beside this package's
    folder), never for a site-packages folder of the same name."""

    def __init__(self, checkout: Path) -> None:
        self.checkout = checkout

    def find_spec(self, fullname, path=None, target=None):  # type: ignore[override]
        prefix, _, name = fullname.partition(".")
        if prefix != __name__ or name not in SUBPACKAGE_FOLDERS:
            return None
        init = self.checkout / name / "__init__.py"
        if not init.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[str(init.parent)])


def _install_checkout_finder() -> None:
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "harness" / "setup.py").is_file():
        return
    if not any(isinstance(finder, RepositoryFolders) for finder in sys.meta_path):
        sys.meta_path.append(RepositoryFolders(checkout))


_install_checkout_finder()
