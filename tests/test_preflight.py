"""Preflight (reproduce/engine/preflight.py): every split a run reads is checked before the first training step,
and every problem is reported in one error -- not an empty test split found after the last epoch."""

import shutil

import pytest

from mwam_harness.datasets.casia_surf import SPLITS
from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf
from reproduce.engine.preflight import PreflightError, check_lists, splits_read
from reproduce.engine.trainer import Trainer
from reproduce.runs.config import RunConfig
from reproduce.runs.registry import Registry
from tests.toy_run import RUNTIME


@pytest.fixture(scope="module")
def surf(tmp_path_factory):
    """A tiny synthetic CASIA-SURF, written once; each test works on its own copy."""
    return write_casia_surf(tmp_path_factory.mktemp("surf") / "surf", num_train=8, num_val=4, num_test=4, size=40)


@pytest.fixture
def data(surf, tmp_path):
    copy = tmp_path / "surf"
    shutil.copytree(surf, copy)
    return copy


def _config(root, **train):
    """Host ``toy`` (any image size) on CASIA-SURF's real loader and classification task."""
    return RunConfig.from_dict(
        {
            "data": {"dataset": "casia_surf", "root": str(root), "options": {"resize": 40, "crop": 24}},
            "host": {"name": "toy"},
            "train": {"epochs": 1, "batch_size": 4, **train},
            "schedule": {"milestones": []},
            "eval": {"batch_size": 4},
            "mwam": {"intervention": "off"},
        }
    )


def _lines(root, split):
    return (root / SPLITS[split]).read_text().splitlines(keepends=True)


def _write(root, split, lines):
    (root / SPLITS[split]).write_text("".join(lines))


def _run(root, tmp_path, runtime=RUNTIME):
    steps = []
    trainer = Trainer(_config(root), Registry(tmp_path / "runs"), runtime, [lambda t, step: steps.append(step)])
    with pytest.raises(PreflightError) as caught:
        trainer.run()
    return str(caught.value), steps, trainer


def test_a_good_run_passes_and_trains(toy, data, tmp_path):
    steps = []
    trainer = Trainer(_config(data), Registry(tmp_path / "runs"), RUNTIME, [lambda t, step: steps.append(step)])
    result = trainer.run()
    assert steps and result["subsets"]


def test_an_empty_test_split_stops_the_run_before_its_first_step(toy, data, tmp_path):
    _write(data, "test", [])
    message, steps, trainer = _run(data, tmp_path)
    assert steps == [] and not trainer.checkpoint_path.exists()
    assert "test split (evaluation (eval.split test))" in message and "empty split 'test'" in message
    assert not Registry(tmp_path / "runs").has(trainer.config)


def test_every_problem_is_listed_in_one_error(toy, data, tmp_path):
    """A duplicated training line, a test case that is trained on, and a validation sample that does not decode:
    three problems, one error, no step."""
    train = _lines(data, "train")
    _write(data, "train", [*train, train[2]])  # line 9 repeats line 3
    test = _lines(data, "test")
    _write(data, "test", [train[0], *test[1:]])  # the first training case is evaluated on
    val = _lines(data, "val")
    (data / val[0].split()[0]).write_bytes(b"")  # the first validation sample's RGB image, empty
    message, steps, _ = _run(data, tmp_path)
    assert steps == []
    assert "3 problem(s)" in message
    assert f"train_list.txt:{len(train) + 1} ({train[2].split()[0]}) repeats" in message
    assert f"train_list.txt:3 ({train[2].split()[0]})" in message
    assert "test split: 1 case(s) of the test split are in the train split too" in message
    assert "test_private_list.txt:1" in message
    assert "val split (validation (runtime.val_every 1)): its first sample does not load" in message


def test_a_missing_test_image_is_found_before_the_first_step(toy, data, tmp_path):
    test = _lines(data, "test")
    (data / test[-1].split()[2]).unlink()  # the last test sample's IR image
    message, steps, _ = _run(data, tmp_path)
    assert steps == [] and f"test_private_list.txt: 1 bad line(s):\n  line {len(test)}: missing ir image" in message


def test_preflight_reads_only_the_splits_the_run_reads(data):
    assert list(splits_read(_config(data), RUNTIME)) == ["train", "val", "test"]
    assert list(splits_read(_config(data), RUNTIME.replace(val_every=0))) == ["train", "test"]
    assert list(splits_read(_config(data), RUNTIME.replace(val_every=5))) == ["train", "test"]  # 1 epoch


def test_unread_splits_are_left_alone_and_preflight_can_be_switched_off(toy, data, tmp_path):
    (data / SPLITS["val"]).write_text("")
    steps = []
    runtime = RUNTIME.replace(val_every=0)
    Trainer(_config(data), Registry(tmp_path / "a"), runtime, [lambda t, s: steps.append(s)]).run()
    assert steps
    _write(data, "test", [*_lines(data, "test"), _lines(data, "train")[0]])
    off = runtime.replace(preflight=False)
    Trainer(_config(data), Registry(tmp_path / "b"), off).run()  # the overlap is not looked for


def test_the_list_checks_of_a_library_read_data_set(data):
    """What the ultralytics runner checks: list files present, not empty, no duplicates, no shared case."""
    config = _config(data)
    check_lists(config, RUNTIME, ["train", "val", "test"])
    train = _lines(data, "train")
    _write(data, "val", [])
    _write(data, "test", [*_lines(data, "test"), train[1], train[1]])
    with pytest.raises(PreflightError) as caught:
        check_lists(config, RUNTIME, ["train", "val", "test"])
    message = str(caught.value)
    assert "val split:" in message and "lists no samples" in message
    assert "test split: 1 duplicated entry" in message
    assert "2 case(s) of the test split are in the train split too" in message
