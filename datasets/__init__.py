"""Loaders for the real on-disk layouts of the paper's data sets, and ``datasets.synthetic``.

Each loader arrives with the issue of its data set (CASIA-SURF first, #4).
"""
