"""Errors a person can act on: ``python -m reproduce ...`` turns a full disk, a read-only results root and a
missing data root into one line on stderr and a non-zero exit status; ``--debug`` shows the traceback instead."""

import errno
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reproduce.cli import main
from tests.toy_run import toy_root

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("MWAM_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "run.yaml"
    data = toy_root(tmp_path / "data")
    path.write_text(yaml.safe_dump({"data": {"dataset": "casia_surf", "root": str(data)}, "host": {"name": "sf_md"}}))
    return path


def _failing(monkeypatch, error):
    """The run command fails with ``error`` where it would train."""

    def execute(*args, **kwargs):
        raise error

    monkeypatch.setattr("reproduce.engine.runner.execute", execute)


def _one_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    return line


def test_no_space_left_names_the_path_and_the_free_space(results, config_file, monkeypatch, capsys):
    target = results / "runs" / "abc" / "last.pt"
    _failing(monkeypatch, OSError(errno.ENOSPC, "No space left on device", str(target)))
    assert main(["run", str(config_file)]) == 1
    line = _one_line(capsys)
    assert f"no space left on device writing {target}" in line and " free on the file system of " in line
    assert "--resume" in line


def test_torch_s_full_disk_message_becomes_a_disk_full_hint(results, config_file, monkeypatch, capsys):
    _failing(monkeypatch, RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 4480 vs 4374"))
    assert main(["run", str(config_file)]) == 1
    line = _one_line(capsys)
    assert f"cannot write a checkpoint under {results}" in line and "full disk" in line


@pytest.mark.parametrize(
    "error",
    [
        PermissionError(errno.EACCES, "Permission denied", "RESULTS/runs/abc/config.yaml"),
        OSError(errno.EROFS, "Read-only file system", "RESULTS/runs/abc.json"),
    ],
    ids=["permission", "read-only"],
)
def test_an_unwritable_results_root_is_named(results, config_file, monkeypatch, capsys, error):
    error.filename = error.filename.replace("RESULTS", str(results))
    _failing(monkeypatch, error)
    assert main(["run", str(config_file)]) == 1
    line = _one_line(capsys)
    assert f"the results root {results} is " in line and "--results-dir" in line


def test_a_missing_data_root_is_one_line_and_exit_status_2(results, config_file, tmp_path, capsys):
    assert main(["run", str(config_file), "--data-root", str(tmp_path / "nowhere")]) == 2
    line = _one_line(capsys)
    assert f"data root {tmp_path / 'nowhere'} is not a directory" in line and "--data-root" in line


def test_debug_shows_the_traceback(results, config_file, monkeypatch):
    with monkeypatch.context() as patch:
        _failing(patch, OSError(errno.ENOSPC, "No space left on device", str(results / "x")))
        with pytest.raises(OSError, match="No space left"):
            main(["run", str(config_file), "--debug"])
    with pytest.raises(FileNotFoundError):
        main(["--debug", "run", str(config_file), "--data-root", str(results / "nowhere")])


def test_the_exit_status_conventions_are_kept(results, config_file, monkeypatch, capsys):
    from reproduce.engine.trainer import DependencyError, TrainingInterruptedError

    _failing(monkeypatch, TrainingInterruptedError("stopped at epoch 2"))
    assert main(["run", str(config_file)]) == 130
    assert "interrupted: stopped at epoch 2" in capsys.readouterr().err
    for error in (ValueError("bad value"), DependencyError("no teacher")):
        _failing(monkeypatch, error)
        assert main(["run", str(config_file)]) == 2
        assert _one_line(capsys) == f"error: {error}"
    _failing(monkeypatch, RuntimeError("a bug"))  # not understood: the traceback stays
    with pytest.raises(RuntimeError, match="a bug"):
        main(["run", str(config_file)])


def test_the_module_exits_non_zero_without_a_traceback(tmp_path, config_file):
    command = [sys.executable, "-m", "reproduce", "run", str(config_file), "--data-root", str(tmp_path / "nowhere")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: casia_surf: data root {tmp_path / 'nowhere'} is not a directory" in done.stderr
