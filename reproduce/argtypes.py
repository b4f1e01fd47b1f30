"""argparse value types shared by the command-line entry points."""

from __future__ import annotations

import argparse


def positive(value: str) -> int:
    """An integer >= 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return number


def non_negative(value: str) -> int:
    """An integer >= 0."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return number
