"""The ultralytics runner on resume: ``results.csv`` (the run's ``history``) is cut back to the checkpoint's epoch,
so a run stopped after an epoch's row but before its ``last.pt`` holds one row per epoch once resumed."""

import pytest

from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime

RUNTIME = Runtime(device="cpu", progress=False, wandb="disabled", log_every=1)


def test_truncate_results_keeps_the_header_and_the_checkpoint_epochs(tmp_path):
    from reproduce.yolo.trainer import truncate_results

    path = tmp_path / "results.csv"
    path.write_text("epoch,time,loss\n1,2.0,0.5\n2,4.0,0.4\n3,6.0,0.3\n3,6")
    assert truncate_results(path, 2) == 2
    assert path.read_text() == "epoch,time,loss\n1,2.0,0.5\n2,4.0,0.4\n"
    assert truncate_results(path, 2) == 0 and truncate_results(tmp_path / "absent.csv", 1) == 0


def test_a_run_stopped_between_its_epoch_row_and_its_checkpoint_resumes_with_one_row_per_epoch(tmp_path, monkeypatch):
    import mwam_harness.datasets.dronevehicle as dronevehicle
    from reproduce.paths import results_root_set_to
    from reproduce.tables.specs import table_runs
    from reproduce.yolo.runner import UltralyticsRunner, read_history
    from reproduce.yolo.trainer import TwoStreamDetectionTrainer

    class StopError(Exception):
        pass

    save_model = TwoStreamDetectionTrainer.save_model

    def stop_before_the_second_checkpoint(self):
        if self.epoch == 1:  # epoch 2's row is in results.csv; its last.pt is not written
            raise StopError
        return save_model(self)

    with results_root_set_to(tmp_path / "results"):
        config, runtime = table_runs(12).configs(
            None, dronevehicle.PRESETS["smoke"], columns=["T-yolov8n"], runtime=RUNTIME
        )[0]
        registry = Registry()
        with monkeypatch.context() as patch:
            patch.setattr(TwoStreamDetectionTrainer, "save_model", stop_before_the_second_checkpoint)
            with pytest.raises(StopError):
                UltralyticsRunner().run(config, registry, runtime)
        results_csv = registry.run_dir(config) / "ultralytics" / "results.csv"
        assert [row["epoch"] for row in read_history(results_csv)] == [1.0, 2.0]  # the row before the checkpoint
        resumed = UltralyticsRunner().run(config, registry, runtime, resume=True)
    assert [row["epoch"] for row in resumed["history"]] == [1.0, 2.0]
    assert [row["epoch"] for row in registry.load(config)["history"]] == [1.0, 2.0]
