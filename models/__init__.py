"""Host networks, one file per host, built by name through the registry (``models.build``).

The hosts themselves (SF / SF-MD, MMANet, ESANet-MD, RFNet, mmFormer, GSS, two-stream YOLOv8n) arrive
with their issues; each implements the Host contract of DESIGN.md (``modalities``, ``forward(inputs,
present)``, ``branches()``).
"""

from . import mmanet, sf  # noqa: F401  (registers the hosts)
from .host import Host, HostOutput
from .registry import build, list_models, register_model

__all__ = ["Host", "HostOutput", "build", "list_models", "register_model"]
