"""Validating option dictionaries against a dataclass and dropping what equals its defaults.

A run's identity keeps only what differs from the defaults, at every level (:func:`without_defaults`), so that
spelling out a default, or adding a field with a default later, leaves every existing registry key unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def field_default(f: dataclasses.Field) -> Any:
    """The default of a dataclass field (``default_factory()`` when it has one); MISSING when it has none."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def plain(value: Any) -> Any:
    """``value`` as JSON-like data: tuples become lists, mappings plain dicts, dataclasses their fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def without_defaults(value: Any) -> Any:
    """The fields of a dataclass that differ from their defaults, recursively; a nested dataclass whose fields are
    all default disappears. Mappings and sequences are returned as plain data (their entries are kept)."""
    if not (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return plain(value)
    out = {}
    for f in dataclasses.fields(value):
        current = getattr(value, f.name)
        default = field_default(f)
        if default is not dataclasses.MISSING and plain(current) == plain(default):
            continue
        reduced = without_defaults(current)
        if dataclasses.is_dataclass(current) and reduced == {}:
            continue
        out[f.name] = reduced
    return out


def options_without_defaults(
    config_class: type, options: Mapping[str, Any], label: str, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``options`` validated against the dataclass ``config_class`` (unknown names and bad values are errors,
    with the class's own message), returned without the entries equal to its defaults, so that spelling out a
    default does not change a run's key. Values are the validated ones, tuples as lists (their JSON form)."""
    known = {f.name for f in dataclasses.fields(config_class)} - set(exclude)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"{label}: unknown options {unknown}; known: {sorted(known)}")
    checked, defaults = config_class(**options), config_class()
    out = {}
    for key in sorted(options):
        value = getattr(checked, key)
        if plain(value) != plain(getattr(defaults, key)):
            out[key] = plain(value)
    return out
