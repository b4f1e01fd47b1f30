"""The CLI's choices and help come from the registries: nothing in ``reproduce/cli.py`` lists them by hand."""

import argparse
import dataclasses

import pytest

from mwam_harness.catalog import DATASETS
from mwam_harness.datasets.registry import dataset_spec, list_datasets
from reproduce.cli import build_parser
from reproduce.subsets import dataset_names
from reproduce.tables.specs import TABLE_RUNS


def _command(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def _argument(parser: argparse.ArgumentParser, command: str, dest: str) -> argparse.Action:
    return next(a for a in _command(parser, command)._actions if a.dest == dest)


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


def _preparable() -> set[str]:
    return {name for name in list_datasets() if dataset_spec(name).preparer is not None}


def _prepare_help_names(parser: argparse.ArgumentParser) -> set[str]:
    text = _argument(parser, "prepare", "dataset").help
    return set(text.rpartition(": ")[2].split(", "))


def test_table_with_help_names_every_extension_and_its_columns(parser):
    text = _argument(parser, "table", "with_").help
    assert "sde" in TABLE_RUNS[4].extensions  # there are extensions to list at all
    for number, runs in TABLE_RUNS.items():
        if not runs.extensions:
            assert f"Table {number}:" not in text
            continue
        section = text.split(f"Table {number}: ", 1)[1].split(". Table ", 1)[0]
        for extension in runs.extensions:
            assert f"{extension} adds " in section
            for column in runs.columns:
                if column.extension == extension:
                    assert repr(column.column) in section
    parser.parse_args(["table", "4", "--with", *TABLE_RUNS[4].extensions])  # the help formats (no stray %)
    assert "--with" in _command(parser, "table").format_help()


def test_prepare_help_names_exactly_the_data_sets_with_a_preparer(parser):
    assert {"brats2020", "nyuv2", "dronevehicle"} <= _preparable()
    assert _prepare_help_names(parser) == _preparable()
    assert "casia_surf" not in _prepare_help_names(parser)


def test_prepare_help_follows_the_catalog(monkeypatch):
    spec = dataclasses.replace(dataset_spec("casia_surf"), name="toy_prepared", preparer="toy.prepare:prepare")
    monkeypatch.setitem(DATASETS.entries, "toy_prepared", spec)
    parser = build_parser()
    assert "toy_prepared" in _prepare_help_names(parser) and _prepare_help_names(parser) == _preparable()
    assert "toy_prepared" in _argument(parser, "check-data", "dataset").choices
    assert "toy_prepared" in _argument(parser, "subsets", "dataset").choices


def test_data_set_choices_come_from_the_registries(parser):
    assert list(_argument(parser, "check-data", "dataset").choices) == list_datasets()
    subsets_choices = set(_argument(parser, "subsets", "dataset").choices)
    assert subsets_choices == set(dataset_names()) >= set(list_datasets()) | {"ucf101", "fgvc_aircraft"}
    table_help = _argument(parser, "table", "table").help
    assert all(str(number) in table_help for number in TABLE_RUNS)


def test_subsets_command_prints_a_paper_only_data_set(parser, capsys):
    args = parser.parse_args(["subsets", "fgvc_aircraft"])  # paper-only until its data set is added
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "RGB  Depth" in out and "rgb+depth" in out and "evidence: Header order RGB, Depth" in out
