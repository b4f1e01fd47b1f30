"""Speed benchmarks of the reproduction harness (``mwam_step``: one MWAM step, fast vs straightforward)."""
