"""Host networks, one file per host, built by name through the registry (``models.build``).

Every module of this package except the contract (``host``) and the registry registers its hosts when imported;
importing ``models`` imports them all, so adding a host means adding a file. Each host implements the Host
contract (``modalities``, ``forward(inputs, present)``, ``branches()``, optionally ``encode`` / ``fuse``).
"""

import importlib
import pkgutil

from .host import Host, HostOutput, forward_subsets
from .registry import ModelInfo, build, list_models, model_info, register_model

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("host", "registry"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Host", "HostOutput", "ModelInfo", "build", "forward_subsets", "list_models", "model_info", "register_model"]
