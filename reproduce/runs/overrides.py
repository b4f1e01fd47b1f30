"""Nested overrides of a configuration: ``--set optim.lr=0.01`` on the command line, presets and table columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: nested mappings are merged key by key, anything else replaces.

    A key whose override is a mapping replaces a non-mapping value; ``options`` mappings are merged too (an option
    is removed by setting it to its default).
    """
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def parse_assignment(text: str) -> dict[str, Any]:
    """``"optim.lr=0.01"`` -> ``{"optim": {"lr": 0.01}}``; the value is read as YAML (numbers, booleans, lists,
    ``null``), so ``--set schedule.milestones=[16,33,50]`` works. ValueError for a malformed assignment."""
    import yaml

    path, sep, raw = text.partition("=")
    keys = path.strip().split(".")
    if not sep or not all(keys):
        raise ValueError(f"--set expects KEY.PATH=VALUE (e.g. optim.lr=0.01), got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ValueError(f"--set {text!r}: the value is not valid YAML ({error})") from None
    out: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        out = {key: out}
    return out


def parse_assignments(texts: Iterable[str]) -> dict[str, Any]:
    """Every ``--set`` assignment merged, later ones winning."""
    merged: dict[str, Any] = {}
    for text in texts:
        merged = deep_merge(merged, parse_assignment(text))
    return merged
