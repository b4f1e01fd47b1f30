"""``python -m reproduce predict``'s core: finding a finished run, the subset rule, the errors
(reproduce/predict/trained.py, reproduce/predict/base.py)."""

from __future__ import annotations

import json

import pytest
import torch

from mwam_harness.catalog import PREDICTORS
from reproduce.cli import main
from reproduce.predict.base import PredictionError, choose_subset, parse_subset, predictor_for, present_mask
from reproduce.predict.trained import TrainedRunError, find_trained_run, load_host
from tests.predict_fixtures import KEY, trained_run_folder


@pytest.fixture
def runs(tmp_path):
    trained_run_folder(tmp_path / "runs", "casia_surf", "sf")
    return tmp_path / "runs"


def test_a_run_is_found_by_its_key_its_folder_its_weights_or_its_configuration(runs):
    for reference in (KEY, runs / KEY, runs / KEY / "model.pt", runs / KEY / "config.yaml"):
        run = find_trained_run(reference, runs)
        assert run.key == KEY and run.dataset == "casia_surf" and run.synthetic is True
        assert run.describe()["host"] == "sf"


def test_the_host_comes_back_with_the_run_s_weights_in_eval_mode(runs):
    state = torch.load(runs / KEY / "model.pt", weights_only=False)["host"]
    host, task = load_host(find_trained_run(KEY, runs))
    assert not host.training and task.modalities == ("rgb", "depth", "ir")
    for name, value in host.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_weights_of_another_run_are_refused(runs):
    state = torch.load(runs / KEY / "model.pt", weights_only=False)
    torch.save({**state, "config_key": "ffffffffffffffff"}, runs / KEY / "model.pt")
    with pytest.raises(TrainedRunError, match=f"holds the weights of run ffffffffffffffff, not of {KEY}"):
        load_host(find_trained_run(KEY, runs))


@pytest.mark.parametrize(
    "damage, message",
    [
        ("unknown-key", "no run fedcba9876543210"),
        ("no-weights", "has no model.pt"),
        ("no-config", "has no config.yaml"),
        ("not-a-run", "neither a run key"),
    ],
)
def test_what_is_not_a_finished_run_is_a_one_line_error(runs, tmp_path, capsys, damage, message):
    reference = str(runs / KEY)
    if damage == "unknown-key":
        reference = "fedcba9876543210"
    elif damage == "no-weights":
        (runs / KEY / "model.pt").unlink()
    elif damage == "no-config":
        (runs / KEY / "config.yaml").unlink()
    else:
        reference = str(tmp_path / "nothing-here.txt")
    (tmp_path / "in").mkdir()
    argv = ["predict", reference, "--results-dir", str(tmp_path), "--input", str(tmp_path / "in")]
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_missing_input_names_what_the_run_s_data_set_takes(runs, tmp_path, capsys):
    argv = ["predict", KEY, "--results-dir", str(tmp_path), "--input", str(tmp_path / "absent")]
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no input at" in err and f"casia_surf runs take {predictor_for('casia_surf').input_help}" in err, err
    assert not (tmp_path / "out").exists()


def test_the_subset_rule():
    modalities = ("rgb", "depth", "ir")
    assert choose_subset(modalities, {"rgb": True, "depth": False, "ir": True}, None, "a") == ("rgb", "ir")
    assert choose_subset(modalities, {"rgb": True, "depth": True, "ir": True}, ("depth",), "a") == ("depth",)
    with pytest.raises(PredictionError, match="a: --subset rgb\\+depth needs depth"):
        choose_subset(modalities, {"rgb": True, "depth": False, "ir": True}, ("rgb", "depth"), "a")
    with pytest.raises(PredictionError, match="none of the modalities"):
        choose_subset(modalities, {}, None, "a")
    assert parse_subset("ir+RGB", modalities) == ("rgb", "ir") and parse_subset(None, modalities) is None
    for bad in ("", "rgb+rgb", "rgb+flair"):
        with pytest.raises(PredictionError, match="--subset"):
            parse_subset(bad, modalities)
    assert present_mask(modalities, ("rgb", "ir"), 2).tolist() == [[True, False, True]] * 2


def test_every_registered_data_set_with_a_predictor_is_served_and_others_are_named(monkeypatch):
    assert set(PREDICTORS.names()) <= {"casia_surf", "nyuv2", "brats2020", "dronevehicle"}
    for name in PREDICTORS.names():
        assert predictor_for(name).dataset == name and predictor_for(name).input_help, name
    with pytest.raises(PredictionError, match="no predictor for ucf101 runs yet"):
        predictor_for("ucf101")


def test_the_manifest_names_the_model_and_each_input_s_subset(runs, tmp_path):
    from reproduce.predict.base import Prediction, write_manifest

    out = tmp_path / "out"
    out.mkdir()
    run = find_trained_run(KEY, runs)
    path = write_manifest(out, run, [Prediction("a", ("rgb",), ["scores.csv"], {"live_score": 0.5})], "present")
    record = json.loads(path.read_text())
    assert record["run"] == KEY and record["trained_on_synthetic_data"] is True and record["subset_rule"] == "present"
    assert record["predictions"] == [{"input": "a", "subset": "rgb", "files": ["scores.csv"], "live_score": 0.5}]
