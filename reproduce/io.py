"""File writing that never leaves a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates the file owner-only; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def emit_json_line(report: dict, output: str | Path | None = None) -> str:
    """Print ``report`` as one compact JSON line on stdout and, if ``output`` is given, write it there atomically."""
    import json
    import sys

    line = json.dumps(report, separators=(",", ":")) + "\n"
    if output is not None:
        write_text_atomic(output, line)
    sys.stdout.write(line)
    sys.stdout.flush()
    return line
