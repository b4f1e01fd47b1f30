"""Host-network registry: hosts register by name and are built with ``models.build(name, **cfg)``.

Hosts live in the harness's one catalog (:data:`mwam_harness.catalog.HOSTS`). A registration may carry the
authors' parameter count (``parameters``, with where it comes from in ``reference``), which the contract test
checks to within 2 % where it is given (a host of one's own needs none), and the name of the
runner that trains the host (``runner``: the engine's trainer by default; a host whose training loop belongs to
another library names that library's runner). ``test_options`` are the keyword options the contract test over
every registered host builds it with (empty by default): a host whose default inputs are too large for the CPU
test suite names a smaller configuration there (e.g. mmFormer's ``patch_size``), which its ``example_inputs``
honours on the instance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from mwam_harness.catalog import HOSTS

F = TypeVar("F", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelInfo:
    """A registered host: its factory, the authors' parameter count (if known), its runner and the options the
    contract test builds it with."""

    name: str
    factory: Callable[..., nn.Module]
    parameters: int | None = None
    reference: str = ""
    runner: str = "trainer"
    test_options: Mapping[str, Any] = field(default_factory=dict)


def register_model(
    name: str,
    *,
    parameters: int | None = None,
    reference: str = "",
    runner: str = "trainer",
    test_options: Mapping[str, Any] | None = None,
) -> Callable[[F], F]:
    """Decorator: ``@register_model("sf_md", parameters=13_180_000, reference="...")`` on a class or factory
    returning an ``nn.Module``."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"host names must be non-empty strings without surrounding spaces, got {name!r}")
    if parameters is not None and (not isinstance(parameters, int) or parameters < 1):
        raise ValueError(f"parameters must be a positive integer (the authors' count), got {parameters!r}")
    if test_options is not None and not isinstance(test_options, Mapping):
        raise ValueError(f"test_options must be a mapping of keyword options, got {test_options!r}")
    options = dict(test_options or {})

    def decorate(factory: F) -> F:
        info = ModelInfo(name, factory, parameters, reference, runner, options)
        HOSTS.add(name, info, same=lambda known, new: known.factory is new.factory)
        return factory

    return decorate


def list_models() -> list[str]:
    """Registered host names, sorted."""
    return HOSTS.names()


def model_info(name: str) -> ModelInfo:
    """The registration of ``name``; ValueError listing the known hosts otherwise."""
    return HOSTS.get(name)


def build(name: str, **cfg: Any) -> nn.Module:
    """Build the host registered as ``name`` with keyword configuration ``cfg``."""
    return model_info(name).factory(**cfg)
