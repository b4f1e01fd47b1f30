"""mmFormer's iterations per epoch on BraTS2020 (issue 24): the authors' ``iter_per_epoch = len(train_loader)`` is
the number of *batches* of their ``MultiEpochsDataLoader`` (110 at batch 2 on the 219 training cases, 28 at batch 8),
which the paper preset runs; one iteration per training case (219) is the named option ``cases``."""

import json
import math

import pytest

import mwam_harness.datasets.brats2020 as brats
from reproduce.cli import main
from reproduce.experiments import _iterations
from reproduce.runs.config import RunConfig
from reproduce.runs.overrides import parse_assignments


@pytest.fixture
def paper_plan(tmp_path, monkeypatch, capsys):
    """Table 2's paper preset, dry run (no data at hand), as JSON: column -> planned run."""
    monkeypatch.delenv("MWAM_DATA_ROOT", raising=False)
    monkeypatch.setenv("MWAM_RESULTS_DIR", str(tmp_path / "results"))
    assert main(["table", "2", "--dry-run", "--json", "--with", "sde"]) == 0
    return {p["column"]: p for p in json.loads(capsys.readouterr().out)}


def test_the_authors_loader_length_is_the_number_of_batches():
    # Their MultiEpochsDataLoader keeps the incomplete last batch (drop_last off): ceil(cases / batch).
    assert brats.mmformer_iterations_per_epoch("loader", 2) == math.ceil(219 / 2) == 110
    assert brats.mmformer_iterations_per_epoch("loader", 8) == 28
    assert brats.mmformer_iterations_per_epoch("cases", 2) == brats.mmformer_iterations_per_epoch("cases", 8) == 219
    assert brats.mmformer_iterations_per_epoch() == 110, "the released value is the default"
    with pytest.raises(ValueError, match="mode must be one of"):
        brats.mmformer_iterations_per_epoch("samples")


def test_the_paper_preset_runs_mmformer_110_iterations_an_epoch_in_the_dry_run(paper_plan):
    columns = ("mmFormer", "mmFormer +MWAM", "mmFormer +SDE", "mmFormer +MWAM +SDE")
    for column in columns:
        train = paper_plan[column]["config"]["train"]
        assert train["batch_size"] == 2 and train["epochs"] == 1000
        assert train["iterations_per_epoch"] != 219, f"{column}: 219 is the number of cases, not of batches"
        assert train["iterations_per_epoch"] == 110, column
        assert len(paper_plan[column]["lr_per_epoch"]) == 1000
    # RFNet keeps its job.sh's 150.
    assert paper_plan["RFNet"]["config"]["train"]["iterations_per_epoch"] == 150


def test_the_cases_option_gives_219_iterations_and_another_run(paper_plan):
    """The named option: ``--set train.iterations_per_epoch=219`` on a paper mmFormer run's configuration."""
    config = RunConfig.from_dict(paper_plan["mmFormer"]["config"], source="dry run")
    assert _iterations(config) == 110
    cases = config.with_overrides(parse_assignments(["train.iterations_per_epoch=219"]), source="--set")
    assert _iterations(cases) == brats.mmformer_iterations_per_epoch("cases") == 219
    assert cases.to_dict()["train"]["iterations_per_epoch"] == 219 != config.to_dict()["train"]["iterations_per_epoch"]
