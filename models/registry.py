"""Host-network registry: hosts register by name and are built with ``models.build(name, **cfg)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(name: str) -> Callable[[F], F]:
    """Decorator: ``@register_model("sf_md")`` on a class or factory returning an ``nn.Module``."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"model names must be non-empty strings without surrounding spaces, got {name!r}")

    def decorate(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"model {name!r} is already registered by {_REGISTRY[name]!r}")
        _REGISTRY[name] = factory
        return factory

    return decorate


def list_models() -> list[str]:
    """Registered host names, sorted."""
    return sorted(_REGISTRY)


def build(name: str, **cfg: Any) -> nn.Module:
    """Build the host registered as ``name`` with keyword configuration ``cfg``."""
    if name not in _REGISTRY:
        known = ", ".join(list_models()) or "none registered yet"
        raise ValueError(f"unknown model {name!r}; known models: {known}")
    return _REGISTRY[name](**cfg)
