"""The reproduction harness's own namespace: the :mod:`~mwam_harness.catalog` of hosts, data sets, plug-ins, tasks
and runners.

It sits below every package of the harness: ``models`` and ``datasets`` register into it without importing
``reproduce``, and ``reproduce`` reads it. It imports nothing of the repository at import time (docs/architecture.md,
"Catalog").
"""
