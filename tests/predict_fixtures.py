"""A finished run's folder, written directly (no training, no data): what ``python -m reproduce predict`` reads.

``trained_run_folder(runs_root, dataset, host)`` writes ``<runs_root>/<key>/config.yaml`` (the resolved
configuration with its key in the first line, as the trainer writes it), ``model.pt`` (``{"config_key", "host"}``)
and the registry entry ``<key>.json``; ``state`` replaces the freshly initialised host's weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from mwam_harness import models
from reproduce.runs.config import RunConfig

KEY = "0123456789abcdef"


def trained_run_folder(
    runs_root: Path,
    dataset: str,
    host: str,
    *,
    host_options: dict[str, Any] | None = None,
    data_options: dict[str, Any] | None = None,
    modalities: list[str] | None = None,
    state: dict[str, torch.Tensor] | None = None,
    key: str = KEY,
    synthetic: bool = True,
    seed: int = 0,
) -> Path:
    """The folder of a finished run of ``host`` on ``dataset`` (returns ``<runs_root>/<key>``)."""
    data: dict[str, Any] = {"dataset": dataset, "root": str(runs_root / "no-data-needed")}
    if data_options:
        data["options"] = data_options
    if modalities:
        data["modalities"] = modalities
    config = RunConfig.from_dict({"data": data, "host": {"name": host, "options": host_options or {}}, "seed": seed})
    folder = runs_root / key
    folder.mkdir(parents=True, exist_ok=True)
    text = f"# run {key} (python -m reproduce run {folder / 'config.yaml'})\n"
    (folder / "config.yaml").write_text(text + yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    if state is None:
        torch.manual_seed(seed)
        state = models.build(host, **(host_options or {})).state_dict()
    torch.save({"config_key": key, "host": state}, folder / "model.pt")
    entry = {"key": key, "synthetic": synthetic, "config": config.to_dict(), "variant": host}
    (runs_root / f"{key}.json").write_text(json.dumps(entry, indent=2), encoding="utf-8")
    return folder
