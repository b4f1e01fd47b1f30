"""Learning-rate schedules (pure functions the trainer and --dry-run share) and the epoch sampler."""

import bisect

import pytest
import torch

from reproduce.engine.optimization import build_optimization
from reproduce.engine.sampler import EpochBatchSampler
from reproduce.runs.config import OptimConfig, ScheduleConfig
from reproduce.runs.schedules import lr_factor, lr_per_epoch


def previous_lr_factor(epoch, warmup_epochs, milestones, gamma):
    """The engine's schedule before schema 2 (its CASIA-SURF runs must keep their learning rates)."""
    if epoch < warmup_epochs:
        return (epoch + 1) / warmup_epochs
    return gamma ** bisect.bisect_right(list(milestones), epoch)


@pytest.mark.parametrize(
    ("warmup", "milestones"), [(5, (30, 60, 90)), (5, (16, 33, 50)), (1, ()), (1, (5,)), (0, (2,))]
)
def test_step_schedule_equals_the_previous_one_bit_for_bit(warmup, milestones):
    schedule = ScheduleConfig(warmup_epochs=warmup, milestones=milestones)
    for epoch in range(100):
        assert lr_factor(schedule, epoch, 1, 100) == previous_lr_factor(epoch, warmup, milestones, 0.1)


def _torch_lrs(scheduler_factory, steps):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    scheduler = scheduler_factory(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_onecycle_matches_torch(monkeypatch):
    schedule = ScheduleConfig(name="onecycle", pct_start=0.1, div_factor=25, final_div_factor=1e4)
    epochs = 50
    ours = lr_per_epoch(schedule, 0.01, epochs, 1)
    theirs = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.01, total_steps=epochs, pct_start=0.1, div_factor=25, final_div_factor=1e4, cycle_momentum=False
        ),
        epochs,
    )
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-15)
    linear = ScheduleConfig(name="onecycle", anneal="linear")
    theirs = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.01, total_steps=40, anneal_strategy="linear", cycle_momentum=False
        ),
        40,
    )
    assert lr_per_epoch(linear, 0.01, 40, 1) == pytest.approx(theirs, rel=1e-9, abs=1e-15)


def test_poly_is_rfnets_and_per_iteration_schedules_count_iterations():
    poly = ScheduleConfig(name="poly")
    assert lr_per_epoch(poly, 2e-4, 300, 150)[:3] == [2e-4 * (1 - e / 300) ** 0.9 for e in range(3)]
    per_iteration = ScheduleConfig(name="poly", interval="iteration", power=1.0)
    assert lr_per_epoch(per_iteration, 1.0, 4, 10) == [1.0, 0.75, 0.5, 0.25]
    assert lr_per_epoch(ScheduleConfig(name="constant"), 0.1, 3, 1) == [0.1, 0.1, 0.1]


def test_the_trainers_scheduler_follows_the_schedule():
    params = [torch.nn.Parameter(torch.zeros(2))]
    schedule = ScheduleConfig(warmup_epochs=2, milestones=(3,))
    optimizer, scheduler = build_optimization(params, OptimConfig(lr=0.1), schedule, 7, 5)
    seen = []
    for _ in range(5):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == lr_per_epoch(schedule, 0.1, 5, 7) == [0.05, 0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1]
    adam, _ = build_optimization(params, OptimConfig(name="adam", lr=2e-4, amsgrad=True), schedule, 1, 5)
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["amsgrad"] and adam.defaults["weight_decay"] == 5e-4


def test_sampler_batches_depend_on_seed_and_epoch_and_cover_one_pass():
    sampler = EpochBatchSampler(22, 5, seed=1)
    first = sampler.batches()
    assert len(first) == sampler.batches_per_epoch == 4 and len({i for b in first for i in b}) == 20
    assert EpochBatchSampler(22, 5, seed=1).batches() == first
    sampler.set_epoch(1)
    assert sampler.batches() != first
    sampler.set_epoch(0, start=3)
    assert list(sampler) == first[3:] and len(sampler) == 1


def test_sampler_iterations_beyond_one_pass_and_shards_of_the_global_batch():
    long = EpochBatchSampler(10, 4, seed=0, iterations=6)
    batches = long.batches()
    assert len(batches) == 6 and all(len(b) == 4 for b in batches)
    assert batches[:2] == EpochBatchSampler(10, 4, seed=0).batches(), "the first pass's batches come first"
    assert sorted(i for b in batches[:2] for i in b) != sorted(i for b in batches[2:4] for i in b)
    shards = [list(EpochBatchSampler(10, 4, seed=0, iterations=6, rank=r, world_size=2)) for r in range(2)]
    assert [a + b for a, b in zip(*shards, strict=True)] == batches
    with pytest.raises(ValueError, match="split evenly over 3 processes"):
        EpochBatchSampler(10, 4, seed=0, world_size=3)
    with pytest.raises(ValueError, match="larger than the data set"):
        EpochBatchSampler(3, 4, seed=0)
    assert EpochBatchSampler(3, 4, seed=0, iterations=2).batches_per_epoch == 2


def test_onecycle_cycles_momentum_as_torch_and_a_reloaded_scheduler_sets_it():
    schedule = ScheduleConfig(name="onecycle", pct_start=0.1, div_factor=25, final_div_factor=1e4, cycle_momentum=True)
    epochs = 30
    optim = OptimConfig(name="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True)
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer, scheduler = build_optimization(params, optim, schedule, 1, epochs)
    ref_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01, momentum=0.9, nesterov=True)
    reference = torch.optim.lr_scheduler.OneCycleLR(
        ref_optimizer, max_lr=0.01, total_steps=epochs, pct_start=0.1, div_factor=25, final_div_factor=1e4
    )  # torch's default cycle_momentum=True, base 0.85, max 0.95: what ESANet's and MMANet's scripts run
    states = []
    for _ in range(epochs):
        assert optimizer.param_groups[0]["momentum"] == pytest.approx(ref_optimizer.param_groups[0]["momentum"])
        assert optimizer.param_groups[0]["lr"] == pytest.approx(ref_optimizer.param_groups[0]["lr"], abs=1e-15)
        states.append((scheduler.state_dict(), optimizer.param_groups[0]["momentum"]))
        optimizer.step(), ref_optimizer.step()
        scheduler.step(), reference.step()
    fresh_optimizer, fresh = build_optimization([torch.nn.Parameter(torch.zeros(1))], optim, schedule, 1, epochs)
    import io

    buffer = io.BytesIO()
    torch.save(states[12][0], buffer)  # a checkpoint holds it: picklable
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=False))
    assert fresh_optimizer.param_groups[0]["momentum"] == pytest.approx(states[12][1])
    assert min(m for _, m in states) == pytest.approx(0.85, abs=1e-3) and states[0][1] == pytest.approx(0.95)
    _, plain = build_optimization(params, optim, ScheduleConfig(name="onecycle"), 1, epochs)
    assert plain.optimizer.param_groups[0]["momentum"] == 0.9, "without cycle_momentum the momentum stays"
