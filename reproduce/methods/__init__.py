"""Training plug-ins: everything that shapes training beyond the plain loss, one folder each.

A run holds an ordered list of plug-ins (``reproduce.methods.base``): its method (``method:`` -- ``standard``,
``mmanet``, ``mmanet_seg``, ``gss``, ``ultralytics``), the plug-ins it lists (``plugins:`` -- the balancing methods,
``modality_gradient_scale``, a user's own), and the built-ins its sections switch on (``mwam:`` -> MWAM, ``sde:`` ->
SDE; the logger is in every run). Each folder ``reproduce/methods/<name>/`` registers its plug-in from a torch-free
``__init__.py`` (its options and the runs it depends on) and keeps its maths beside it; adding a plug-in is adding
a folder. The hooks receive a ``TrainContext`` (``reproduce.methods.context``), never the trainer.

Plug-in modules import no torch at module level (their hooks import it), so that a run configuration validates a
plug-in's options, and ``--dry-run`` plans its dependencies, without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mwam_harness.catalog import PLUGINS
from reproduce.methods.base import (
    Dependency,
    FinishedRun,
    Plugin,
    PluginList,
    StepData,
    list_methods,
    list_plugins,
    method_class,
    plugin_class,
    register_method,
    register_plugin,
)
from reproduce.methods.context import LoopContext, TrainContext

if TYPE_CHECKING:
    from reproduce.runs.config import RunConfig
    from reproduce.runs.runtime import Runtime


def plugin_classes(config: RunConfig) -> list[type[Plugin]]:
    """The classes of the method and the listed plug-ins of ``config`` (the ones that may have dependencies)."""
    return [method_class(config.method.name), *(plugin_class(p.name, "plugin") for p in config.plugins)]


def run_dependencies(config: RunConfig) -> dict[str, Dependency]:
    """Every dependency of ``config``'s plug-ins, by role; a role claimed twice is an error."""
    out: dict[str, Dependency] = {}
    for cls in plugin_classes(config):
        for role, dependency in cls.dependencies(config).items():
            if role in out:
                raise ValueError(f"plug-ins of run {config.variant} both need a {role!r} run; rename one role")
            out[role] = dependency
    return out


def plugins_for(config: RunConfig, runtime: Runtime | None = None) -> PluginList:
    """The plug-ins of a run, in their order: the method, the listed plug-ins, then the built-ins that the run's
    sections and runtime switch on, by ``order`` (reproduce.methods.base, "Order")."""
    method = config.method
    plugins: list[Any] = [method_class(method.name)(method.resolved_options())]
    plugins += [plugin_class(p.name, "plugin")(p.resolved_options()) for p in config.plugins]
    builtins = sorted((cls for _, cls in PLUGINS.items() if cls.kind == "builtin"), key=lambda cls: cls.order)
    for cls in builtins:
        plugin = cls.from_run(config, runtime)
        if plugin is not None:
            plugins.append(plugin)
    return PluginList(plugins)


__all__ = [
    "Dependency",
    "FinishedRun",
    "LoopContext",
    "Plugin",
    "PluginList",
    "StepData",
    "TrainContext",
    "list_methods",
    "list_plugins",
    "method_class",
    "plugin_class",
    "plugin_classes",
    "plugins_for",
    "register_method",
    "register_plugin",
    "run_dependencies",
]
