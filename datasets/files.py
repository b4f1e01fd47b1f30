"""Writing files so that no reader ever sees a half-written one: the harness's one atomic-write helper.

It lives in ``datasets`` (the bottom layer of the harness: ``reproduce`` imports it, ``datasets`` may import nothing
of ``reproduce``) and is used for data-set files, registry entries, tables and checkpoints alike.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path`` (same folder, same suffix), then ``os.replace`` it onto
    ``path``; on any failure the temporary file is removed and ``path`` is left as it was. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates the file owner-only; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
