"""Runs: their configuration (``RunConfig``) and the results registry (``results/runs/<hash>.json``)."""
