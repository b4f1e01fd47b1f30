"""Checkpoints that hold everything a run needs to continue exactly: weights, optimiser, RNG states, position."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mwam_harness.datasets.files import NoSpaceError, remove_stale_temporaries
from reproduce.io import atomic_write

__all__ = ["NoSpaceError", "load_checkpoint", "remove_stale_temporaries", "rng_state", "save_checkpoint",
           "seed_everything", "set_rng_state"]  # fmt: skip
#: What torch's zip writer raises instead of ENOSPC when the file system fills up mid-write.
TORCH_WRITE_FAILURES = ("unexpected pos", "file write failed", "PytorchStreamWriter failed writing")


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` through the atomic-write helper: never a half-written checkpoint. A full file system raises
    :class:`NoSpaceError` (an ``OSError`` naming ``path`` and the free space), also where torch reports it as a
    ``RuntimeError`` (``unexpected pos ...``); a read-only folder ``datasets.files.NotWritableError``."""

    def write(tmp: Path) -> None:
        try:
            torch.save(state, tmp)
        except RuntimeError as error:
            if any(text in str(error) for text in TORCH_WRITE_FAILURES):
                raise NoSpaceError(path, f"torch: {str(error).strip().splitlines()[-1]}") from error
            raise

    return atomic_write(path, write)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    path = Path(path)
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path}") from None
    except Exception as error:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable checkpoint ({error}); delete it to start the run over") from None
