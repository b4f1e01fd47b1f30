"""Each pin used, each use pinned (docs/dependencies.md): every import of the code -- inside functions too -- maps to a
distribution that is declared where it is used and pinned in requirements.txt; every pin is listed in the docs; one
distribution provides ``cv2``."""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

from tests.import_scan import imported_top_level_names

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"reproduce", "mwam_harness", "mwam", "sde", "tests", "scripts", "examples", "__future__"}
HARNESS = ("reproduce", "mwam_harness", "models", "datasets", "scripts")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0])


def imported_names(path: Path) -> set[str]:
    """Third-party top-level module names imported anywhere in ``path`` (functions included)."""
    return {n for n in imported_top_level_names(path) if n not in sys.stdlib_module_names and n not in LOCAL}


@functools.cache
def providers() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@functools.cache
def distributions_used(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """``{distribution: {files}}`` of every third-party import under ``folders``."""
    providers_of = providers()
    used: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for name in imported_names(path):
                found = providers_of.get(name)
                assert found, f"{path.relative_to(ROOT)} imports {name}, which no installed distribution provides"
                for distribution in found:
                    used.setdefault(normalise(distribution), set()).add(str(path.relative_to(ROOT)))
    return used


def pins() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {requirement_name(line): line.strip() for line in lines if line.strip() and not line.startswith("#")}


def declared(pyproject: Path, extras: tuple[str, ...] = ()) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    names = {requirement_name(r) for r in project.get("dependencies", [])}
    for extra in extras:
        names |= {requirement_name(r) for r in project.get("optional-dependencies", {}).get(extra, [])}
    return names


def test_the_scan_reads_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\ndef f():\n    import nibabel.nifti1\n    from h5py import File\n"
                      "def g():\n    return __import__('importlib').import_module('onnx')\n"
                      "def h(home):\n    return __import__('importlib').import_module(f'.{home}', 'x')\n")  # fmt: skip
    assert imported_names(sample) == {"nibabel", "h5py", "onnx"}  # a relative import_module names no distribution


def test_the_harness_declares_and_pins_everything_it_imports():
    used = distributions_used(HARNESS)
    harness = declared(ROOT / "harness" / "pyproject.toml") | declared(ROOT / "pyproject.toml")
    extras = declared(ROOT / "harness" / "pyproject.toml", ("export",)) - harness
    for distribution, files in sorted(used.items()):
        if distribution in extras:  # an extra's import must sit inside a function (the harness imports without it)
            continue
        assert distribution in harness, f"{distribution} is imported by {sorted(files)[:3]} but not declared"
    assert {"nibabel", "h5py", "ultralytics", "opencv-python"} <= set(used)
    unpinned = sorted(set(used) - set(pins()))
    assert not unpinned, f"imported but not pinned in requirements.txt: {unpinned}"


def test_the_libraries_import_torch_and_their_extras_only():
    used = distributions_used(("mwam", "sde"))
    allowed = declared(ROOT / "pyproject.toml", ("lightning",))
    assert set(used) <= allowed, {d: f for d, f in used.items() if d not in allowed}
    assert declared(ROOT / "pyproject.toml") == {"torch"}
    assert used["lightning"] == {"mwam/integrations/lightning.py"}


def test_the_tests_import_what_the_test_extra_adds():
    used = distributions_used(("tests", "examples"))
    available = (
        declared(ROOT / "harness" / "pyproject.toml", ("test", "export"))
        | declared(ROOT / "pyproject.toml", ("lightning",))
    )
    missing = {d: sorted(f)[:2] for d, f in used.items() if d not in available}
    assert not missing, f"tests import undeclared distributions: {missing}"
    harness = ROOT / "harness" / "pyproject.toml"
    test_extra = declared(harness, ("test",)) - declared(harness)
    assert {"pytest", "hypothesis", "torchmetrics", "pycocotools", "ruff"} <= test_extra


def test_every_pin_is_declared_or_explained():
    documented = (ROOT / "docs" / "dependencies.md").read_text()
    table = {normalise(name) for row in re.findall(r"^\| ([^|]+) \|", documented, re.M) for name in row.split(",")}
    missing = sorted(set(pins()) - {normalise(n.strip()) for n in table})
    assert not missing, f"pins without a row in docs/dependencies.md: {missing}"
    assert all("==" in line for line in pins().values()), "every requirement is pinned exactly"


def test_one_distribution_provides_cv2():
    cv2 = providers().get("cv2", [])
    if len(cv2) > 1 and "opencv-python-headless" in cv2:
        pytest.fail(f"cv2 comes from {cv2}: run make venv (it removes opencv-python-headless)")
    assert cv2 == ["opencv-python"], cv2
    assert "opencv-python-headless" not in pins() and "opencv-python" in pins()
