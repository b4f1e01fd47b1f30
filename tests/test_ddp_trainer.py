"""The trainer under DDP, two gloo processes on CPU: the same run as one process on the same global batch, exact
resume of an interrupted two-process run, rank-0 I/O and sharded evaluation merged exactly.

What can differ between 2 processes and 1 (and why the first test compares to a tolerance): each process averages
the loss over its half of the global batch and DDP averages the two gradients, which equals the gradient of the
global mean only up to floating-point reduction order; MWAM sums its FRMs over the processes (float64), the same
sums in another order. On this host nothing else differs: it draws no random numbers in training (``dropout:
False``; SF-MD's per-sample modality draws come from per-process generators and would differ) and has no
BatchNorm (without SyncBatchNorm, which needs CUDA, each process would normalise over its own shard).
"""

import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo"),
]
SETTINGS = {"host": {"name": "toy", "options": {"aux_heads": True, "dropout": False}}, "train": {"batch_size": 6}}


def _worker(rank: int, world: int, init_file: str, out: str, root: str, scenario: str) -> None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    from mwam_harness.catalog import HOSTS, TASKS
    from mwam_harness.models.registry import ModelInfo
    from reproduce.engine import distributed
    from reproduce.engine.trainer import Trainer, TrainingInterruptedError
    from reproduce.runs.registry import Registry
    from tests.toy_run import RUNTIME, ToyHost, ToyTask, toy_config

    HOSTS.entries["toy"] = ModelInfo("toy", ToyHost)
    TASKS.entries["toy"] = ToyTask
    process = distributed.initialise()
    assert (process.rank, process.world_size) == (rank, world)

    def stop_on_rank_0(trainer, step):
        if rank == 0 and step == 6:  # mid-epoch; only rank 0 is asked: the request is agreed on by both
            trainer.request_stop()

    try:
        callbacks = [stop_on_rank_0] if scenario == "interrupt" else []
        trainer = Trainer(toy_config(root, **SETTINGS), Registry(os.path.join(out, "runs")), RUNTIME, callbacks)
        outcome = {"rank": rank}
        try:
            outcome["result"] = trainer.run(resume=scenario == "resume")
        except TrainingInterruptedError:
            outcome["interrupted"] = (trainer.epoch, trainer.step_in_epoch)
        outcome["weights"] = torch.cat([p.detach().flatten() for p in trainer.host.parameters()])
        outcome["shard"] = [len(b) for b in trainer.sampler.batches()]
        torch.save(outcome, os.path.join(out, f"{scenario}-rank{rank}.pt"))
    finally:
        distributed.shutdown()


def _spawn(tmp_path, root, scenario, out):
    init_file = tmp_path / f"init-{scenario}-{out.name}"
    mp.spawn(_worker, args=(2, str(init_file), str(out), str(root), scenario), nprocs=2, join=True)
    return [torch.load(out / f"{scenario}-rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture
def root(tmp_path):
    from tests.toy_run import toy_root

    return toy_root(tmp_path / "data")


@pytest.fixture
def single(tmp_path, root, monkeypatch):
    """The same run in this one process."""
    from reproduce.engine.trainer import Trainer
    from reproduce.runs.registry import Registry
    from tests.toy_run import RUNTIME, register_toy, toy_config

    register_toy(monkeypatch)
    trainer = Trainer(toy_config(root, **SETTINGS), Registry(tmp_path / "single" / "runs"), RUNTIME)
    result = trainer.run()
    return trainer, result


def test_two_processes_train_the_run_one_process_trains(tmp_path, root, single):
    trainer, result = single
    out = tmp_path / "ddp"
    ranks = _spawn(tmp_path, root, "whole", out)
    weights = torch.cat([p.detach().flatten() for p in trainer.host.parameters()])
    for rank in ranks:
        torch.testing.assert_close(rank["weights"], weights, rtol=1e-5, atol=1e-6)
    assert torch.equal(ranks[0]["weights"], ranks[1]["weights"]), "the replicas stay identical"
    first, second = (r["result"] for r in ranks)
    assert first == second, "every process returns the same result"
    assert first["world_size"] == 2 and first["per_process_batch"] == 3 and result["world_size"] == 1
    assert first["key"] == result["key"], "the global batch is the run's identity, not the per-process batch"
    assert set(first["subsets"]) == set(result["subsets"])
    for subset, values in result["subsets"].items():  # sharded evaluation, merged: the whole split's counts
        assert first["subsets"][subset] == pytest.approx(values, abs=1e-9), subset
    for ours, theirs in zip(first["history"], result["history"], strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5) and ours["lr"] == theirs["lr"]
        assert set(ours["val"]) == set(theirs["val"])
    assert ranks[0]["shard"] == [6, 6, 6, 6], "the sampler's batches are global ones"
    runs = out / "runs"
    assert len(list(runs.glob("*.json"))) == 1 and (runs / first["key"] / "model.pt").is_file()
    assert (runs / first["key"] / "curves.csv").is_file(), "rank 0 writes the curves"


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
def test_an_interrupted_two_process_run_resumes_exactly(tmp_path, root):
    whole = _spawn(tmp_path, root, "whole", tmp_path / "a")
    interrupted = _spawn(tmp_path, root, "interrupt", tmp_path / "b")
    assert [r["interrupted"] for r in interrupted] == [(1, 2), (1, 2)], "both processes stop at the same step"
    resumed = _spawn(tmp_path, root, "resume", tmp_path / "b")
    for done, again in zip(whole, resumed, strict=True):
        assert torch.equal(done["weights"], again["weights"])
        assert done["result"]["subsets"] == again["result"]["subsets"]
        assert done["result"]["history"] == again["result"]["history"]


def test_a_checkpoint_resumes_only_with_as_many_processes(tmp_path, root, monkeypatch):
    from reproduce.engine.trainer import Trainer
    from reproduce.runs.registry import Registry
    from tests.toy_run import RUNTIME, register_toy, toy_config

    _spawn(tmp_path, root, "interrupt", tmp_path / "b")
    register_toy(monkeypatch)
    with pytest.raises(ValueError, match="written by 2 processes"):
        Trainer(toy_config(root, **SETTINGS), Registry(tmp_path / "b" / "runs"), RUNTIME).run(resume=True)
