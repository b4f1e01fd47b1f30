"""Reproduction harness: run configuration and registry, training methods, tasks, the engine (trainer, runners,
DDP), missing-modality evaluation, metrics, the paper's tables and benchmarks (``python -m reproduce``).

The layers and contracts: docs/architecture.md.
"""
