"""The harness's package list, which pyproject.toml cannot compute: ``reproduce`` and ``mwam_harness`` from the
repository root, and the root's ``models/`` and ``datasets/`` folders as ``mwam_harness.models`` and
``mwam_harness.datasets`` (docs/architecture.md, "Packaging"). Mapping those two away from the root makes setuptools'
editable install expose only ``reproduce`` and ``mwam_harness`` at the top level, through an import finder, instead
of putting the whole repository root on ``sys.path`` (which would shadow a user's ``models/``, ``datasets/``,
``tests/`` and ``scripts/`` folders and HuggingFace's ``datasets``)."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent.parent
NESTED = ("models", "datasets")  # imported as mwam_harness.<folder>

packages = find_packages(str(ROOT), include=["reproduce", "reproduce.*", "mwam_harness", "mwam_harness.*"])
for folder in NESTED:
    packages += [f"mwam_harness.{folder}"] + [f"mwam_harness.{folder}.{p}" for p in find_packages(str(ROOT / folder))]

setup(
    packages=packages,
    package_dir={"": "..", **{f"mwam_harness.{folder}": f"../{folder}" for folder in NESTED}},
    package_data={"reproduce.tables": ["paper/*.yaml"]},
)
