"""File output of the harness: atomic writes (one helper, :mod:`datasets.files`) and JSON report lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mwam_harness.datasets.files import atomic_write, write_text_atomic

__all__ = ["atomic_write", "emit_json_line", "write_text_atomic"]


def emit_json_line(report: dict, output: str | Path | None = None) -> str:
    """Print ``report`` as one compact JSON line on stdout and, if ``output`` is given, write it there atomically."""
    line = json.dumps(report, separators=(",", ":")) + "\n"
    if output is not None:
        write_text_atomic(output, line)
    sys.stdout.write(line)
    sys.stdout.flush()
    return line
