"""The predictor contract: one per data set, registered by name in the harness's catalog
(:data:`mwam_harness.catalog.PREDICTORS`); ``python -m reproduce predict`` knows none by name.

A predictor reads the user's inputs in the data set's own file formats, runs the trained host on the subset of
modalities each input has (or the one ``--subset`` names), and writes its outputs and ``prediction.json`` (the
run, and for every input the subset used and the files written) into the output folder.

**Which subset.** ``--subset a+b`` applies to every input and is an error for an input that lacks one of those
files. Without it each input uses the modalities whose files are present: an absent file is a missing modality
(the paper's setting), and the subset is recorded beside the prediction.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mwam_harness.catalog import PREDICTORS
from reproduce.predict.trained import TrainedRun

MANIFEST = "prediction.json"


class PredictionError(ValueError):
    """The inputs cannot be predicted as asked (the message names the input and what is wrong)."""


@dataclass
class Prediction:
    """One input's prediction: its name, the subset used, the files written (relative to the output folder) and
    any per-input values worth a glance (a score, the number of detections)."""

    name: str
    subset: tuple[str, ...]
    files: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


class Predictor(ABC):
    """Applies a trained run of one data set to a user's files."""

    #: The data set whose runs it serves (the catalog name).
    dataset: str = ""
    #: What ``--input`` takes, named in the error when it does not exist.
    input_help: str = ""

    @abstractmethod
    def predict(
        self, run: TrainedRun, inputs: Path, output: Path, subset: tuple[str, ...] | None, device: Any
    ) -> list[Prediction]:
        """Predict every input under ``inputs`` into ``output`` (created); ``subset``: the one ``--subset`` named."""


P = TypeVar("P", bound=type[Predictor])


def register_predictor(dataset: str) -> Callable[[P], P]:
    """Class decorator: ``cls`` predicts runs of ``dataset``."""

    def decorate(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, Predictor)):
            raise TypeError(f"@register_predictor({dataset!r}) decorates Predictor subclasses, got {cls!r}")
        cls.dataset = dataset
        return PREDICTORS.add(dataset, cls)

    return decorate


def choose_subset(
    modalities: Sequence[str], available: Mapping[str, bool], requested: tuple[str, ...] | None, name: str
) -> tuple[str, ...]:
    """The subset input ``name`` is predicted with: ``requested`` (each of its files must be there), else the
    modalities whose files are (in the run's modality order)."""
    if requested is not None:
        lacking = [m for m in requested if not available.get(m, False)]
        if lacking:
            raise PredictionError(f"{name}: --subset {'+'.join(requested)} needs {', '.join(lacking)}, not found")
        return tuple(m for m in modalities if m in requested)
    chosen = tuple(m for m in modalities if available.get(m, False))
    if not chosen:
        raise PredictionError(f"{name}: none of the modalities {', '.join(modalities)} was found")
    return chosen


def parse_subset(text: str | None, modalities: Sequence[str]) -> tuple[str, ...] | None:
    """``--subset rgb+depth`` -> ("rgb", "depth"), checked against the run's modalities."""
    if text is None:
        return None
    parts = tuple(p.strip().lower() for p in text.split("+") if p.strip())
    unknown = [p for p in parts if p not in modalities]
    if not parts or unknown or len(set(parts)) != len(parts):
        raise PredictionError(
            f"--subset {text!r}: give distinct modalities of the run joined by '+' ({'+'.join(modalities)})"
        )
    return tuple(m for m in modalities if m in parts)


def present_mask(modalities: Sequence[str], subset: Sequence[str], batch: int = 1) -> Any:
    """The (batch, M) bool mask of ``subset``: what the host's ``forward(inputs, present)`` takes."""
    import torch

    row = torch.tensor([m in subset for m in modalities], dtype=torch.bool)
    return row.expand(batch, len(modalities)).clone()


def write_manifest(output: Path, run: TrainedRun, predictions: Sequence[Prediction], subset_rule: str) -> Path:
    """``prediction.json``: the model (run key, host, data set, whether it trained on synthetic data), how the
    subsets were chosen, and every input's subset, files and values."""
    record = {
        **run.describe(),
        "subset_rule": subset_rule,
        "predictions": [
            {"input": p.name, "subset": "+".join(p.subset), "files": p.files, **p.values} for p in predictions
        ],
    }
    path = output / MANIFEST
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def predictor_for(dataset: str) -> Predictor:
    """The registered predictor of ``dataset`` (ValueError naming the data sets that have one)."""
    if dataset not in PREDICTORS:
        known = ", ".join(PREDICTORS.names()) or "none"
        raise PredictionError(f"no predictor for {dataset} runs yet (data sets with one: {known})")
    return PREDICTORS.get(dataset)()
