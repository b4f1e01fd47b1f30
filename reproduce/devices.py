"""The compute device in words, for results, benchmarks and figures (the one device-name helper)."""

from __future__ import annotations

import os

import torch


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or ``cpu`` where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def device_name(device: torch.device | str) -> str:
    """The GPU's name, or the CPU's model with its core count and torch's intra-op thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads)"
