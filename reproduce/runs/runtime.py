"""How a run is executed, as opposed to what it trains: never part of its identity, never hashed.

Device, data-loader workers, logging cadence, progress bars, the W&B mode, per-epoch validation (which draws no
randomness and so changes nothing in training), the table and column a run is shown in, and SyncBatchNorm under
DDP. The same :class:`~reproduce.runs.config.RunConfig` with another runtime is the same run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.runs.config import ConfigError, RunConfig, read_yaml

WANDB_MODES = ("offline", "online", "disabled")


@dataclass(frozen=True)
class Runtime:
    """device: ``auto`` (``cuda:LOCAL_RANK`` when CUDA is present, else CPU), ``cpu``, ``cuda``, ``cuda:1`` ...
    workers: DataLoader worker processes. log_every: steps between logged steps. progress: progress bars.
    wandb: ``offline`` / ``online`` / ``disabled`` (None: ``$WANDB_MODE``, else offline).
    val_every: evaluate on the validation split every this many epochs (0: never). val_cases: only its first this
    many samples (None: all). val_subsets: ``all`` subsets or only the ``full`` set -- a cheap per-epoch check for
    hosts whose evaluation is expensive (BraTS: sliding windows over whole volumes). val_all_every: every this many
    epochs a ``full`` validation covers every subset all the same (0: never). val_split: the split validated
    (``val``; NYUv2 has none: its runs monitor the test split, as its authors' training scripts do, logged as
    ``monitor_test/...`` and never used to select weights). Validation draws no randomness, so none of these
    changes training.
    checkpoint_every: write the resume checkpoint every this many epochs (0: only when a run is interrupted, and once
        after the last epoch, before the final evaluation);
    a checkpoint of a 72 M-parameter host with its SGD state is about 0.6 GB.
    table / column: where the run is shown (W&B group, records). wandb_group / role: the W&B group of a run that
    has dependencies and of its dependencies (teachers, GSS stages: ``plan_runs`` sets both), and a dependency's
    role (``teacher``, GSS's ``init`` / ``previous``) as its W&B job type; None / "": ``table<N>`` and ``train``.
    sync_batchnorm: under DDP on CUDA, convert the host's BatchNorm layers to SyncBatchNorm, so that a multi-GPU
    run normalises over the global batch as a one-GPU run does (CPU process groups cannot: there each process
    normalises its shard, which the run's configuration records as ``train.batchnorm_shards``:
    :meth:`batchnorm_synchronised`).
    preflight: before the first training step, check every split the run reads (exists, not empty, no duplicated
    or shared cases, the first sample loads: ``reproduce.engine.preflight``); seconds, on by default.
    verbose: show the console output of a library that trains a run in its own loop (ultralytics' epoch tables,
    bars and messages); off, the run reports one line per epoch like the engine's runs.
    threads: torch's intra-op threads on the CPU while the run trains (``torch.set_num_threads``; None: torch's
    default, one per core). docs/training.md, "Progress, CPU threads and the make variables", has the measurement."""

    device: str = "auto"
    workers: int = 0
    log_every: int = 10
    progress: bool = True
    wandb: str | None = None
    val_every: int = 1
    val_cases: int | None = None
    val_subsets: str = "all"
    val_all_every: int = 0
    val_split: str = "val"
    table: int | None = None
    column: str = ""
    wandb_group: str | None = None
    role: str = ""
    sync_batchnorm: bool = True
    checkpoint_every: int = 1
    preflight: bool = True
    threads: int | None = None
    verbose: bool = False

    def __post_init__(self) -> None:
        for name, minimum in (("workers", 0), ("log_every", 1), ("val_every", 0), ("val_all_every", 0),
                              ("checkpoint_every", 0)):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"runtime.{name} must be an integer >= {minimum}, got {value!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or isinstance(self.threads, bool)
                                         or self.threads < 1):  # fmt: skip
            raise ConfigError(f"runtime.threads must be an integer >= 1 or null, got {self.threads!r}")
        if self.val_cases is not None and (not isinstance(self.val_cases, int) or self.val_cases < 1):
            raise ConfigError(f"runtime.val_cases must be an integer >= 1 or null, got {self.val_cases!r}")
        if self.val_subsets not in ("all", "full"):
            raise ConfigError(f"runtime.val_subsets must be all or full, got {self.val_subsets!r}")
        if not isinstance(self.val_split, str) or not self.val_split:
            raise ConfigError(f"runtime.val_split must be a split name, got {self.val_split!r}")
        if self.wandb is not None and self.wandb not in WANDB_MODES:
            raise ConfigError(f"runtime.wandb must be one of {', '.join(WANDB_MODES)} or null, got {self.wandb!r}")
        for name in ("progress", "sync_batchnorm", "preflight", "verbose"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"runtime.{name} must be true or false")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "runtime") -> Runtime:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Runtime:
        """The ``runtime:`` mapping of a run configuration file (defaults when it has none)."""
        values = read_yaml(path).get("runtime") or {}
        if not isinstance(values, Mapping):
            raise ConfigError(f"{path}: runtime must be a mapping")
        return cls.from_dict(values, source=f"{path}: runtime")

    def batchnorm_synchronised(self, nproc: int, cuda: bool | None = None) -> bool:
        """Whether a run in ``nproc`` processes normalises BatchNorm over the whole batch: one process, or DDP on
        CUDA with ``sync_batchnorm`` (``cuda``: whether the run's device is a GPU; None: ``device``, with ``auto``
        meaning a GPU when torch sees one)."""
        if nproc <= 1:
            return True
        if cuda is None:
            if self.device == "auto":
                import torch

                cuda = torch.cuda.is_available()
            else:
                cuda = self.device.startswith("cuda")
        return bool(cuda and self.sync_batchnorm)

    def replace(self, **changes: Any) -> Runtime:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_for_processes(config: RunConfig, runtime: Runtime, nproc: int, cuda: bool | None = None) -> RunConfig:
    """``config`` as trained in ``nproc`` processes under ``runtime`` (``RunConfig.for_processes``): with
    ``train.batchnorm_shards`` = ``nproc`` where each process normalises BatchNorm over its own shard (CPU, or
    ``sync_batchnorm`` off), else unchanged. What a launcher applies before it looks the run up in the registry
    (``--nproc N``; a torchrun rank with its ``WORLD_SIZE``); ``cuda`` as in :meth:`Runtime.batchnorm_synchronised`."""
    return config.for_processes(nproc, runtime.batchnorm_synchronised(nproc, cuda))
