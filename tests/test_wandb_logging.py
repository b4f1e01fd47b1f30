"""What W&B receives: per-epoch metrics of every subset on the split a run monitors, the groups that keep a
dependency (teacher, GSS stage) beside its student, and the table a table command logs."""

from __future__ import annotations

import pytest

from reproduce.engine.plan import plan_runs
from reproduce.engine.trainer import Trainer
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime
from reproduce.tables.specs import table_runs
from reproduce.tracking import Tracker, wandb_grouping
from tests.toy_run import RUNTIME, toy_config, weights


@pytest.fixture
def logged(monkeypatch):
    """Every ``Tracker.log`` call's values (the tracker itself disabled)."""
    calls: list[dict] = []
    monkeypatch.setattr(Tracker, "log", lambda self, values, step: calls.append(dict(values)))
    return calls


@pytest.mark.usefixtures("toy")
def test_a_monitored_split_is_logged_under_its_own_name_and_every_subset_now_and_then(tmp_path, root, logged):
    runtime = RUNTIME.replace(val_split="test", val_subsets="full", val_all_every=2)
    trainer = Trainer(toy_config(root, train={"epochs": 2}), Registry(tmp_path / "a"), runtime)
    result = trainer.run()
    full = list(result["subsets"])[-1]
    assert [list(e["val"]) for e in result["history"]] == [[full], list(result["subsets"])]
    assert {e["val_split"] for e in result["history"]} == {"test"}
    keys = {k for values in logged for k in values}
    assert {f"monitor_test/{s}/acc" for s in result["subsets"]} <= keys
    assert not any(k.startswith(("val/", "test/")) for k in keys)  # never mistaken for the final test numbers
    plain = Trainer(toy_config(root, train={"epochs": 2}), Registry(tmp_path / "b"), RUNTIME.replace(val_every=0))
    plain.run()
    assert (weights(trainer.host) == weights(plain.host)).all()  # monitoring draws no randomness


@pytest.mark.usefixtures("toy")
def test_validation_logs_every_subset_per_epoch_by_default(tmp_path, root, logged):
    result = Trainer(toy_config(root, train={"epochs": 1}), Registry(tmp_path), RUNTIME).run()
    keys = {k for values in logged for k in values}
    assert {f"val/{s}/acc" for s in result["subsets"]} <= keys


def test_every_data_set_logs_per_subset_metrics_per_epoch_in_its_synthetic_presets():
    """CASIA-SURF validates every subset each epoch, BraTS every subset every few epochs, NYUv2 monitors its test
    split (it has no validation split), DroneVehicle validates RGB and IR beside ultralytics' full-set validation
    (tests/test_yolo_val_subsets.py)."""
    from mwam_harness.datasets.registry import dataset_spec

    for name in ("casia_surf", "brats2020", "nyuv2", "dronevehicle"):
        for preset in ("smoke", "demo", "paper"):
            runtime = Runtime().replace(**dataset_spec(name).presets[preset].runtime)
            assert runtime.val_every >= 1, (name, preset)
            assert runtime.val_subsets == "all" or runtime.val_all_every >= 1, (name, preset)
            assert runtime.val_split in dataset_spec(name).splits, (name, preset)


def test_a_teacher_shares_its_students_group_with_its_role_as_job_type():
    from mwam_harness.datasets import nyuv2

    plan = plan_runs(table_runs(3).configs(None, nyuv2.PRESETS["smoke"]))
    teacher = next(p for p in plan if not p.requested)
    student = next(p for p in plan if p.requested and p.dependencies)
    plain = next(p for p in plan if p.requested and not p.dependencies)
    assert student.dependencies == {"teacher": teacher.key}
    assert wandb_grouping(teacher.runtime) == {"group": "table3", "job_type": "teacher", "tags": []}
    assert wandb_grouping(student.runtime) == {"group": "table3", "job_type": "train", "tags": ["table3"]}
    assert wandb_grouping(plain.runtime) == {"group": "table3", "job_type": "train", "tags": ["table3"]}
    # Outside a table: the student's own label is the group of both.
    alone = plan_runs([(student.config, Runtime(column="MMANet"))])
    assert [p.requested for p in alone] == [False, True]
    assert {wandb_grouping(p.runtime)["group"] for p in alone} == {f"MMANet [{alone[1].key}]"}
    assert [wandb_grouping(p.runtime)["job_type"] for p in alone] == ["teacher", "train"]


def test_gss_stages_are_grouped_with_the_last_stage():
    from mwam_harness.datasets import brats2020

    plan = plan_runs(table_runs(2).configs(None, brats2020.PRESETS["smoke"], columns=["GSS"]))
    assert [p.requested for p in plan] == [False, False, True]  # the smoke preset's two stages
    assert {wandb_grouping(p.runtime)["group"] for p in plan} == {"table2"}
    assert [wandb_grouping(p.runtime)["job_type"] for p in plan] == ["init", "previous", "train"]  # RFNet, stage 1


def test_a_table_command_logs_its_table_and_the_comparison_as_wandb_tables(tmp_path):
    import json

    from reproduce.tables.frames import side_by_side_frame, tidy_frame
    from reproduce.tables.model import from_paper
    from reproduce.tables.paper_data import load_paper_table
    from reproduce.tables.wandb_table import log_table

    view = from_paper(load_paper_table(4))
    assert log_table("table4", view, view, Runtime(wandb="disabled"), tmp_path / "off", ["k"]) is None
    assert not (tmp_path / "off").exists()
    run_id = log_table("table4", view, view, Runtime(wandb="offline"), tmp_path, ["0123456789abcdef"])
    (run_dir,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}")
    files = sorted(run_dir.rglob("*.table.json"))
    logged = {("vs_paper" if "vs_paper" in p.name else "table"): json.loads(p.read_text()) for p in files}
    assert len(files) == 2
    for name, frame in (("table", tidy_frame(view)), ("vs_paper", side_by_side_frame(view, view))):
        assert logged[name]["columns"] == list(frame.columns)
        assert len(logged[name]["data"]) == len(frame)
    (log,) = run_dir.glob("*.wandb")  # the run's record: its config names the runs the table was drawn from
    assert b"0123456789abcdef" in log.read_bytes() and b"table4" in log.read_bytes()
