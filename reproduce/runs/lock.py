"""One lock per run key: a process holds ``<results>/runs/<key>.lock`` from its registry check to its final
registry write, so two processes (or two tables sharing runs) never train the same run at once.

The lock is a POSIX record lock (``fcntl.lockf``) on the lock file, which also names its holder (host, pid, start
time, command) for the message of a process that waits. Nothing here relies on local process ids: the operating
system releases the lock when its holder dies, however it dies (kill -9 included), so a lock file left behind by a
dead process is simply taken over by the next one (its stale holder record is overwritten).

This relies on the results root being on a file system whose locks are seen by every host that uses it: a local
disk, NFSv4 (or NFSv3 with lockd), Lustre mounted with ``-o flock``, GPFS. Where the file system refuses locks
(NFS without a lock manager, Lustre without ``flock``: ``ENOLCK`` / ``EOPNOTSUPP``) acquiring fails with a
:class:`RunLockError` that says so; ``MWAM_RUN_LOCKS=off`` then runs without locks (nothing stops two processes
training the same run). Where locks are only local to each host (NFS mounted with ``nolock`` / ``local_lock``,
Lustre with ``localflock``) processes on one host exclude each other but two hosts may train the same run.

POSIX locks belong to a process, not to a file descriptor: a second ``lockf`` of the same file by its holder
succeeds and closing any descriptor of the file drops the lock. So the locks a process holds are counted here
(re-entrant: :func:`lock_run` inside :func:`lock_run` of the same key is free) and never opened twice.

Under torchrun: the command that starts torchrun (``reproduce.engine.runner.TorchrunRunner``) holds the lock for
the whole torchrun run and names it to the ranks in ``$MWAM_PARENT_RUN_LOCK``; the ranks take no lock for that key
(they would wait for their own parent) and rank 0 checks before its registry write that the command still holds it
(:meth:`RunHold.check`). Ranks started by a bare ``torchrun -m reproduce run``: rank 0 takes the lock and tells the
others, which wait for it in a collective (bounded by the process group's timeout).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: Set by the command that starts torchrun: ``{"key", "path", "token"}`` of the lock it holds for its ranks.
PARENT_ENV = "MWAM_PARENT_RUN_LOCK"
#: ``off`` disables the locks (for file systems without POSIX locks).
LOCKS_ENV = "MWAM_RUN_LOCKS"
#: How often a waiting process says again who holds the lock (seconds).
LOG_EVERY = 30.0
_BUSY = (errno.EACCES, errno.EAGAIN)
_wait_default = True


class RunLockError(RuntimeError, ValueError):
    """A run's lock could not be taken (the file system does not support locks), or a torchrun rank's command no
    longer holds it. Also a ValueError: the command line reports it in one line (exit 2), like a bad argument."""


class RunLockedError(RunLockError):
    """Another process holds the run's lock and this one was asked not to wait (``--no-wait``)."""

    def __init__(self, key: str, path: Path, holder: Holder | None) -> None:
        self.key, self.path, self.holder = key, path, holder
        who = holder.describe() if holder is not None else "another process (no holder record yet)"
        super().__init__(
            f"run {key} is being trained by {who} (lock {path}); --no-wait was given: wait for it to finish, or "
            "run without --no-wait to wait and then reuse its result"
        )


def set_wait_default(wait: bool) -> None:
    """Whether a process that finds a run locked waits for it (default) or raises :class:`RunLockedError`; what
    ``--no-wait`` sets for the whole command."""
    global _wait_default
    _wait_default = bool(wait)


def wait_default() -> bool:
    return _wait_default


def locks_enabled() -> bool:
    return os.environ.get(LOCKS_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: written into the lock file by its holder."""

    key: str
    host: str
    pid: int
    since: str
    token: str
    command: str = ""

    def describe(self) -> str:
        return f"host {self.host} pid {self.pid} since {self.since}"

    @classmethod
    def mine(cls, key: str) -> Holder:
        since = datetime.now().astimezone().isoformat(timespec="seconds")
        command = " ".join(sys.argv)[:300]
        return cls(key, socket.gethostname(), os.getpid(), since, uuid.uuid4().hex, command)

    @classmethod
    def read(cls, path: Path) -> Holder | None:
        """The holder recorded in ``path`` (None when it is empty, torn or missing). A lock this process holds is
        read through its own descriptor: opening and closing another one would drop the lock (POSIX)."""
        held = _held.get(_name(path))
        try:
            if held is not None and held.pid == os.getpid():
                return _parse(os.pread(held.fd, 1 << 16, 0))
            return _parse(path.read_bytes())
        except OSError:
            return None


def _parse(data: bytes) -> Holder | None:
    try:
        values = json.loads(data.decode("utf-8"))
        return Holder(**{k: values[k] for k in ("key", "host", "pid", "since", "token")},
                      command=values.get("command", ""))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class _Held:
    fd: int
    pid: int
    holder: Holder
    count: int = 0


_table_lock = threading.Lock()
_held: dict[str, _Held] = {}
_threads: dict[str, threading.RLock] = {}


def _name(path: Path) -> str:
    return os.path.realpath(path)


def _try_lock(fd: int, path: Path) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as error:
        if error.errno in _BUSY:
            return False
        raise RunLockError(
            f"cannot lock {path}: {error.strerror} (errno {error.errno}). The results root must be on a file system "
            f"with POSIX locks (local disk, NFSv4, Lustre mounted with -o flock); set {LOCKS_ENV}=off to run "
            "without run locks (then nothing stops two processes from training the same run)"
        ) from None


@dataclass
class RunHold:
    """What :func:`lock_run` yields: ``waited`` (another process held the lock when we asked), ``updated`` (the
    run's registry entry was written while we waited: the holder trained it), and :meth:`check`."""

    key: str
    path: Path
    holder: Holder | None = None
    waited: bool = False
    updated: bool = False
    parent: bool = False

    def check(self) -> None:
        """Raise unless this process may still write the run's registry entry: the lock is ours, or (a torchrun
        rank) the command that started us still holds it."""
        if self.parent and self.holder is not None and not holds(self.path, self.holder.token):
            raise RunLockError(
                f"run {self.key}: the command that started this process (torchrun rank) no longer holds the run's "
                f"lock {self.path} (it was killed): not recording the run; rerun the command with --resume"
            )


def holds(path: Path, token: str) -> bool:
    """Whether the lock ``path`` is held, by the holder whose record carries ``token``."""
    entry = _held.get(_name(path))
    if entry is not None and entry.pid == os.getpid():
        return entry.holder.token == token
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        if _try_lock(fd, path):  # nobody holds it: its holder is gone
            fcntl.lockf(fd, fcntl.LOCK_UN)
            return False
        holder = _parse(os.pread(fd, 1 << 16, 0))
        return holder is not None and holder.token == token
    finally:
        os.close(fd)


def parent_lock() -> dict[str, str] | None:
    """The lock the command that started this process holds for it (``$MWAM_PARENT_RUN_LOCK``), if any."""
    text = os.environ.get(PARENT_ENV)
    if not text:
        return None
    try:
        values = json.loads(text)
        return {k: str(values[k]) for k in ("key", "path", "token")}
    except (ValueError, KeyError, TypeError):
        raise RunLockError(f"${PARENT_ENV} is not a lock description: {text!r}") from None


def parent_env(hold: RunHold) -> dict[str, str]:
    """The environment entry that tells the processes started for ``hold``'s run that their parent holds it."""
    if hold.holder is None:
        return {}
    return {PARENT_ENV: json.dumps({"key": hold.key, "path": str(hold.path), "token": hold.holder.token})}


class _Process(Protocol):
    """The distributed process (``reproduce.engine.distributed.Distributed``) as seen here."""

    @property
    def enabled(self) -> bool: ...

    @property
    def is_main(self) -> bool: ...

    def broadcast(self, obj: Any) -> Any: ...


@contextmanager
def lock_run(
    path: str | Path,
    key: str,
    wait: bool | None = None,
    entry: Path | None = None,
    process: _Process | None = None,
    log_every: float = LOG_EVERY,
    poll: float = 0.2,
) -> Iterator[RunHold]:
    """Hold the lock file ``path`` of run ``key`` for the ``with`` block (see the module docstring).

    ``wait`` (default :func:`wait_default`): wait while another process holds it, saying who every ``log_every``
    seconds; else raise :class:`RunLockedError`. ``entry``: the run's registry file, to tell whether it was
    written while we waited (``RunHold.updated``). ``process``: under torch.distributed only rank 0 locks and the
    others learn what it found."""
    path = Path(path)
    wait = wait_default() if wait is None else wait
    parent = parent_lock()
    if parent is not None and parent["key"] == key:
        holder = Holder(key, "", 0, "", parent["token"])
        yield RunHold(key, Path(parent["path"]), holder, parent=True)
        return
    if not locks_enabled():
        yield RunHold(key, path)
        return
    distributed = process is not None and process.enabled
    if distributed and not process.is_main:
        hold = RunHold(key, path)
        hold.waited, hold.updated = process.broadcast(None)  # what rank 0 found (the broadcast waits for it)
        yield hold
        return
    hold = _acquire(path, key, wait, entry, log_every, poll)  # rank 0 failing here: torchrun stops the others
    try:
        if distributed:
            process.broadcast((hold.waited, hold.updated))
        yield hold
    finally:
        _release(path)


def _snapshot(entry: Path | None) -> tuple[int, int] | None:
    if entry is None:
        return None
    try:
        stat = entry.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _acquire(path: Path, key: str, wait: bool, entry: Path | None, log_every: float, poll: float) -> RunHold:
    name = _name(path)
    with _table_lock:
        thread = _threads.setdefault(name, threading.RLock())
    if not thread.acquire(blocking=wait):
        raise RunLockedError(key, path, Holder.read(path))
    try:
        held = _held.get(name)
        if held is not None and held.pid == os.getpid():
            held.count += 1
            return RunHold(key, path, held.holder)
        before = _snapshot(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            waited, said = False, None
            while not _try_lock(fd, path):
                holder = _parse(os.pread(fd, 1 << 16, 0))
                if not wait:
                    raise RunLockedError(key, path, holder)
                now = time.monotonic()
                if said is None or now - said >= log_every:
                    who = holder.describe() if holder is not None else "another process"
                    log.info("run %s is being trained by %s; waiting (lock %s)", key, who, path)
                    said = now
                waited = True
                time.sleep(poll)
            stale = _parse(os.pread(fd, 1 << 16, 0))  # through fd: another descriptor's close drops the lock
            if stale is not None:
                log.info("run %s: taking over the lock %s left by %s (no longer held)", key, path, stale.describe())
            holder = Holder.mine(key)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder.__dict__).encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        _held[name] = _Held(fd, os.getpid(), holder, count=1)
        updated = waited and _snapshot(entry) != before and _snapshot(entry) is not None
        if waited:
            log.info("run %s: lock released by its holder%s", key, " (it recorded the run)" if updated else "")
        return RunHold(key, path, holder, waited=waited, updated=updated)
    except BaseException:
        thread.release()
        raise


def _release(path: Path) -> None:
    name = _name(path)
    held = _held[name]
    held.count -= 1
    if held.count == 0:
        del _held[name]
        try:
            os.ftruncate(held.fd, 0)  # released cleanly: no holder record left behind
            fcntl.lockf(held.fd, fcntl.LOCK_UN)
        finally:
            os.close(held.fd)
    _threads[name].release()
