"""The installed harness shadows nobody (docs/architecture.md, "Packaging").

The harness installs two top-level names, ``reproduce`` and ``mwam_harness``; the repository's ``models/`` and
``datasets/`` folders are ``mwam_harness.models`` and ``mwam_harness.datasets``. Each check runs a fresh
interpreter of this environment, outside the repository and without ``PYTHONPATH``, the way a user's script runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.import_scan import imported_top_level_names

ROOT = Path(__file__).resolve().parents[1]
USER_FOLDERS = ("models", "datasets", "tests", "scripts")


def user_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


def python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=user_env(**env), capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> None:
    """The harness is installed into this interpreter's environment (make venv); else these checks cannot run."""
    found = python("import reproduce, mwam_harness.models", tmp_path_factory.mktemp("probe"))
    if found.returncode != 0:
        pytest.skip(f"the harness is not installed in {sys.executable} (make venv): {found.stderr.strip()[-200:]}")


def write_user_folder(where: Path, name: str, with_init: bool) -> None:
    """A user's own ``name/`` folder (a regular package or a plain folder) holding ``basic_model.py``, as the
    OGM-GE training script's ``models/`` does."""
    folder = where / name
    folder.mkdir(parents=True)
    if with_init:
        (folder / "__init__.py").write_text("")
    (folder / "basic_model.py").write_text(f"OWNER = 'user:{name}'\n")


@pytest.mark.parametrize("with_init", [True, False], ids=["packages", "plain-folders"])
def test_a_user_script_beside_its_own_folders_imports_its_own(installed, tmp_path, with_init):
    for name in USER_FOLDERS:
        write_user_folder(tmp_path, name, with_init)
    (tmp_path / "train.py").write_text(
        "import reproduce.cli, mwam_harness.models, mwam_harness.datasets\n"  # the harness, imported first ...
        "from mwam_harness.catalog import DATASETS\n"
        "assert 'casia_surf' in DATASETS.names()\n"
        + "".join(f"from {name}.basic_model import OWNER; print(OWNER)\n" for name in USER_FOLDERS)  # ... the user's
    )
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path, env=user_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"user:{name}" for name in USER_FOLDERS]


def test_the_harness_puts_no_generic_top_level_name_on_the_path(installed, tmp_path):
    """None of the generic names resolves into this repository. (Another package may own one: ultralytics, run
    under pytest, writes its validation folders to ``site-packages/tests/tmp``; that is not the harness's.)"""
    code = (
        "import importlib.util as u, json, sys\n"
        "import reproduce, mwam_harness.models, mwam_harness.datasets\n"
        "specs = {n: u.find_spec(n) for n in sys.argv[1:]}\n"
        "places = {n: [s.origin or '', *(s.submodule_search_locations or [])] for n, s in specs.items() if s}\n"
        "print(json.dumps(places))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *USER_FOLDERS], cwd=tmp_path, env=user_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    def ours(place: str) -> bool:  # in the repository, not in the environment (which may lie inside it: .venv)
        path = Path(place).resolve()
        return path.is_relative_to(ROOT) and not path.is_relative_to(Path(sys.prefix).resolve())

    inside = {n: places for n, places in found.items() if any(ours(p) for p in places if p)}
    assert not inside, f"the installed harness exposes {inside}"


@pytest.mark.parametrize("order", ["huggingface-first", "harness-first"])
def test_huggingface_datasets_keeps_its_name(installed, tmp_path, order):
    """A stand-in for HuggingFace's ``datasets`` in a site folder: importable by that name, whichever of the two
    is imported first, while the harness's data sets register under ``mwam_harness.datasets``."""
    site = tmp_path / "site"
    (site / "datasets").mkdir(parents=True)
    (site / "datasets" / "__init__.py").write_text("load_dataset = 'huggingface'\n")
    harness = "from mwam_harness.catalog import DATASETS; assert 'nyuv2' in DATASETS.names()\n"
    huggingface = "import datasets; assert datasets.load_dataset == 'huggingface', datasets.__file__\n"
    code = huggingface + harness if order == "huggingface-first" else harness + huggingface
    check = "import sys, mwam_harness.datasets.nyuv2; assert sys.modules['datasets'].load_dataset == 'huggingface'\n"
    done = python(code + check, tmp_path, PYTHONPATH=str(site))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("where", ["a-folder-with-models-and-datasets", "filesystem-root"])
def test_python_m_reproduce_works_from_any_directory(installed, tmp_path, where):
    cwd = Path("/")
    if where != "filesystem-root":
        cwd = tmp_path
        for name in ("models", "datasets"):  # a user's packages that fail loudly if the harness imported them
            (tmp_path / name).mkdir()
            (tmp_path / name / "__init__.py").write_text(f"raise ImportError('the user\\'s {name} was imported')\n")
    done = subprocess.run(
        [sys.executable, "-m", "reproduce", "subsets", "casia_surf"],
        cwd=cwd, env=user_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "RGB" in done.stdout


def test_no_module_imports_a_top_level_models_or_datasets():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True)
    paths = [ROOT / p for p in tracked.stdout.split()] if tracked.returncode == 0 else list(ROOT.rglob("*.py"))
    paths = [p for p in paths if ".venv" not in p.parts and p.exists()]
    assert len(paths) > 100
    generic = {"models", "datasets"}
    offending = sorted(f"{p.relative_to(ROOT)}: {n}" for p in paths for n in imported_top_level_names(p) & generic)
    assert not offending, "import them as mwam_harness.models / mwam_harness.datasets: " + "; ".join(offending)


def test_the_scan_sees_imports_inside_functions_and_import_module(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib\n"
        "def f():\n    from models.sf import SF\n"
        "def g(n):\n    return importlib.import_module(f'datasets.{n}')\n"
        "from mwam_harness.models import Host\n"
    )
    assert imported_top_level_names(sample) == {"importlib", "models", "datasets", "mwam_harness"}


@pytest.mark.slow
def test_the_wheel_nests_models_and_datasets_under_mwam_harness(tmp_path):
    """``pip wheel ./harness`` (on a copy of the tree: the build writes beside the sources): the wheel's top-level
    names are ``reproduce`` and ``mwam_harness`` only, with every host and data-set module and the paper tables."""
    pytest.importorskip("setuptools")
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for name in ("harness", "models", "datasets", "reproduce", "mwam_harness"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    shutil.copy(ROOT / "README.md", tree / "README.md")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "out"),
         str(tree / "harness")],
        env=user_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "out").glob("mwam_sde_harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"reproduce", "mwam_harness"}
    for folder in ("models", "datasets"):
        expected = {
            f"mwam_harness/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
            for p in (ROOT / folder).rglob("*.py")
            if "__pycache__" not in p.parts
        }
        assert expected <= set(names), sorted(expected - set(names))[:5]
    assert "reproduce/tables/paper/table01.yaml" in names


def test_the_checkout_finder_answers_only_for_its_two_folders(tmp_path):
    """``mwam_harness.RepositoryFolders`` (a checkout on ``PYTHONPATH``): the two sub-packages, nothing else."""
    import mwam_harness

    finder = mwam_harness.RepositoryFolders(ROOT)
    spec = finder.find_spec("mwam_harness.models")
    assert spec is not None and Path(spec.origin) == ROOT / "models" / "__init__.py"
    assert list(spec.submodule_search_locations) == [str(ROOT / "models")]
    for other in ("models", "datasets", "mwam_harness.tests", "mwam_harness.mwam", "reproduce", "mwam_harness"):
        assert finder.find_spec(other) is None, other
    assert mwam_harness.RepositoryFolders(tmp_path).find_spec("mwam_harness.datasets") is None  # no such folder


def test_a_checkout_on_pythonpath_without_any_install(tmp_path):
    """A node with the checkout on ``PYTHONPATH`` and nothing installed (``-S``: no site-packages finders):
    ``mwam_harness.models`` resolves through the checkout finder to the repository's folder."""
    torch_site = Path(__import__("torch").__file__).parents[1]
    done = subprocess.run(
        [sys.executable, "-S", "-c",
         "import mwam_harness.models as m, mwam_harness.datasets as d; print(m.__file__); print(d.__file__)"],
        cwd=tmp_path, env=user_env(PYTHONPATH=os.pathsep.join([str(ROOT), str(torch_site)])),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(ROOT / "models" / "__init__.py"), str(ROOT / "datasets" / "__init__.py")]
