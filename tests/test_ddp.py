"""Two processes on CPU (gloo): every rank must use the same K, equal to the K of the global batch."""

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


def _worker(rank: int, world: int, init_file: str, out_dir: str, sync: bool) -> None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import torch.nn.functional as F

    from mwam import MWAM
    from tests.toy_host import ToyHost, toy_batch

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        host = ToyHost()
        model = torch.nn.parallel.DistributedDataParallel(host)
        mwam = MWAM.for_host(host, sync_ranks=sync)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        weights = []
        for step in range(3):
            x = toy_batch(seed=10 * step + rank)  # each rank sees different data
            if rank == 1:
                x["depth"] = x["depth"] * 5.0  # and rank 1's depth is very different
            weights.append(mwam.step(x))
            fused, _ = model(x)
            F.cross_entropy(fused, torch.tensor([0, 1, 0, 1])).backward()
            optimizer.step()
            optimizer.zero_grad()
        params = torch.cat([p.detach().flatten() for p in host.parameters()])
        torch.save({"weights": torch.stack(weights), "params": params}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _run(tmp_path, sync: bool):
    init_file = str(tmp_path / "init")
    mp.spawn(_worker, args=(2, init_file, str(tmp_path), sync), nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]


def test_ranks_agree_and_match_the_global_batch(tmp_path):
    from mwam import MWAM
    from tests.toy_host import ToyHost, toy_batch

    rank0, rank1 = _run(tmp_path, sync=True)
    torch.testing.assert_close(rank0["weights"], rank1["weights"], rtol=0, atol=0)
    torch.testing.assert_close(rank0["params"], rank1["params"], rtol=0, atol=0)
    # a single process that sees both ranks' samples at once computes the same weights
    single = MWAM.for_host(ToyHost(), intervention="none")
    for step in range(3):
        parts = []
        for rank in range(2):
            x = toy_batch(seed=10 * step + rank)
            if rank == 1:
                x["depth"] = x["depth"] * 5.0
            parts.append(x)
        merged = {m: torch.cat([p[m] for p in parts]) for m in parts[0]}
        torch.testing.assert_close(single.step(merged), rank0["weights"][step], rtol=1e-6, atol=1e-7)


def test_without_reduction_each_rank_weights_its_own_shard(tmp_path):
    """The reduction is what makes K a property of the global batch rather than of each shard."""
    rank0, rank1 = _run(tmp_path, sync=False)
    assert not torch.allclose(rank0["weights"], rank1["weights"])
