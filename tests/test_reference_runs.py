"""The training plug-ins changed how the engine is built, not what it computes: four reference runs recorded
before them (tests/reference_runs.py, from commit 26cab98) train bit for bit the same -- the same key, subset
metrics, history, method record and final weights -- and no run key of any table changed."""

import json

import pytest
import torch

from tests.reference_runs import GOLDEN, REFERENCE_RUNS, run_reference, table_keys

pytestmark = pytest.mark.slow
GOLDEN_VALUES = json.loads(GOLDEN.read_text(encoding="utf-8"))


def close(a, b, rel=1e-3, tolerance=1e-6) -> bool:
    """Nested data equal, numbers within ``rel`` (or ``tolerance`` near zero)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel, tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, rel, tolerance) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return a == pytest.approx(b, rel=rel, abs=tolerance)
    return a == b


@pytest.mark.parametrize("reference", REFERENCE_RUNS, ids=lambda r: r.name)
def test_reference_run_trains_bit_for_bit_as_before_the_plugins(reference, tmp_path):
    expected = GOLDEN_VALUES["runs"][reference.name]
    got = run_reference(reference, tmp_path)
    assert got["key"] == expected["key"], "the run's key changed"
    if torch.backends.cpu.get_cpu_capability() != GOLDEN_VALUES["cpu_capability"]:
        # Recorded on another vector unit (AVX2 / AVX-512 kernels round differently): within float noise.
        for name in ("history", "subsets", "method"):
            assert close(got[name], expected[name]), name
        return
    assert got["history"] == expected["history"]
    assert got["subsets"] == expected["subsets"]
    assert got["method"] == expected["method"]
    assert got["weights_sha256"] == expected["weights_sha256"]


def test_no_run_key_of_any_table_changed():
    now = table_keys()
    missing = sorted(set(GOLDEN_VALUES["table_keys"]) - set(now))
    assert not missing, f"runs no longer planned: {missing[:5]}"
    changed = {label: (key, now[label]) for label, key in GOLDEN_VALUES["table_keys"].items() if now[label] != key}
    assert not changed, f"{len(changed)} keys changed, e.g. {next(iter(changed.items()))}"
