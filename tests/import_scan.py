"""The top-level modules a file imports, read with the AST: the scan behind tests/test_packaging.py (no top-level
``models`` / ``datasets``) and tests/test_dependencies.py (each import declared and pinned)."""

from __future__ import annotations

import ast
from pathlib import Path


def imported_top_level_names(path: Path) -> set[str]:
    """The top-level module names ``path`` imports, in statements anywhere (functions included) and in
    ``importlib.import_module("literal")`` calls."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr)
        ):
            argument = node.args[0]  # "literal" or f"literal.{...}": the literal start names the module
            first = argument if isinstance(argument, ast.Constant) else (argument.values or [None])[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and not first.value.startswith("."):
                names.add(first.value.split(".")[0])  # (a leading dot: relative to the caller's package)
    return names
