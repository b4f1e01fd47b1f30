"""The training plug-ins changed how the engine is built, not what it computes: four reference runs recorded
before them (tests/reference_runs.py, from commit 26cab98) train bit for bit the same -- the same key, subset
metrics, history, method record and final weights -- and no run key of any table changed. Bit for bit holds per CPU
kind (vendor and vector unit): each kind has its own recorded set, and on a kind without one only the keys are
compared (the test says so)."""

import json

import pytest

from tests.reference_runs import GOLDEN, REFERENCE_RUNS, cpu_identity, reference_for, run_reference, table_keys

pytestmark = pytest.mark.slow
GOLDEN_VALUES = json.loads(GOLDEN.read_text(encoding="utf-8"))
#: Metrics a task's evaluation added after a set was recorded: present in a run, absent from an older record.
ADDED_METRICS = ("iou_",)  # MeanIoU's per-class IoU (issue #24)


@pytest.mark.parametrize("reference", REFERENCE_RUNS, ids=lambda r: r.name)
def test_reference_run_trains_bit_for_bit_as_before_the_plugins(reference, tmp_path):
    got = run_reference(reference, tmp_path)
    cpu = cpu_identity()
    recorded = reference_for(GOLDEN_VALUES, cpu)
    keys = {r["runs"][reference.name]["key"] for r in GOLDEN_VALUES["references"]}
    assert keys == {got["key"]}, "the run's key changed"
    if recorded is None:
        kinds = [f"{r['cpu']['vendor']} {r['cpu']['capability']}" for r in GOLDEN_VALUES["references"]]
        pytest.skip(
            f"no reference runs recorded on this CPU kind ({cpu['vendor']} {cpu['capability']}; recorded: {kinds}): "
            "only the key was compared (python -m tests.reference_runs records a set from a known-good commit)"
        )
    expected = recorded["runs"][reference.name]
    assert got["history"] == expected["history"]
    for subset, values in got["subsets"].items():
        assert {k: v for k, v in values.items() if k in expected["subsets"][subset]} == expected["subsets"][subset]
        added = [k for k in values if k not in expected["subsets"][subset]]
        assert all(k.startswith(ADDED_METRICS) for k in added), f"metrics neither recorded nor known: {added}"
    assert got["method"] == expected["method"]
    assert got["weights_sha256"] == expected["weights_sha256"]


def test_no_run_key_of_any_table_changed():
    now = table_keys()
    missing = sorted(set(GOLDEN_VALUES["table_keys"]) - set(now))
    assert not missing, f"runs no longer planned: {missing[:5]}"
    changed = {label: (key, now[label]) for label, key in GOLDEN_VALUES["table_keys"].items() if now[label] != key}
    assert not changed, f"{len(changed)} keys changed, e.g. {next(iter(changed.items()))}"
