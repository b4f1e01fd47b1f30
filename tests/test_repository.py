"""The repository's promises: the README example runs, the environments agree, CI runs `make test`."""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- example:start -->\s*```python\n(.*?)```\s*<!-- example:end -->", text, re.S)
    assert block, "README must contain the 'use MWAM in your own model' example between the markers"
    return block.group(1)


def test_readme_example_is_short_and_runs():
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 20, "at most 20 lines of code"
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    mwam, net = namespace["mwam"], namespace["net"]
    assert mwam.record().step == 3
    assert mwam.modalities == ("rgb", "depth")
    assert all(p.grad is None or torch.all(p.grad == 0) for p in net.parameters())  # zero_grad ran
    assert not torch.equal(mwam.grad_scale, torch.ones(2)), "gradient editing must be active"


def test_the_readme_quick_start_is_the_example_file():
    """The README's quick start is examples/quick_start.py's code (below its docstring), character for character."""
    import ast

    source = (ROOT / "examples" / "quick_start.py").read_text()
    body = ast.parse(source).body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), "a docstring first"
    code = "\n".join(source.splitlines()[body[0].end_lineno :]).strip() + "\n"
    assert readme_example() == code, "README.md's example block and examples/quick_start.py differ"


def requirement_names(lines):
    return {re.split(r"[=<>]", line.strip())[0].lower() for line in lines if line.strip() and not line.startswith("#")}


def test_environment_yml_installs_requirements_txt():
    env = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", env, re.M)
    assert "-r requirements.txt" in env and "-e ." in env
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    pins = [line for line in requirements if line.strip() and not line.startswith("#")]
    assert all("==" in line for line in pins), "every requirement is pinned"
    assert {"torch", "torchvision", "pytest", "hypothesis", "scipy"} <= requirement_names(pins)
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins


def test_ci_runs_make_test_and_make_test_runs_pytest():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    makefile = (ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test:.*?(?=^\S)", makefile, re.M | re.S).group(0)
    assert "pytest" in test_rule and "$(STAMP)" in test_rule


def test_libraries_import_nothing_of_the_harness():
    for package in ("mwam", "sde"):
        for source in (ROOT / package).glob("*.py"):
            text = source.read_text()
            bad = re.findall(r"^\s*(?:from|import)\s+(reproduce|models|datasets|scripts)\b", text, re.M)
            assert not bad, f"{source} imports {bad}: the libraries depend on torch only"
            third_party = re.findall(r"^\s*(?:from|import)\s+([a-z_]+)", text, re.M)
            assert set(third_party) <= {
                "torch",
                "math",
                "dataclasses",
                "typing",
                "collections",
                "functools",
                "contextlib",
                "string",
                "warnings",
                "__future__",
                "itertools",
                "importlib",
                "sys",
            }, source


@pytest.mark.parametrize("name", ["mwam", "sde"])
def test_pyproject_installs_the_two_libraries(name):
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'packages = \["mwam", "mwam.integrations", "sde"\]', text)
    assert (ROOT / name / "__init__.py").exists()


def test_the_harness_installs_as_its_own_distribution_and_the_scripts_need_no_path_edits():
    """``reproduce`` and ``mwam_harness`` (with ``models/`` and ``datasets/`` as ``mwam_harness.models`` and
    ``mwam_harness.datasets``) install from harness/ (make venv, environment.yml), never with the libraries; the
    scripts import them as installed packages. tests/test_packaging.py checks what that install exposes."""
    import tomllib

    harness = tomllib.loads((ROOT / "harness" / "pyproject.toml").read_text())
    assert "mwam-sde" in harness["project"]["dependencies"]
    assert "packages" not in harness.get("tool", {}).get("setuptools", {}), "harness/setup.py computes the list"
    setup = (ROOT / "harness" / "setup.py").read_text()
    assert 'NESTED = ("models", "datasets")' in setup and '"mwam_harness.{folder}": f"../{folder}"' in setup
    makefile, environment = (ROOT / "Makefile").read_text(), (ROOT / "environment.yml").read_text()
    assert "-e harness" in makefile and "-e ./harness" in environment
    for script in (ROOT / "scripts").glob("*.py"):
        assert "sys.path" not in script.read_text(), script


def test_the_libraries_load_torch_only_when_their_torch_parts_are_used():
    """``mwam.MWAMConfig`` and ``sde.SDEConfig`` are plain configuration: importing them leaves torch unloaded."""
    import subprocess
    import sys

    code = (
        "import sys; import mwam, sde; mwam.MWAMConfig(window=4); sde.SDEConfig(compute_dtype='float64');"
        "assert 'torch' not in sys.modules; mwam.MWAM; assert 'torch' in sys.modules; print(mwam.frm.__module__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "mwam.frequency_ratio"


def test_readme_sde_example_runs_and_trains_the_encoders():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- sde-example:start -->\s*```python\n(.*?)```\s*<!-- sde-example:end -->", text, re.S)
    assert block, "README must contain the 'use SDE in your own model' example between the markers"
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    for encoder in (namespace["rgb_encoder"], namespace["depth_encoder"]):
        assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0
    assert {"sde/info_nce", "sde/hellinger", "sde/subspace", "sde/total"} <= set(namespace["parts"])
    energy = namespace["logs"]
    total = sum(energy[f"sde/energy/rgb/{s}"] for s in ("strong", "weak", "noise"))
    assert abs(total - 1) < 1e-6


@pytest.mark.parametrize("target", ["demo", "demo-brats", "demo-nyuv2", "demo-yolo", "demo-balance", "table2"])
def test_make_passes_seeds_to_every_demo_and_table(target):
    """``make TARGET SEEDS="0 1 2"`` trains each column once per seed (``--seeds``); without SEEDS, no flag."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = ["make", "-n", "-W", ".venv/.installed", target]  # -W: treat the venv as built, print the commands only
    with_seeds = subprocess.run([*dry, "SEEDS=0 1 2"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    without = subprocess.run(dry, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    command = next(line for line in with_seeds.splitlines() if "-m reproduce table" in line)
    assert "--seeds 0 1 2" in command
    assert "--seeds" not in without
