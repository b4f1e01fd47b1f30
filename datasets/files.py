"""Writing files so that no reader ever sees a half-written one: the harness's one atomic-write helper.

It lives in ``datasets`` (the bottom layer of the harness: ``reproduce`` imports it, ``datasets`` may import nothing
of ``reproduce``) and is used for data-set files, registry entries, tables and checkpoints alike.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)
#: errno values of a file system that refuses writes: permissions, a read-only mount.
NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: errno values of a full file system or an exhausted quota.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class NotWritableError(PermissionError):
    """A file could not be written because its folder is read-only (permissions or a read-only mount)."""

    def __init__(self, path: str | Path, cause: OSError) -> None:
        folder = Path(path).parent
        message = (
            f"cannot write {path}: {cause.strerror or cause} ({folder} is not writable: read-only or owned by another "
            "user); make it writable or choose another results / output folder (e.g. MWAM_RESULTS_DIR)"
        )
        super().__init__(cause.errno or errno.EACCES, message, str(path))
        self.message = message

    def __str__(self) -> str:
        return self.message


class NoSpaceError(OSError):
    """A file could not be written because its file system is full (or the quota is exhausted)."""

    def __init__(self, path: str | Path, cause: BaseException | str) -> None:
        message = (
            f"no space left on device writing {path} ({cause}); its file system has {free_space(path)} free: "
            "free some space or choose another results / output folder (e.g. MWAM_RESULTS_DIR)"
        )
        super().__init__(errno.ENOSPC, message, str(path))
        self.message = message

    def __str__(self) -> str:
        return self.message


def free_space(path: str | Path) -> str:
    """The free space of the file system holding ``path`` (its nearest existing folder), human-readable."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "an unknown amount of space"
    unit = "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if free < 1024 or unit == "TB":
            break
        free /= 1024
    return f"{free:.0f} B" if unit == "B" else f"{free:.1f} {unit}"


def _temporary_beside(path: Path) -> Path:
    """A new, empty temporary file beside ``path``: ``.<name>.<random>.tmp<suffix>`` (see :func:`temporaries_of`)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    return Path(name)


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path`` (same folder, same suffix), then ``os.replace`` it onto
    ``path``; on any failure the temporary file is removed and ``path`` is left as it was. Returns ``path``.

    A folder that refuses writes raises :class:`NotWritableError` (a ``PermissionError``), a full file system
    :class:`NoSpaceError` (an ``OSError``), both naming ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary_beside(path)
    except OSError as error:
        raise _clear(path, error) from error
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates the file owner-only; give it the usual permissions
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise _clear(path, error) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _clear(path: Path, error: OSError) -> OSError:
    """``error`` as :class:`NotWritableError` / :class:`NoSpaceError` when it is one of those, else unchanged."""
    if isinstance(error, (NotWritableError, NoSpaceError)):
        return error
    if error.errno in NOT_WRITABLE:
        return NotWritableError(path, error)
    if error.errno in NO_SPACE:
        return NoSpaceError(path, error.strerror or error)
    return error


def temporaries_of(path: str | Path) -> list[Path]:
    """The temporary files :func:`atomic_write` leaves beside ``path`` when its process is killed mid-write."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{path.name}.*.tmp{path.suffix}"))


def remove_stale_temporaries(path: str | Path, min_age_s: float = 60.0) -> list[Path]:
    """Remove :func:`temporaries_of` ``path`` not modified for ``min_age_s`` seconds (left by a writer that was
    killed; a live writer keeps its file's modification time fresh). Returns the removed files."""
    removed = []
    now = time.time()
    for tmp in temporaries_of(path):
        try:
            if now - tmp.stat().st_mtime < min_age_s:
                continue
            size = tmp.stat().st_size
            tmp.unlink()
        except FileNotFoundError:  # removed meanwhile (its writer finished or failed)
            continue
        except OSError as error:  # e.g. a read-only folder: the first write says so clearly
            log.warning("could not remove the stale temporary file %s: %s", tmp, error)
            continue
        log.warning("removed %s (%.1f MB), left by an interrupted write of %s", tmp, size / 2**20, Path(path).name)
        removed.append(tmp)
    return removed


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def replaceable_directory(directory: str | Path, is_ours: Callable[[Path], bool]) -> bool:
    """Whether a generator may replace ``directory``: absent, empty, or one it wrote before (``is_ours``)."""
    directory = Path(directory)
    if not directory.exists():
        return True
    if not directory.is_dir():
        return False
    return not any(directory.iterdir()) or is_ours(directory)


def install_directory(built: str | Path, out: str | Path, already_complete: Callable[[Path], bool]) -> None:
    """Move the finished directory ``built`` onto ``out``: a rename when ``out`` is absent or empty; otherwise the
    old ``out`` is moved aside, ``built`` renamed onto it and the old one removed (if a concurrent writer already
    finished the same set, ``already_complete(out)``, ``built`` is dropped instead)."""
    built, out = Path(built), Path(out)
    try:
        os.rename(built, out)  # atomic; succeeds when out is absent or an empty directory
        return
    except OSError:
        pass
    if already_complete(out):
        shutil.rmtree(built, ignore_errors=True)
        return
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(out, old)
    os.rename(built, out)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def built_beside(
    out: str | Path, is_ours: Callable[[Path], bool], already_complete: Callable[[Path], bool], marker: str
) -> Iterator[Path]:
    """Write a generated directory atomically: refuse an ``out`` a generator may not replace
    (:func:`replaceable_directory`; FileExistsError naming ``marker``, the file that makes a directory ours), yield
    a fresh directory beside ``out`` to write into, and on success install it onto ``out``
    (:func:`install_directory`); on any failure it is removed and ``out`` is left as it was. An older set is so
    replaced whole, never mixed in."""
    out = Path(out)
    if not replaceable_directory(out, is_ours):
        raise FileExistsError(f"{out}: exists and is not a synthetic data set (no {marker}); refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    built = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(built, 0o755)  # mkdtemp makes it private; the data set is not
        yield built
        install_directory(built, out, already_complete)
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise
