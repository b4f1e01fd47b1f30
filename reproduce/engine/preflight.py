"""Preflight: what a run will read, checked before its first step (seconds), reported as one error.

A run reads its training split, the validation split when it validates (``runtime.val_every``) or selects its
weights on it (``eval.select: best_val``), and its evaluation split (``eval.split``). Before the first training step
each of them must

- exist and build (the data set's loader accepts it: list file present and readable, every line valid),
- hold at least one sample,
- list every case once (no duplicated entries),
- share no case with the training split (a test case trained on inflates every number of the run),
- load its first sample (a broken file or a wrong option is found now, not after the last epoch).

Every problem is collected and raised together as one :class:`PreflightError` naming the split, the list file and
the lines. ``runtime.preflight: false`` switches it off.

What identifies a case: the data set's ``case_ids()`` when it has one (a list of strings, one per sample, in its
order); otherwise, for a data set built by the data set's registered loader, the first whitespace-separated field
of each non-empty line of the split's list file (``DatasetSpec.splits``): CASIA-SURF's RGB image path, BraTS's case
name, NYU-Depth V2's image index, DroneVehicle's RGB image path. A data set of another class (a test's in-memory
data) has no case ids: only its size and first sample are checked.

The run's process layout is checked too: where each of several processes normalises BatchNorm over its own shard
of the batch (DDP without SyncBatchNorm: CPU processes, or ``runtime.sync_batchnorm: false``), a host with
BatchNorm layers trains other numbers than in one process, so the run's configuration must say so
(``train.batchnorm_shards``, part of its key; :meth:`reproduce.runs.config.RunConfig.for_processes`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.runs.config import RunConfig
from reproduce.runs.runtime import Runtime

log = logging.getLogger(__name__)

#: At most this many duplicated / shared cases are named per split (the count is always given).
MAX_LISTED = 5


class PreflightError(ValueError):
    """What a run would read is unusable; the message lists every problem found (split, file, lines)."""

    def __init__(self, key: str, problems: Sequence[str]) -> None:
        self.key = key
        self.problems = list(problems)
        listed = "\n  ".join(self.problems)
        super().__init__(
            f"run {key}: preflight found {len(self.problems)} problem(s) before the first training step:\n  {listed}\n"
            "Fix the data (python -m reproduce check-data DATASET ROOT lists every bad file) or the run's settings."
        )


@dataclass(frozen=True)
class Case:
    """One listed case: its identifier and where it is listed (the list file and line, when known)."""

    id: str
    file: str | None = None
    line: int | None = None

    def where(self) -> str:
        if self.file is None:
            return f"sample {self.id!r}"
        return f"{self.file}:{self.line} ({self.id})" if self.line is not None else f"{self.file} ({self.id})"


def splits_read(config: RunConfig, runtime: Runtime) -> dict[str, str]:
    """The splits the run reads, ``{split: why}``, training split first."""
    splits = {"train": "training"}
    e = config.eval
    if 0 < runtime.val_every <= config.train.epochs:
        splits.setdefault(runtime.val_split, f"validation (runtime.val_every {runtime.val_every})")
    if e.select == "best_val":
        splits.setdefault(e.select_split, f"selection (eval.select_split {e.select_split})")
    splits.setdefault(e.split, f"evaluation (eval.split {e.split})")
    return splits


def list_cases(spec: Any, root: str | Path, split: str) -> list[Case] | None:
    """The cases the list file of ``split`` names (first field of each non-empty line, with its line number); None
    when the data set has no list file for ``split``. OSError / UnicodeDecodeError when it cannot be read."""
    if split not in spec.splits:
        return None
    path = Path(root) / spec.splits[split]
    cases = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if fields:
                cases.append(Case(fields[0], str(path), number))
    return cases


def dataset_cases(dataset: Any, spec: Any, root: str | Path, split: str) -> list[Case] | None:
    """The cases of a built ``dataset``: its ``case_ids()``, else (a data set of the spec's loader class) the list
    file's, else None (see the module docstring)."""
    case_ids = getattr(dataset, "case_ids", None)
    if callable(case_ids):
        return [Case(str(i)) for i in case_ids()]
    from mwam_harness.datasets.registry import load_object

    try:
        loader = load_object(spec.loader)
    except (ImportError, AttributeError):
        return None
    if isinstance(loader, type) and isinstance(dataset, loader):
        return list_cases(spec, root, split)
    return None


def duplicates(cases: Iterable[Case]) -> list[str]:
    """Problems of cases listed more than once (each repeat named with where it was first listed)."""
    first: dict[str, Case] = {}
    repeats = []
    for case in cases:
        if case.id in first:
            repeats.append(f"{case.where()} repeats {first[case.id].where()}")
        else:
            first[case.id] = case
    if not repeats:
        return []
    shown = "; ".join(repeats[:MAX_LISTED])
    more = f"; ... and {len(repeats) - MAX_LISTED} more" if len(repeats) > MAX_LISTED else ""
    return [f"{len(repeats)} duplicated entr{'y' if len(repeats) == 1 else 'ies'}: {shown}{more}"]


def overlap(train: Sequence[Case], other: Sequence[Case], split: str) -> list[str]:
    """A problem naming the cases of ``other`` that the training split lists too."""
    trained = {case.id: case for case in train}
    shared = [case for case in other if case.id in trained]
    if not shared:
        return []
    shown = "; ".join(f"{case.where()} is trained as {trained[case.id].where()}" for case in shared[:MAX_LISTED])
    more = f"; ... and {len(shared) - MAX_LISTED} more" if len(shared) > MAX_LISTED else ""
    return [f"{len(shared)} case(s) of the {split} split are in the train split too: {shown}{more}"]


def _load_first(dataset: Any) -> None:
    """``dataset[0]`` without disturbing the global random streams (the run's training draws from them)."""
    import numpy as np
    import torch

    python, numpy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            dataset[0]
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if isinstance(error, ValueError | OSError) else f"{type(error).__name__}: {text}"


def check_splits(
    build: Any, spec: Any, root: str | Path, splits: Mapping[str, str], load_first: bool = True
) -> list[str]:
    """Every problem of ``splits`` (``{split: why it is read}``); ``build(split, train)`` builds a split's data set.
    Returns the problems as lines naming the split (empty: all good)."""
    problems: list[str] = []
    cases: dict[str, list[Case] | None] = {}
    for split, why in splits.items():
        label = f"{split} split ({why})"
        train = split == "train"
        try:
            dataset = build(split, train)
        except Exception as error:  # every problem of the split is reported, together
            problems.append(f"{label}: cannot be read: {_describe(error)}")
            continue
        try:
            size = len(dataset)
        except TypeError:
            size = None
        if size == 0:
            problems.append(f"{label}: holds no samples")
            continue
        try:
            cases[split] = dataset_cases(dataset, spec, root, split)
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{label}: its list file cannot be read: {_describe(error)}")
        problems += [f"{label}: {p}" for p in duplicates(cases.get(split) or [])]
        if load_first:
            try:
                _load_first(dataset)
            except Exception as error:  # idem
                problems.append(f"{label}: its first sample does not load: {_describe(error)}")
    train = cases.get("train")
    if train:
        for split, listed in cases.items():
            if split != "train" and listed:
                problems += [f"{split} split: {p}" for p in overlap(train, listed, split)]
    return problems


def batchnorm_problem(config: RunConfig, host: Any, world_size: int, synchronised: bool) -> str | None:
    """The problem when the run's process layout normalises BatchNorm otherwise than ``train.batchnorm_shards``
    says (only for a ``host`` with BatchNorm layers); None when they agree."""
    import torch

    shards = 1 if world_size <= 1 or synchronised else world_size
    declared = config.train.batchnorm_shards
    if shards == declared:
        return None
    if host is not None and not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in host.modules()):
        return None
    how = (
        f"{world_size} processes each normalise BatchNorm over their own shard of the batch (no SyncBatchNorm: "
        "CPU processes, or runtime.sync_batchnorm false)"
        if shards > 1
        else "BatchNorm is normalised over the whole batch (one process, or SyncBatchNorm)"
    )
    return (
        f"train.batchnorm_shards is {declared} but {how}: the numbers would not match the run's key; set "
        f"train.batchnorm_shards: {shards} (python -m reproduce run / table --nproc set it for you)"
    )


def check_run(
    task: Any,
    config: RunConfig,
    runtime: Runtime,
    host: Any = None,
    world_size: int = 1,
    synchronised: bool = False,
    build: Any = None,
) -> None:
    """Preflight of a run of the engine's trainer (module docstring); PreflightError listing every problem.
    ``build(split, train)`` builds a split's data set (default: the task's ``build_dataset``; the trainer passes its
    own, which keeps what it built for training)."""
    if not runtime.preflight:
        return
    build = build or task.build_dataset
    problems = check_splits(build, task.spec, task.root, splits_read(config, runtime))
    bn = batchnorm_problem(config, host, world_size, synchronised)
    if bn is not None:
        problems.append(bn)
    if problems:
        raise PreflightError(config.key, problems)
    log.info("preflight: %s read and load", ", ".join(splits_read(config, runtime)))


def preflight(trainer: Any) -> None:
    """:func:`check_run` of a :class:`~reproduce.engine.trainer.Trainer` whose task and host are built."""
    dist = trainer.dist
    synchronised = dist.enabled and trainer.runtime.sync_batchnorm and trainer.device.type == "cuda"
    check_run(
        trainer.task, trainer.config, trainer.runtime, trainer.host, dist.world_size, synchronised, trainer.dataset
    )


def check_lists(config: RunConfig, runtime: Runtime, splits: Sequence[str]) -> None:
    """Preflight of a run whose data another library reads (the ultralytics runner): the list files of ``splits``
    exist, list cases, each once, none shared with the training split. PreflightError listing every problem."""
    if not runtime.preflight:
        return
    spec, root = config.data.spec, config.data.locate()
    problems: list[str] = []
    cases: dict[str, list[Case]] = {}
    for split in dict.fromkeys(splits):
        try:
            listed = list_cases(spec, root, split)
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{split} split: its list file cannot be read: {_describe(error)}")
            continue
        if listed is None:
            problems.append(f"{split} split: {spec.title} has no such split (it has {', '.join(spec.splits)})")
        elif not listed:
            problems.append(f"{split} split: {Path(root) / spec.splits[split]} lists no samples")
        else:
            cases[split] = listed
            problems += [f"{split} split: {p}" for p in duplicates(listed)]
    if "train" in cases:
        for split, listed in cases.items():
            if split != "train":
                problems += [f"{split} split: {p}" for p in overlap(cases["train"], listed, split)]
    if problems:
        raise PreflightError(config.key, problems)
