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


DEVICE_CHOICES = ("cpu", "cuda", "all")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device cpu|cuda|all`` (all = CPU plus CUDA when available)."""
    parser.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        default="all",
        help="cpu, cuda, or all = cpu plus cuda when available (default)",
    )


def devices_from(parser: argparse.ArgumentParser, choice: str) -> list[str] | None:
    """The devices a ``--device`` choice names (None = the benchmark's default); a parser error for absent CUDA."""
    import torch

    if choice == "all":
        return None
    if choice == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    return [choice]
