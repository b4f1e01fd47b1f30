"""Optional integrations of MWAM with training frameworks; each lives in its own module and is imported on use.

``mwam.integrations.lightning``: :class:`MWAMCallback` for PyTorch Lightning (needs ``lightning``; docs/mwam.md,
"PyTorch Lightning"). This package imports nothing: ``import mwam`` and ``import mwam.integrations`` load neither
torch nor any framework.
"""
