"""Loaders for the real on-disk layouts of the paper's data sets, their synthetic stand-ins, and the registry.

One package per data set (``datasets/<name>/``): its ``__init__`` registers a torch-free
:class:`~.registry.DatasetSpec` (modalities, splits, where to get it, presets); ``loader.py`` reads the
real layout, ``synthetic.py`` writes a small stand-in in exactly that layout, ``check.py`` verifies a root.
``python -m reproduce synthetic NAME OUT_DIR`` writes a stand-in.
"""

from .registry import DatasetPreset, DatasetSpec, Problem, dataset_spec, list_datasets, register_dataset

__all__ = ["DatasetPreset", "DatasetSpec", "Problem", "dataset_spec", "list_datasets", "register_dataset"]
