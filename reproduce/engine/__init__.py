"""The training engine: one trainer for every host and task, with exact resume."""
