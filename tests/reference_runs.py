"""Reference runs recorded before the training plug-ins replaced the trainer's built-in MWAM / SDE / method code
(commit 26cab98), which the refactored engine must reproduce bit for bit (``tests/test_reference_runs.py``), and
the keys of every table's runs, which must not change.

Each reference run is one column of a trainable table on a tiny synthetic set (the smoke preset shrunk), trained
through ``run_table`` exactly as a user's ``make tableN PRESET=smoke`` trains it. What is compared: the run's key,
every subset's metrics, its history (losses, SDE terms, learning rates, MMANet's search), what the method adds to
its record, and a SHA-256 of its final weights.

Bit-for-bit holds on one kind of CPU only: MKL and oneDNN pick their kernels (and so their summation order) by the
CPU's vendor and vector unit, and a two-step run amplifies the last-bit differences (an AMD EPYC with AVX-512 gives
another ESANet-MD MIoU than an Intel Xeon with AVX-512, from the same commit). The file therefore holds one set of
reference runs per CPU kind (``cpu_identity``: vendor and torch's CPU capability); the test compares against the
set of the CPU it runs on and skips the comparison, saying so, on a kind with no set.

``python -m tests.reference_runs`` records the set of this CPU kind into ``tests/data/reference_runs.json`` (the
other kinds' sets are kept), and the table keys -- only ever from a commit whose numbers are the reference (one
that passes the test on a recorded kind): the point of the file is that it is *not* rewritten by the code it
checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

GOLDEN = Path(__file__).resolve().parent / "data" / "reference_runs.json"


@dataclasses.dataclass(frozen=True)
class ReferenceRun:
    """One column of Table ``table`` on the shrunk smoke preset of ``dataset``."""

    name: str
    table: int
    column: str
    dataset: str


REFERENCE_RUNS = (
    # CASIA-SURF: MWAM's hybrid (gradient hooks + Eq. 7) with SDE on SF-MD; MMANet's method and teacher with MWAM.
    ReferenceRun("casia_sf_md_mwam_sde", 4, "SF-MD +MWAM +SDE", "casia_surf"),
    ReferenceRun("casia_mmanet_mwam", 4, "MMANet +MWAM", "casia_surf"),
    # BraTS2020: RFNet (smoke) with MWAM's gradient editing and SDE on the deepest encoder level.
    ReferenceRun("brats_rfnet_mwam_sde", 2, "RFNet +MWAM +SDE", "brats2020"),
    # NYU-Depth V2: ESANet-MD (smoke) with MWAM's gradient editing.
    ReferenceRun("nyuv2_esanet_md_mwam", 3, "ESANet-MD +MWAM", "nyuv2"),
)

#: The smoke presets shrunk to seconds per run: (run settings, generator arguments) per data set.
TINY: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "casia_surf": (
        {
            "data": {"options": {"resize": 48, "crop": 36}},
            "train": {"epochs": 2, "batch_size": 4, "iterations_per_epoch": 2, "deterministic": True},
            "eval": {"batch_size": 8},
        },
        {"num_train": 16, "num_val": 8, "num_test": 8, "size": 48},
    ),
    "brats2020": (
        {
            "data": {"options": {"crop": 16}},
            "train": {"epochs": 2, "batch_size": 2, "iterations_per_epoch": 2, "deterministic": True},
        },
        {"num_cases": 4, "shape": (24, 24, 16), "split": (2, 1, 1)},
    ),
    "nyuv2": (
        {
            "data": {"options": {"height": 32, "width": 32}},
            "train": {"epochs": 2, "batch_size": 2, "iterations_per_epoch": 2, "deterministic": True},
            "eval": {"batch_size": 1},
        },
        {"num_train": 4, "num_test": 1, "height": 32, "width": 32},
    ),
}

#: The smoke preset's settings the reference runs do not take: NYUv2's smoke hosts became ESANet's ResNet-18 model
#: (2026-12-08, to keep the smoke weights small) after the runs were recorded; its reference run keeps the paper's
#: ResNet-50 hosts it was recorded with.
TINY_WITHOUT: dict[str, tuple[str, ...]] = {"nyuv2": ("hosts", "teacher_host_options")}

RUNTIME_SETTINGS = {
    "device": "cpu",
    "progress": False,
    "wandb": "disabled",
    "val_every": 0,
    "log_every": 1,
    "checkpoint_every": 0,
}


@contextlib.contextmanager
def tiny_smoke_presets() -> Iterator[None]:
    """Replace the smoke presets of the reference data sets by their tiny versions (restored on exit)."""
    import importlib

    from reproduce.runs.overrides import deep_merge

    saved = []
    try:
        for dataset, (run, generator) in TINY.items():
            presets = importlib.import_module(f"mwam_harness.datasets.{dataset}").PRESETS
            smoke = presets["smoke"]
            saved.append((presets, smoke))
            changes: dict[str, Any] = {"run": deep_merge(smoke.run, run), "generator": generator}
            if "hosts" in TINY_WITHOUT.get(dataset, ()):
                changes["hosts"] = {}
            if "teacher_host_options" in TINY_WITHOUT.get(dataset, ()):
                changes["methods"] = {
                    method: {k: v for k, v in options.items() if k != "teacher_host_options"}
                    for method, options in smoke.methods.items()
                }
            presets["smoke"] = dataclasses.replace(smoke, **changes)
        yield
    finally:
        for presets, smoke in saved:
            presets["smoke"] = smoke


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state dict's tensors, in key order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def run_reference(reference: ReferenceRun, results_dir: Path) -> dict[str, Any]:
    """Train ``reference`` under ``results_dir`` and return what is compared."""
    from reproduce.experiments import run_table
    from reproduce.paths import results_root_set_to
    from reproduce.runs.registry import Registry
    from reproduce.runs.runtime import Runtime
    from reproduce.tables.specs import table_runs

    runtime = Runtime(**RUNTIME_SETTINGS)
    spec = table_runs(reference.table)
    extensions = tuple(e for e in spec.extensions if spec.column(reference.column).extension == e)
    with tiny_smoke_presets():
        run_table(
            reference.table,
            "smoke",
            runtime=runtime,
            output_dir=results_dir / "out",
            results_dir=results_dir,
            columns=[reference.column],
            extensions=extensions,
        )
        from mwam_harness.datasets import dataset_spec

        preset = dataset_spec(reference.dataset).preset("smoke")
        with results_root_set_to(results_dir):
            config, _ = spec.configs(None, preset, columns=[reference.column], extensions=extensions)[0]
            registry = Registry()
            result = registry.load(config)
            state = torch.load(registry.weights_path(config), map_location="cpu", weights_only=False)["host"]
    return {
        "key": result["key"],
        "subsets": result["subsets"],
        "history": result["history"],
        "method": result["method"],
        "weights_sha256": weights_digest(state),
    }


def table_keys() -> dict[str, str]:
    """The key of every run (columns with every extension, and their dependencies) of every trainable table under
    each preset, the data fingerprint replaced by a constant per data set (so that no data are needed)."""
    from unittest import mock

    from reproduce.experiments import plan_table
    from reproduce.runs.config import DataConfig
    from reproduce.tables.specs import TABLE_RUNS

    keys: dict[str, str] = {}
    with mock.patch.object(DataConfig, "fingerprint", lambda self: f"fingerprint-of-{self.dataset}"):
        for number, spec in sorted(TABLE_RUNS.items()):
            for preset in ("paper", "smoke", "demo"):
                plan = plan_table(number, preset, extensions=spec.extensions, require_data=False)
                for planned in plan.plan:
                    c = planned.config
                    label = f"table {number} / {preset} / {planned.runtime.column} / seed {c.seed}"
                    keys[label] = c.key
    return keys


def cpu_identity() -> dict[str, str]:
    """The CPU kind a reference set belongs to: the vendor (``/proc/cpuinfo``'s ``vendor_id``, else the platform's
    processor string) and torch's CPU capability (``AVX2``, ``AVX512``, ...)."""
    import platform

    vendor = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("vendor_id"):
                vendor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "vendor": vendor or platform.processor() or "unknown",
        "capability": torch.backends.cpu.get_cpu_capability(),
    }


def reference_for(golden: dict[str, Any], cpu: dict[str, str]) -> dict[str, Any] | None:
    """The recorded set of CPU kind ``cpu`` (with its ``runs``), or None."""
    return next((r for r in golden["references"] if r["cpu"] == cpu), None)


def record(path: Path = GOLDEN) -> dict[str, Any]:
    """Record this CPU kind's reference runs (replacing its earlier set, keeping the others') and the table keys."""
    torch.set_num_threads(1)
    runs = {}
    for reference in REFERENCE_RUNS:
        with tempfile.TemporaryDirectory() as directory:
            runs[reference.name] = run_reference(reference, Path(directory))
        print(f"recorded {reference.name}", file=sys.stderr)
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    golden = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"references": []}
    cpu = cpu_identity()
    entry = {"cpu": cpu, "recorded_at_commit": commit, "torch": torch.__version__, "runs": runs}
    golden["references"] = [r for r in golden["references"] if r["cpu"] != cpu] + [entry]
    golden["table_keys"] = table_keys()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return golden


if __name__ == "__main__":
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("WANDB_MODE", "disabled")
    record()
