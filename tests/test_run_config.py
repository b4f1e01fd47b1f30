"""The run configuration (schema 2): pure data, validated, keys that survive new defaulted fields and moved data."""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reproduce.runs.config import (
    SCHEMA,
    ConfigError,
    DataConfig,
    HostConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    merge_settings,
)
from reproduce.runs.overrides import parse_assignment, parse_assignments
from reproduce.runs.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]


def surf(root, **sections):
    base = {"data": {"dataset": "casia_surf", "root": str(root)}, "host": {"name": "sf_md"}}
    return RunConfig.from_dict(merge_settings(base, sections))


def test_building_a_config_imports_no_torch(root):
    """Pure data: a run with MMANet, MWAM and SDE options is validated, keyed and planned without torch (or NumPy,
    OpenCV), and so is ``table 4 --dry-run``."""
    code = f"""
import sys
from reproduce.runs.config import RunConfig
config = RunConfig.from_dict({{
    "data": {{"dataset": "casia_surf", "root": {str(root)!r}, "modalities": ["rgb", "depth"]}},
    "host": {{"name": "mmanet"}},
    "method": {{"name": "mmanet", "options": {{"begin_epoch": 3, "search_epochs": [1]}}}},
    "mwam": {{"intervention": "grad", "options": {{"window": 4}}}},
    "sde": {{"enabled": True, "options": {{"rho": 0.1}}}},
    "schedule": {{"name": "poly", "power": 0.9}},
    "optim": {{"name": "adam", "lr": 2e-4, "amsgrad": True}},
}})
print(config.key)
from reproduce.engine.plan import plan_runs
from reproduce.runs.runtime import Runtime
plan_runs([(config, Runtime())])
import contextlib, io
from reproduce.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["table", "4", "--dry-run", "--json"]) == 0  # the paper preset's plan, without data
loaded = sorted(m for m in ("torch", "numpy", "cv2", "reproduce.engine.trainer") if m in sys.modules)
print(loaded)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    key, loaded = done.stdout.split()
    assert len(key) == 16 and loaded == "[]"


def test_sections_hold_their_settings_and_defaults_are_the_papers(root):
    config = surf(root)
    assert config.optim == OptimConfig() and config.optim.lr == 1e-3 and config.optim.nesterov
    assert config.schedule.milestones == (30, 60, 90) and config.train.batch_size == 64 and config.train.epochs == 100
    assert config.mwam.intervention == "none" and not config.sde.enabled and config.method.name == "standard"
    assert config.modalities == ("rgb", "depth", "ir") and config.task_name == "classification"


def test_identity_drops_defaults_at_every_level_and_names_the_data_by_fingerprint(root):
    plain = surf(root)
    identity = plain.identity()
    assert identity["schema"] == SCHEMA and set(identity) == {"schema", "data", "host"}
    assert set(identity["data"]) == {"dataset", "fingerprint"} and "root" not in identity["data"]
    spelled_out = surf(
        root,
        optim={"lr": 1e-3, "momentum": 0.9},
        schedule={"milestones": [30, 60, 90]},
        mwam={"intervention": "none", "options": {"window": 2}},
        data={"modalities": ["ir", "rgb", "depth"]},
        method={"name": "standard", "options": {}},
        seed=0,
    )
    assert spelled_out.key == plain.key, "spelling out a default changes nothing"
    changed = surf(root, optim={"lr": 2e-3})
    assert changed.identity()["optim"] == {"lr": 2e-3} and changed.key != plain.key
    assert surf(root, mwam={"options": {"window": 4}}).identity()["mwam"] == {"options": {"window": 4}}


def test_a_new_field_with_a_default_leaves_every_key_unchanged(root):
    config = surf(root, train={"epochs": 7})
    Extended = dataclasses.make_dataclass(  # a later version of the train section, with one more setting
        "TrainConfig",
        [("gradient_clip", float | None, dataclasses.field(default=None))],
        bases=(TrainConfig,),
        frozen=True,
    )
    extended = dataclasses.replace(config, train=Extended(epochs=7))
    assert extended.identity() == config.identity() and extended.key == config.key
    assert dataclasses.replace(config, train=Extended(epochs=7, gradient_clip=1.0)).key != config.key
    Later = dataclasses.make_dataclass(
        "RunConfig", [("compile", bool, dataclasses.field(default=False))], bases=(RunConfig,), frozen=True
    )
    assert Later(data=config.data, host=config.host, train=config.train).key == config.key


def test_moving_the_data_keeps_the_key_and_other_data_change_it(tmp_path, root):
    moved = tmp_path / "elsewhere" / "surf"
    shutil.copytree(root, moved)
    assert surf(moved).key == surf(root).key
    (moved / "train_list.txt").write_text("another list\n")
    assert surf(moved).key != surf(root).key
    (moved / "synthetic.json").unlink()
    (moved / "train_list.txt").write_text((root / "train_list.txt").read_text())
    assert surf(moved).key != surf(root).key, "a synthetic set's parameters are part of its fingerprint"


def test_missing_data_is_a_clear_error_when_the_key_is_asked_for(tmp_path):
    config = RunConfig.from_dict(
        {"data": {"dataset": "casia_surf", "root": str(tmp_path / "none")}, "host": {"name": "sf"}}
    )
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        _ = config.key
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "train_list.txt").write_text("x\n")
    with pytest.raises(FileNotFoundError, match=r"val_private_list\.txt: missing list file"):
        _ = surf(tmp_path / "half").key
    with pytest.raises(ConfigError, match="no root"):
        _ = RunConfig.from_dict({"data": {"dataset": "casia_surf"}, "host": {"name": "sf"}}).key


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"trian": {}}, r"unknown keys \['trian'\]"),
        ({"train": {"epoch": 3}}, r"config: train: unknown keys \['epoch'\]"),
        ({"train": {"epochs": 0}}, "train.epochs must be an integer >= 1"),
        ({"optim": {"name": "rmsprop"}}, "optim.name must be one of sgd, adam, adamw"),
        ({"optim": {"name": "adam", "momentum": 0.5}}, "optim 'adam' does not use 'momentum'"),
        ({"schedule": {"milestones": [5, 2]}}, "milestones must be increasing"),
        ({"schedule": {"interval": "step"}}, "schedule.interval must be one of epoch, iteration"),
        ({"mwam": {"intervention": "gradient"}}, "mwam.intervention must be one of off, none"),
        ({"mwam": {"options": {"windw": 4}}}, "unknown options"),
        ({"mwam": {"options": {"window": 9}}}, "window must be an integer"),
        (
            {"mwam": {"intervention": "off", "options": {"window": 4}}},
            "mwam.options given but mwam.intervention is off",
        ),
        ({"data": {"dataset": "surf"}}, "unknown data set 'surf'"),
        ({"data": {"modalities": ["rgb", "thermal"]}}, "data.modalities must be distinct modalities"),
        ({"data": {"root": None, "synthetic": "paper"}}, "data.synthetic must be one of smoke, demo"),
        ({"method": {"name": "ogm"}}, "unknown method 'ogm'"),
        ({"seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_bad_settings_are_errors_that_name_the_key(root, values, message):
    with pytest.raises(ConfigError, match=message):
        surf(root, **values)


def test_switching_the_kind_of_optimiser_schedule_or_host_drops_the_old_kinds_settings(root):
    step = surf(root, schedule={"milestones": [3]}, host={"name": "sf_md", "options": {"aux_heads": True}})
    poly = step.with_overrides({"schedule": {"name": "poly"}, "optim": {"name": "adamw", "lr": 2e-4}})
    assert poly.schedule == ScheduleConfig(name="poly") and poly.optim.name == "adamw" and poly.optim.lr == 2e-4
    assert poly.optim.weight_decay == step.optim.weight_decay, "settings both kinds read are kept"
    assert step.with_overrides({"host": {"name": "sf"}}).host == HostConfig("sf")
    assert step.with_overrides({"host": {"options": {"features": True}}}).host.options == {
        "aux_heads": True,
        "features": True,
    }
    shown = {"name", "interval", "preset", "skip_epochs", "power"}
    assert set(poly.to_dict()["schedule"]) == shown, "to_dict shows what the kind reads"


def test_yaml_round_trip_and_command_line_assignments(tmp_path, root):
    import yaml

    config = surf(root, train={"epochs": 3}, mwam={"intervention": "hybrid"}, schedule={"milestones": [1, 2]})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**config.to_dict(), "runtime": {"log_every": 3, "column": "x"}}))
    assert RunConfig.from_yaml(path) == config
    assert Runtime.from_yaml(path) == Runtime(log_every=3, column="x")
    assert parse_assignment("optim.lr=0.01") == {"optim": {"lr": 0.01}}
    assert parse_assignment("schedule.milestones=[16,33,50]") == {"schedule": {"milestones": [16, 33, 50]}}
    assert parse_assignments(["train.epochs=2", "train.amp=off", "train.epochs=4"]) == {
        "train": {"epochs": 4, "amp": False}
    }
    assert surf(root, **parse_assignments(["train.amp=off", "mwam.intervention=off"])).mwam.intervention == "off"
    with pytest.raises(ValueError, match=r"KEY\.PATH=VALUE"):
        parse_assignment("optim.lr")
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        RunConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="no such configuration file"):
        RunConfig.from_yaml(tmp_path / "missing.yaml")


def test_runtime_is_never_part_of_the_identity(root):
    config = surf(root)
    assert "runtime" not in json.dumps(config.identity())
    assert Runtime(device="cuda", workers=8, wandb="online", table=5, column="Hybrid").to_dict()["column"] == "Hybrid"
    with pytest.raises(ConfigError, match=r"runtime\.wandb must be one of"):
        Runtime(wandb="cloud")
    with pytest.raises(ConfigError, match="unknown keys"):
        Runtime.from_dict({"devices": "cpu"})


def test_data_sections_validate_against_the_registered_data_set(root):
    assert DataConfig("casia_surf", root=str(root), modalities=("depth", "rgb")).modalities == ("rgb", "depth")
    assert DataConfig("casia_surf", root=str(root), modalities=("ir", "depth", "rgb")).modalities is None
    with pytest.raises(ConfigError, match="either root"):
        DataConfig("casia_surf", root=str(root), synthetic="smoke")
