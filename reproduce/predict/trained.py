"""A finished run, found by its key or its folder, with its host rebuilt and its weights loaded for inference.

A run's folder (``<results root>/runs/<key>/``) holds ``config.yaml`` (the resolved configuration) and, once
finished, ``model.pt`` (``{"config_key", "host"}``: the host's weights); the registry entry ``<key>.json`` beside
it says the run finished and whether its data were synthetic. Nothing here reads the training data: a trained
model moves to another machine as its folder (and its entry).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY = re.compile(r"^[0-9a-f]{16}$")


class TrainedRunError(ValueError):
    """The reference names no usable trained run (the message says what was looked for)."""


@dataclass(frozen=True)
class TrainedRun:
    """A finished run: ``key``, its folder, its configuration (a :class:`~reproduce.runs.config.RunConfig`), the
    registry entry (``{}`` when only the folder was given and no entry lies beside it)."""

    key: str
    folder: Path
    config: Any
    entry: dict[str, Any]

    @property
    def weights(self) -> Path:
        return self.folder / "model.pt"

    @property
    def dataset(self) -> str:
        return self.config.data.dataset

    @property
    def synthetic(self) -> bool | None:
        """Whether the run trained on synthetic data (its registry entry; None when unknown)."""
        return self.entry.get("synthetic") if self.entry else None

    def describe(self) -> dict[str, Any]:
        """What a prediction records about the model that made it."""
        return {
            "run": self.key,
            "host": self.config.host.name,
            "dataset": self.dataset,
            "trained_on_synthetic_data": self.synthetic,
            "folder": str(self.folder),
        }


def find_trained_run(reference: str | Path, runs_root: Path) -> TrainedRun:
    """The trained run ``reference`` names: a run key (``<runs_root>/<key>/``), a run folder, or the ``model.pt``
    (or ``config.yaml``) inside one."""
    from reproduce.runs.config import RunConfig

    text = str(reference)
    path = Path(text)
    if KEY.match(text) and not path.exists():
        folder = runs_root / text
        if not folder.is_dir():
            raise TrainedRunError(f"no run {text} in {runs_root} (pass --results-dir, or the run's folder)")
    elif path.is_dir():
        folder = path
    elif path.is_file() and path.name in ("model.pt", "config.yaml"):
        folder = path.parent
    else:
        raise TrainedRunError(
            f"{text!r} is neither a run key (16 hex digits) nor a run folder nor the model.pt / config.yaml of one"
        )
    folder = folder.resolve()
    config_path, weights = folder / "config.yaml", folder / "model.pt"
    if not config_path.is_file():
        raise TrainedRunError(f"{folder} has no config.yaml: not a run folder")
    if not weights.is_file():
        raise TrainedRunError(f"{folder} has no model.pt: the run has not finished (or its weights were deleted)")
    key = _key_of(config_path) or folder.name
    entry_path = folder.parent / f"{key}.json"
    entry = json.loads(entry_path.read_text(encoding="utf-8")) if entry_path.is_file() else {}
    return TrainedRun(key=key, folder=folder, config=RunConfig.from_yaml(config_path), entry=entry)


def _key_of(config_path: Path) -> str | None:
    """The key written in ``config.yaml``'s first line (``# run <key> ...``)."""
    first = config_path.read_text(encoding="utf-8").split("\n", 1)[0]
    match = re.match(r"#\s*run\s+([0-9a-f]{16})\b", first)
    return match.group(1) if match else None


def load_host(run: TrainedRun, device: Any = "cpu") -> tuple[Any, Any]:
    """``(host, task)``: the run's host with its trained weights, in eval mode on ``device``, and its task (the
    inference path evaluation uses: ``task.predict``, e.g. BraTS's sliding window). The data root is not read."""
    import torch

    from mwam_harness import models
    from reproduce.checkpoints import load_checkpoint
    from reproduce.tasks import build_task

    c = run.config
    task = build_task(c.task_name, c.data.spec, str(c.data.root or ""), c.seed, c.data.options, c.modalities)
    host = models.build(c.host.name, **c.host.options)
    if tuple(host.modalities) != tuple(task.modalities):
        raise TrainedRunError(f"host {c.host.name} has modalities {tuple(host.modalities)}, the run {task.modalities}")
    state = load_checkpoint(run.weights, "cpu")
    if not isinstance(state, dict) or "host" not in state:
        raise TrainedRunError(f"{run.weights}: not a finished run's weights (no 'host' entry)")
    if state.get("config_key") not in (None, run.key):
        raise TrainedRunError(f"{run.weights} holds the weights of run {state['config_key']}, not of {run.key}")
    host.load_state_dict(state["host"])
    task.attach(host)
    return host.to(torch.device(device)).eval(), task
