"""Reproduction harness: trainer, missing-modality evaluation, metrics, results registry, tables.

Today it holds the MWAM step benchmark (``reproduce.benchmarks``); the engine and table specs arrive
with the tables (#3) and CASIA-SURF (#4) issues.
"""
