import os

# Before torch is imported: one intra-op thread. Under CPU load torch's thread pool stalls the tests 5-9x; the
# tensors here are tiny, so one thread is also the fastest (subprocesses inherit the variable).
os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("WANDB_MODE", "disabled")
for name in ("MWAM_RESULTS_DIR", "MWAM_DATA_ROOT"):  # a user's settings must not leak into the tests
    os.environ.pop(name, None)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
# Every test sees the same random numbers whatever worker runs it and whatever ran before: values drawn while the
# modules are collected (parametrize lists) start from this seed, and each test starts from its own (below). A
# statistical assertion on an unseeded draw fails now and then (CI stop 30: a 49x4 noise matrix that SDE's split
# calls signal in 1.3% of draws).
torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _seeded():
    """Each test starts from torch's and Python's seed 0."""
    import random

    random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def toy(monkeypatch):
    """Host ``toy`` and task ``toy`` registered for one test (tests/toy_run.py)."""
    from tests.toy_run import register_toy

    register_toy(monkeypatch)


@pytest.fixture
def root(tmp_path):
    """A data root with CASIA-SURF's list files and a synthetic marker: what a toy run's key fingerprints."""
    from tests.toy_run import toy_root

    return toy_root(tmp_path / "data")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
