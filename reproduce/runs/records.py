"""Long-format result records: what experiments hand to the table renderer.

One record = one metric value of one column (a host variant) on one subset, for one seed of one run. The
results registry (``results/runs/``) emits these; they are read from ``.jsonl`` or ``.csv`` files.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reproduce.io import write_text_atomic
from reproduce.subsets import parse_subset_key

FIELDS = ("table", "column", "variant", "dataset", "subset", "metric", "value", "seed", "run_id", "synthetic")


class RecordError(ValueError):
    """A record file or entry is malformed; the message names the file and line."""


@dataclass(frozen=True)
class ResultRecord:
    """table: the paper table the run belongs to (None when it belongs to none); column: the table column it
    fills (e.g. ``SF-MD +MWAM``); variant: the run's variant name (e.g. ``mwam-grad``); dataset: a registered
    data set (or one of ``datasets.paper_only``); subset: ``rgb+ir`` style key; metric: display name (``Acc``);
    value: the metric (percent where the paper prints percent); seed; run_id: the registry key; synthetic: whether
    the data were synthetic (then every rendering says so)."""

    table: int | None
    column: str
    variant: str
    dataset: str
    subset: str
    metric: str
    value: float
    seed: int
    run_id: str
    synthetic: bool

    def __post_init__(self) -> None:
        parse_subset_key(self.dataset, self.subset)  # raises ValueError naming the problem
        if not isinstance(self.value, (int, float)) or isinstance(self.value, bool):
            raise ValueError(f"value must be a number, got {self.value!r}")
        if not isinstance(self.synthetic, bool):
            raise ValueError(f"synthetic must be true or false, got {self.synthetic!r}")
        if not self.column:
            raise ValueError("column must not be empty")

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _coerce(raw: dict[str, object], where: str) -> ResultRecord:
    unknown = set(raw) - set(FIELDS)
    missing = set(FIELDS) - set(raw)
    if unknown or missing:
        raise RecordError(f"{where}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")
    try:
        table = raw["table"]
        synthetic = raw["synthetic"]
        if isinstance(synthetic, str):
            if synthetic.lower() not in ("true", "false"):
                raise ValueError(f"synthetic must be true or false, got {synthetic!r}")
            synthetic = synthetic.lower() == "true"
        value = float(raw["value"])  # type: ignore[arg-type]
        if math.isinf(value):
            raise ValueError(f"value must be finite or NaN, got {raw['value']!r}")
        return ResultRecord(
            table=None if table in (None, "") else int(table),  # type: ignore[arg-type]
            column=str(raw["column"]),
            variant=str(raw["variant"]),
            dataset=str(raw["dataset"]),
            subset=str(raw["subset"]),
            metric=str(raw["metric"]),
            value=value,
            seed=int(raw["seed"]),  # type: ignore[arg-type]
            run_id=str(raw["run_id"]),
            synthetic=synthetic,  # type: ignore[arg-type]
        )
    except (TypeError, ValueError) as error:
        raise RecordError(f"{where}: {error}") from None


def read_records(path: str | Path) -> list[ResultRecord]:
    """Records from a ``.jsonl`` (one JSON object a line) or ``.csv`` (header = the record fields) file."""
    path = Path(path)
    if not path.exists():
        raise RecordError(f"{path}: no such file")
    records: list[ResultRecord] = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                raise RecordError(f"{path}:{number}: not JSON: {error}") from None
            if not isinstance(raw, dict):
                raise RecordError(f"{path}:{number}: expected a JSON object")
            records.append(_coerce(raw, f"{path}:{number}"))
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                records.append(_coerce(dict(row), f"{path}:{number}"))
    else:
        raise RecordError(f"{path}: expected a .jsonl or .csv file")
    if not records:
        raise RecordError(f"{path}: no records")
    return records


def write_records(records: Iterable[ResultRecord], path: str | Path) -> Path:
    """Write a ``.jsonl`` file atomically."""
    return write_text_atomic(path, "".join(json.dumps(r.to_dict()) + "\n" for r in records))
