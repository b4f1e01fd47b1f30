"""A run's identity matches its numbers: a run whose processes each normalise BatchNorm over their own shard
(DDP without SyncBatchNorm) is another run than the one-process run (``train.batchnorm_shards``), while every
single-process key stays as it was; and a run configuration file with a key given twice is an error."""

import pytest
import torch
from torch import nn

from reproduce.engine.preflight import batchnorm_problem
from reproduce.runs.config import ConfigError, RunConfig
from reproduce.runs.runtime import Runtime, config_for_processes
from tests.toy_run import ToyHost

CPU, CUDA = Runtime(device="cpu"), Runtime(device="cuda")


@pytest.fixture
def config(root):
    return RunConfig.from_dict(
        {"data": {"dataset": "casia_surf", "root": str(root)}, "host": {"name": "sf_md"}, "train": {"batch_size": 8}}
    )


def test_one_and_two_cpu_processes_are_two_runs(config):
    one, two = config_for_processes(config, CPU, 1), config_for_processes(config, CPU, 2)
    assert one is config and one.key == config.key, "one process: the run and its key as before"
    assert two.key != one.key and two.train.batchnorm_shards == 2
    assert two.identity()["train"]["batchnorm_shards"] == 2 and "batchnorm_shards" not in one.identity()["train"]
    assert config_for_processes(config, CPU, 4).key not in (one.key, two.key)


def test_synchronised_batchnorm_on_cuda_is_the_one_process_run(config):
    assert config_for_processes(config, CUDA, 2).key == config.key
    unsynchronised = CUDA.replace(sync_batchnorm=False)
    assert config_for_processes(config, unsynchronised, 2).key == config_for_processes(config, CPU, 2).key
    assert config_for_processes(config, Runtime(device="auto"), 2, cuda=True).key == config.key
    assert config_for_processes(config, Runtime(device="auto"), 2, cuda=False).key != config.key


def test_the_setting_survives_the_saved_configuration_and_applies_once(config, tmp_path):
    """What the launcher writes (``config.yaml``) is what the torchrun ranks read: the same key."""
    import yaml

    two = config_for_processes(config, CPU, 2)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(two.to_dict()))
    again = RunConfig.from_yaml(path)
    assert again.key == two.key and config_for_processes(again, CPU, 2).key == two.key
    assert config_for_processes(two, CUDA, 2).key == config.key, "planned on a GPU: back to the one-process run"


def test_the_default_keeps_every_single_process_key(config):
    explicit = config.with_overrides({"train": {"batchnorm_shards": 1}})
    assert explicit.key == config.key and explicit.identity() == config.identity()
    with pytest.raises(ConfigError, match=r"train\.batchnorm_shards must be an integer >= 1"):
        config.with_overrides({"train": {"batchnorm_shards": 0}})


def test_preflight_refuses_a_process_layout_the_key_does_not_record(config):
    batchnorm = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    problem = batchnorm_problem(config, batchnorm, world_size=2, synchronised=False)
    assert problem and "train.batchnorm_shards is 1 but 2 processes each normalise BatchNorm" in problem
    assert "set train.batchnorm_shards: 2" in problem
    assert batchnorm_problem(config, batchnorm, world_size=2, synchronised=True) is None
    assert batchnorm_problem(config, batchnorm, world_size=1, synchronised=False) is None
    two = config_for_processes(config, CPU, 2)
    assert batchnorm_problem(two, batchnorm, world_size=2, synchronised=False) is None
    assert "is 2 but BatchNorm is normalised over the whole batch" in batchnorm_problem(two, batchnorm, 1, False)
    assert batchnorm_problem(config, ToyHost(), world_size=2, synchronised=False) is None, "no BatchNorm: no matter"
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in ToyHost().modules())


# ---------------------------------------------------------------- duplicated keys in a configuration file
RUN = """\
data:
  dataset: casia_surf
  root: {root}
host:
  name: sf_md
train:
  epochs: 3
  batch_size: 4
{extra}"""


@pytest.mark.parametrize(
    "extra, key, line, first",
    [
        ("  epochs: 5\n", "epochs", 9, 7),  # in a section
        ("host:\n  name: rfnet\n", "host", 9, 4),  # a whole section twice
        ("runtime:\n  workers: 1\n  workers: 2\n", "workers", 11, 10),  # in the runtime section
    ],
)
def test_a_key_given_twice_is_an_error_naming_it_and_its_lines(root, tmp_path, extra, key, line, first):
    path = tmp_path / "run.yaml"
    path.write_text(RUN.format(root=root, extra=extra))
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_yaml(path)
        Runtime.from_yaml(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: duplicated key {key!r} on line {line} (first given on line {first})")


def test_distinct_keys_and_yaml_merge_keys_still_load(root, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(RUN.format(root=root, extra="eval: {batch_size: 8}\n"))
    assert RunConfig.from_yaml(path).eval.batch_size == 8
    path.write_text(RUN.format(root=root, extra="runtime:\n  <<: {workers: 1, log_every: 3}\n  workers: 2\n"))
    runtime = Runtime.from_yaml(path)
    assert (runtime.workers, runtime.log_every) == (2, 3), "a merged key may be overridden, as YAML means"
