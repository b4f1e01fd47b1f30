"""Every training target of the Makefile passes RESUME, THREADS, DEVICE and SEEDS (PRESET for tables and
figure1) through to a command line the CLI accepts; ``make help`` lists the variables. (``make -n``: nothing runs.)"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from reproduce.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = ["RESUME=1", "THREADS=1", "DEVICE=cpu", "SEEDS=0 1"]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def training_targets() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    rules = re.findall(r"^([\w .-]+):[^=\n]*\n((?:\t.*\n)+)", makefile, re.M)
    targets = []
    for names, recipe in rules:
        if "-m reproduce table" in recipe or "-m reproduce figure" in recipe or "-m reproduce ablations" in recipe:
            targets += names.split()  # a static pattern rule (table5 table7 ...: table%:) lists its targets
    return sorted(set(targets))


def dry_run(targets: str, *variables: str) -> list[list[str]]:
    """The reproduce command lines ``make -n targets`` would run (the venv's stamp taken as up to date: -o)."""
    done = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", *targets.split(), *variables],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    text = done.stdout.replace("\\\n", " ")  # a recipe line continued with a backslash
    lines = [shlex.split(line) for line in text.splitlines() if " -m reproduce " in line]
    return [line[line.index("reproduce") + 1 :] for line in lines]


def test_the_training_targets_are_all_found():
    targets = training_targets()
    assert {"demo", "demo-brats", "demo-nyuv2", "demo-yolo", "demo-balance", "table4", "table2"} <= set(targets)
    assert {"table3", "table12", "table7", "figure1", "ablations-smoke", "table4-sde"} <= set(targets)


def test_every_training_target_passes_the_variables_through():
    targets = training_targets()
    commands = dry_run(" ".join(targets), *VARIABLES)  # one make for all: each target prints its commands
    assert len(commands) >= len(targets)
    parser = build_parser()
    for argv in commands:
        joined = " ".join(argv)
        assert "--resume --threads 1 --device cpu" in joined and "--seeds 0 1" in joined, joined
        args = parser.parse_args(argv)  # the CLI accepts them
        assert args.resume and args.threads == 1 and args.device == "cpu" and args.seeds == [0, 1]
    plain = " ".join(" ".join(argv) for argv in dry_run(" ".join(targets)))
    assert "--resume" not in plain and "--threads" not in plain and "--device" not in plain


def test_preset_reaches_the_tables_and_help_lists_the_variables():
    (argv,) = dry_run("table4", "PRESET=smoke")
    assert argv[argv.index("--preset") + 1] == "smoke"
    done = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in ("PRESET=", "SEEDS=", "RESUME=1", "THREADS=N", "DEVICE="):
        assert name in done.stdout, name
