"""One lock per run key (``reproduce.runs.lock``): real processes on one key -- the second waits and reuses the
result, ``--no-wait`` fails naming the holder, a lock left by a killed process is taken over, two keys train at
once -- and the torchrun ranks of a killed ``--nproc 2`` command die without recording the run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduce.runs.lock import Holder, RunLockedError, lock_run
from reproduce.runs.registry import Registry, write_config
from tests.toy_run import RUNTIME, toy_config

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TIMEOUT = 120  # bounds a hang only

PRELUDE = """
import json, logging, os, signal, sys, time
from pathlib import Path
from mwam_harness.catalog import HOSTS, TASKS
from mwam_harness.models.registry import ModelInfo
from tests.toy_run import RUNTIME, ToyHost, ToyTask, toy_config

HOSTS.discover(); TASKS.discover()
HOSTS.entries["toy"] = ModelInfo("toy", ToyHost)
TASKS.entries["toy"] = ToyTask
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
"""

# argv: data root, results, sync dir, seed, block ("block" or "-"), wait ("wait" or "no-wait")
TRAIN = (
    PRELUDE
    + """
from reproduce.engine.runner import run_config
from reproduce.runs.registry import Registry
root, results, sync, seed, block, wait = sys.argv[1:7]
sync = Path(sync)

def step(trainer, n):
    with open(sync / f"trained-{os.getpid()}", "a") as log:
        log.write(f"{n}\\n")
    if block == "block" and n == 2:
        (sync / "started").write_text(str(os.getpid()))
        while not (sync / "release").exists():
            time.sleep(0.05)

config = toy_config(root, seed=int(seed), train={"epochs": 1})
result = run_config(config, Registry(results), RUNTIME, callbacks=[step], wait=wait == "wait")
print(json.dumps({"key": result["key"], "finished": result["finished"], "wall": result["wall_time_s"]}))
"""
)

# a process that holds a run's lock until it is killed; argv: results, key, sync dir
HOLD = """
import sys, time
from pathlib import Path
from reproduce.runs.registry import Registry
results, key, sync = sys.argv[1:4]
with Registry(results).lock(key):
    (Path(sync) / "held").write_text("held")
    time.sleep(600)
"""


def wait_for(condition, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process ended first (exit status {process.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start(script: str, *args: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as err:
        return subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            env=ENV,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=TIMEOUT)
    return out


@pytest.fixture
def sync(tmp_path):
    path = tmp_path / "sync"
    path.mkdir()
    return path


def test_a_second_process_waits_for_the_run_and_reuses_its_result(tmp_path, root, sync, toy):
    results = tmp_path / "runs"
    first = start(TRAIN, root, results, sync, 0, "block", "wait", log=tmp_path / "first.log")
    second = None
    try:
        wait_for(lambda: (sync / "started").exists(), "the first process to train", first)
        second = start(TRAIN, root, results, sync, 0, "-", "wait", log=tmp_path / "second.log")
        holder = f"pid {first.pid} since"
        wait_for(lambda: holder in (tmp_path / "second.log").read_text(), "the second process to wait", second)
    finally:
        (sync / "release").write_text("")
    one, two = json.loads(finish(first)), json.loads(finish(second))
    assert first.returncode == 0 and second.returncode == 0, (tmp_path / "second.log").read_text()[-2000:]
    assert one == two, "the second process returns the first one's entry"
    assert Registry(results).load(one["key"])["finished"] == one["finished"]
    assert sorted(p.name for p in sync.glob("trained-*")) == [f"trained-{first.pid}"], "trained once"
    log = (tmp_path / "second.log").read_text()
    assert f"run {one['key']} is being trained by host" in log and "(it recorded the run)" in log


def test_no_wait_fails_naming_the_holder(tmp_path, root, toy):
    registry = Registry(tmp_path / "results" / "runs")
    config = toy_config(root, train={"epochs": 1})
    path = write_config(tmp_path / "run.yaml", config, RUNTIME)
    script = PRELUDE + "from reproduce.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    command = [sys.executable, "-c", script, "run", str(path), "--results-dir", str(registry.root.parent), "--no-wait"]
    with registry.lock(config):
        done = subprocess.run(command, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2, done.stderr[-2000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: run {config.key} is being trained by host ") and f"pid {os.getpid()}" in error
    assert "--no-wait" in error and not registry.has(config)


def test_no_wait_is_an_option_of_every_command_that_trains():
    from reproduce.cli import build_parser

    parser = build_parser()
    for argv in (["table", "4"], ["figure", "1"], ["ablations"], ["run", "x.yaml"]):
        assert parser.parse_args([*argv, "--no-wait"]).no_wait and not parser.parse_args(argv).no_wait


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, root, sync, toy):
    registry = Registry(tmp_path / "runs")
    config = toy_config(root, train={"epochs": 1})
    holder = start(HOLD, registry.root, config.key, sync, log=tmp_path / "hold.log")
    try:
        wait_for(lambda: (sync / "held").exists(), "the holder to lock", holder)
        with pytest.raises(RunLockedError, match=f"pid {holder.pid} since"):
            registry.lock(config, wait=False).__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=TIMEOUT)
    stale = Holder.read(registry.lock_path(config))
    assert stale is not None and stale.pid == holder.pid, "kill -9 leaves the holder's record behind"

    from reproduce.engine.runner import run_config

    result = run_config(config, registry, RUNTIME, wait=False)  # not held any more: no wait, no error
    assert registry.load(config)["finished"] == result["finished"]
    assert Holder.read(registry.lock_path(config)) is None, "released cleanly: no holder record"


def test_two_keys_train_at_the_same_time(tmp_path, root, sync, toy):
    from reproduce.engine.runner import run_config

    results = tmp_path / "runs"
    first = start(TRAIN, root, results, sync, 0, "block", "wait", log=tmp_path / "first.log")
    try:
        wait_for(lambda: (sync / "started").exists(), "the first process to train", first)
        other = toy_config(root, seed=1, train={"epochs": 1})
        result = run_config(other, Registry(results), RUNTIME, wait=False)  # key 0 is held: key 1 is not
        assert first.poll() is None, "the first run was still training"
    finally:
        (sync / "release").write_text("")
    one = json.loads(finish(first))
    assert first.returncode == 0 and one["key"] != result["key"]
    assert Registry(results).has(one["key"]) and Registry(results).has(result["key"])


def test_the_lock_is_reentrant_and_names_its_holder(tmp_path):
    path = tmp_path / "k.lock"
    with lock_run(path, "k") as outer:
        with lock_run(path, "k", wait=False) as inner:  # the same process: no wait, no second lock
            assert inner.holder == outer.holder
        holder = Holder.read(path)
        assert holder is not None and holder.pid == os.getpid() and holder.key == "k"  # still held after the inner
    assert Holder.read(path) is None


def test_a_torchrun_rank_records_nothing_once_its_command_released_the_lock(tmp_path):
    from reproduce.runs.lock import PARENT_ENV, RunHold, RunLockError

    path = tmp_path / "k.lock"
    with lock_run(path, "k") as hold:
        token = hold.holder.token
        RunHold("k", path, Holder("k", "", 0, "", token), parent=True).check()  # held by the command: fine
    os.environ[PARENT_ENV] = json.dumps({"key": "k", "path": str(path), "token": token})
    try:
        with lock_run(path, "k") as rank, pytest.raises(RunLockError, match="no longer holds the run's lock"):
            rank.check()
    finally:
        del os.environ[PARENT_ENV]


# ----------------------------------------------------------------------------------------- torchrun, kill -9
# the command: a toy run in 2 torchrun processes whose ranks run RANK (toy host registered, a blocking callback)
COMMAND = (
    PRELUDE
    + """
from reproduce.engine.runner import TorchrunRunner, run_config
from reproduce.runs.registry import Registry
root, results, sync, rank_script = sys.argv[1:5]

def command(self, config_file, registry, resume, force):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.nproc}"]
    return command + [rank_script, sync, "run", config_file, "--results-dir", str(registry.root.parent)]

TorchrunRunner.command = command
run_config(toy_config(root, train={"epochs": 1, "batch_size": 6}), Registry(results), RUNTIME, nproc=2)
"""
)
RANK = (
    PRELUDE
    + """
from reproduce.engine import trainer
sync = Path(sys.argv[1])

def block(t, n):
    if n == 2:
        (sync / f"rank{os.environ['RANK']}").write_text(str(os.getpid()))
        while not (sync / "release").exists() and not t._stop_requested:  # until released or signalled
            time.sleep(0.05)

init = trainer.Trainer.__init__
trainer.Trainer.__init__ = lambda self, *a, callbacks=None, **k: init(self, *a, callbacks=[block], **k)
from reproduce.cli import main
sys.exit(main(sys.argv[2:]))
"""
)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.ci  # end-to-end: .ci/run runs it after make test (pytest -m ci)
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_the_torchrun_ranks_of_a_killed_command_die_and_record_nothing(tmp_path, root, sync):
    results = tmp_path / "results"
    rank_script = tmp_path / "rank.py"
    rank_script.write_text(RANK)
    log = tmp_path / "command.log"
    with open(log, "w") as out:
        command = subprocess.Popen(
            [sys.executable, "-c", COMMAND, str(root), str(results / "runs"), str(sync), str(rank_script)],
            env=ENV,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    pids: list[int] = []
    try:
        ranks = [sync / "rank0", sync / "rank1"]
        wait_for(lambda: all(r.exists() and r.read_text() for r in ranks), "both ranks to train", command)
        pids = [int(r.read_text()) for r in ranks]
        pids += [int(Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])]  # torchrun
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=TIMEOUT)
        # the ranks wait in their step callback until a signal stops them: torchrun's SIGTERM (it got one when its
        # command died) or the SIGKILL of their parent-death signal (when torchrun died)
        wait_for(lambda: not any(alive(pid) for pid in pids), "torchrun and its ranks to end")
    finally:
        (sync / "release").write_text("")
        for pid in pids:  # a failed test leaves nothing running
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if command.poll() is None:
            command.kill()
    runs = results / "runs"
    assert not list(runs.glob("*.json")), f"a killed command's ranks recorded the run: {log.read_text()[-3000:]}"
