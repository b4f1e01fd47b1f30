"""The ultralytics runner (``runner="ultralytics"`` in a host's registration): train a run with ultralytics'
own loop, evaluate every modality subset, and write the registry entry every other run writes.

A run's folder ``<results>/runs/<key>/`` holds ``config.yaml``, ``data.yaml`` (the data set for ultralytics, with
absolute paths), ``ultralytics/`` (ultralytics' output: ``weights/last.pt`` / ``best.pt`` / ``plugins.pt``,
``results.csv``, ``args.yaml``, its plots), ``eval/<subset>/`` (per-subset validation, PR curve, detections),
``curves.csv`` and ``model.pt`` (the evaluated checkpoint, an ultralytics checkpoint:
``YOLO(path).val(data=..., validator=TwoStreamDetectionValidator)`` reloads it).

MWAM (the run's ``mwam`` section) and SDE (``sde: {enabled: true}``) are the engine's plug-ins
(``reproduce.methods.mwam`` / ``reproduce.methods.sde``), driven by :mod:`reproduce.yolo.trainer` inside
ultralytics' loop; the registry entry's ``plugins`` describes them and its per-epoch ``history`` (ultralytics'
``results.csv``) carries SDE's mean loss terms under ``sde``.

Resume (``--resume``) continues from ``ultralytics/weights/last.pt`` through ultralytics' resume, i.e. at the
last finished epoch: the interrupted epoch is trained again from its start (ultralytics saves no mid-epoch state
and no data-loader RNG state, so a resumed run is not bit-identical to an uninterrupted one). The plug-ins' state
(MWAM's bank, SDE's generator) is restored from ``weights/plugins.pt``; the W&B run continues under the same id.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from reproduce.engine.runner import register_runner
from reproduce.runs.config import SCHEMA, RunConfig
from reproduce.runs.registry import Registry, git_commit
from reproduce.runs.runtime import Runtime

from .arguments import OUTPUT_NAME, train_arguments, validation_arguments

log = logging.getLogger(__name__)


class RunLog:
    """The trainer's ``log``: values to the tracker (W&B) and the loss / MWAM / SDE series to ``curves.csv``."""

    SERIES = ("loss/", "mwam/K/", "mwam/frm/", "mwam/K_applied/", "sde/")

    def __init__(self, tracker: Any, curves_path: Path, panel: str) -> None:
        self.tracker = tracker
        self.curves_path = curves_path
        self.panel = panel
        self.curves: Any = None

    def start(self, step: int, resumed: bool) -> None:
        from reproduce.tracking import CurveWriter

        self.curves = CurveWriter(self.curves_path, self.panel, step if resumed else None)

    def __call__(self, values: dict[str, float], step: int) -> None:
        self.tracker.log(values, step=step)
        if self.curves is not None:
            series = {k: v for k, v in values.items() if k.startswith(self.SERIES)}
            if series:
                self.curves.write(series, step)


def read_history(results_csv: Path) -> list[dict[str, Any]]:
    """Ultralytics' ``results.csv`` (one row per epoch) as a list of dicts; SDE's columns (``sde/...``) grouped
    under ``"sde"``, as the engine's history keeps them."""
    if not results_csv.is_file():
        return []
    with results_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    history = []
    for row in rows:
        entry: dict[str, Any] = {}
        for key, value in row.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            key = key.strip()
            if key.startswith("sde/"):
                entry.setdefault("sde", {})[key] = number
            else:
                entry[key] = number
        history.append(entry)
    return history


@register_runner("ultralytics")
class UltralyticsRunner:
    """Trains (or reuses) a run of a host registered with ``runner="ultralytics"``; see the module docstring.
    ``callbacks`` are called with (ultralytics trainer, batch number) after every training batch."""

    def __init__(self, callbacks: list | None = None) -> None:
        self.callbacks = list(callbacks or [])

    def run(
        self, config: RunConfig, registry: Registry, runtime: Runtime, resume: bool = False, force: bool = False
    ) -> dict[str, Any]:
        if registry.has(config) and not force:
            log.info("run %s is already in the registry (use force to retrain)", config.key)
            return registry.load(config)
        run_dir = registry.run_dir(config).resolve()
        data_yaml = run_dir / "data.yaml"
        arguments = train_arguments(config, runtime, data_yaml, run_dir)  # ConfigError before anything is written
        from mwam_harness.datasets.dronevehicle.layout import data_dict
        from reproduce.methods.sde.plugin import SDEPlugin
        from reproduce.tracking import Tracker, wandb_grouping
        from reproduce.yolo.evaluation import evaluate_subsets
        from reproduce.yolo.trainer import TwoStreamDetectionTrainer, TwoStreamSettings

        root = config.data.locate()
        from reproduce.engine.preflight import check_lists

        check_lists(config, runtime, ["train", "val", config.eval.split])  # before anything is written or trained
        run_dir.mkdir(parents=True, exist_ok=True)
        registry.save_config(config, runtime)
        data_yaml.write_text(yaml.safe_dump(data_dict(root), sort_keys=False), encoding="utf-8")
        output = run_dir / OUTPUT_NAME
        last = output / "weights" / "last.pt"
        resuming = resume and last.is_file()
        if not resuming and output.exists():
            if last.is_file():
                log.warning("run %s has a checkpoint but resume was not asked for: starting over", config.key)
            shutil.rmtree(output)
        if resuming:
            log.info("resuming run %s from %s (at its last finished epoch)", config.key, last)
            kept = {k: arguments[k] for k in ("data", "workers", "device") if k in arguments}
            arguments = {"resume": str(last), **kept}

        id_file = run_dir / "wandb_id.txt"
        tracker = Tracker(
            runtime.wandb,
            registry.root.parent,
            name=f"{runtime.column or config.host.name} [{config.key}]",
            config={**config.to_dict(), "key": config.key, "runtime": runtime.to_dict(), "ultralytics": arguments},
            run_id=id_file.read_text().strip() if resuming and id_file.is_file() else None,
            **wandb_grouping(runtime),
        )
        if tracker.run_id:
            id_file.write_text(tracker.run_id)
        options = config.method.resolved_options()
        hsv = str(config.data.options.get("hsv", "rgb"))
        settings = TwoStreamSettings(
            host=config.host.name,
            host_options={k: v for k, v in config.host.options.items() if k != "cfg"},
            hsv=hsv,
            mwam_intervention=config.mwam.intervention,
            mwam_options=dict(config.mwam.options),
            mwam_edit=options.mwam_edit,
            mwam_clip=options.mwam_clip,
            sde=SDEPlugin.from_run(config, runtime),
            config=config,
            runtime=runtime,
            log=RunLog(tracker, run_dir / "curves.csv", runtime.column or config.variant),
            log_every=runtime.log_every,
            step_callbacks=self.callbacks,
        )
        start = time.perf_counter()
        try:
            trainer = TwoStreamDetectionTrainer(settings, overrides=arguments)
            if not runtime.verbose:
                trainer.add_callback("on_fit_epoch_end", epoch_line(runtime.column or config.host.name))
            with ultralytics_cpu_threads(runtime.threads), ultralytics_quiet(not runtime.verbose):
                trainer.train()
            elapsed = time.perf_counter() - start
            weights = trainer.best if trainer.best.is_file() else trainer.last
            with ultralytics_quiet(not runtime.verbose):
                subsets = evaluate_subsets(
                    weights,
                    validation_arguments(config, runtime, data_yaml, config.eval.split),
                    self.subsets(config),
                    run_dir / "eval",
                    hsv=hsv,
                )
            shutil.copy2(weights, registry.weights_path(config))
            result = self.result(config, runtime, subsets, trainer, elapsed, weights, root, options)
            registry.save(result)
            self.log_result(tracker, result)
        finally:
            tracker.finish()
        return result

    @staticmethod
    def subsets(config: RunConfig) -> list[tuple[str, ...]]:
        from reproduce.subsets import subsets

        return subsets(config.data.dataset)

    @staticmethod
    def result(
        config: RunConfig, runtime: Runtime, subsets: dict[str, dict[str, float]], trainer: Any, elapsed: float,
        weights: Path, root: Path, options: Any,
    ) -> dict[str, Any]:  # fmt: skip
        import torch
        import ultralytics

        from reproduce.devices import device_name

        return {
            "key": config.key,
            "schema": SCHEMA,
            "config": config.to_dict(),
            "identity": config.identity(),
            "schedule": {
                "name": "ultralytics",
                "lrf": options.lrf,
                "cos_lr": options.cos_lr,
                "warmup_epochs": options.warmup_epochs,
            },
            "runtime": runtime.to_dict(),
            "variant": config.variant,
            "metric": "mAP50",
            "primary": "map50",
            "subsets": subsets,
            "seed": config.seed,
            "git_commit": git_commit(),
            "wall_time_s": round(elapsed, 2),
            "device": device_name(trainer.device),
            "world_size": 1,
            "per_process_batch": int(trainer.batch_size),
            "precision": "fp16" if trainer.amp else "fp32",
            "selection": {
                "select": "best_val (ultralytics fitness)" if weights.name == "best.pt" else "last",
                "weights": weights.name,
            },
            "synthetic": config.data.spec.is_synthetic(root),
            "history": read_history(trainer.save_dir / "results.csv"),
            "method": {
                "method": "ultralytics",
                "mwam_edit": options.mwam_edit,
                "mwam_clip": options.mwam_clip,
                "accumulate": int(trainer.accumulate),
            },
            "plugins": [
                {"name": "ultralytics", "method": "ultralytics"},
                *({"name": p.name, **p.describe()} for p in trainer.plugins),
            ],
            "torch": torch.__version__,
            "ultralytics": ultralytics.__version__,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    @staticmethod
    def log_result(tracker: Any, result: dict[str, Any]) -> None:
        from reproduce.pcr import pcr

        keys = list(result["subsets"])
        full = result["subsets"][keys[-1]]["map50"]
        rows = [[k, v["map50"], v.get("map50_95"), None if k == keys[-1] else pcr(full, v["map50"])]
                for k, v in result["subsets"].items()]  # fmt: skip
        tracker.log_table("results/subsets", ["subset", "mAP50", "mAP50-95", "PCR"], rows)
        tracker.summary({f"test/{k}/map50": v["map50"] for k, v in result["subsets"].items()})
        tracker.summary({f"test/{k}/map50_95": v.get("map50_95") for k, v in result["subsets"].items()})


@contextlib.contextmanager
def ultralytics_cpu_threads(count: int | None) -> Iterator[None]:
    """``--threads`` for ultralytics' loop: its ``select_device`` sets torch's CPU threads to its own
    ``NUM_THREADS`` (``cpu_count - 1``, at most 8) when training starts; within the block it sets ``count``."""
    if count is None:
        yield
        return
    from ultralytics.utils import torch_utils

    previous = torch_utils.NUM_THREADS
    torch_utils.NUM_THREADS = count
    try:
        yield
    finally:
        torch_utils.NUM_THREADS = previous


@contextlib.contextmanager
def ultralytics_quiet(quiet: bool) -> Iterator[None]:
    """Within the block, ultralytics' logger shows warnings only (its epoch tables and messages hidden), which also
    disables its progress bars (they show at INFO and below); nothing changes when ``quiet`` is False."""
    if not quiet:
        yield
        return
    from ultralytics.utils import LOGGER

    previous = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(previous)


def epoch_line(label: str) -> Any:
    """An ultralytics ``on_fit_epoch_end`` callback: one log line per epoch (loss, validation mAP50, time, time
    left), what the engine's runs print in a log (reproduce/engine/progress.py)."""
    from reproduce.engine.progress import format_duration

    started = [time.perf_counter()]

    def report(trainer: Any) -> None:
        seconds, started[0] = time.perf_counter() - started[0], time.perf_counter()
        loss = total_loss(getattr(trainer, "tloss", None))
        map50 = (getattr(trainer, "metrics", None) or {}).get("metrics/mAP50(B)")
        shown = "n/a" if map50 is None else f"{float(map50):.4f}"
        left = seconds * (trainer.epochs - trainer.epoch - 1)
        log.info("train %s: epoch %d/%d: loss %.4f, val mAP50 %s, %s, about %s left", label, trainer.epoch + 1,
                 trainer.epochs, loss, shown, format_duration(seconds), format_duration(left))  # fmt: skip

    return report


def total_loss(tloss: Any) -> float:
    """The epoch's mean training loss from ultralytics' running mean ``tloss``: a dict of loss items (8.4: box, cls,
    dfl), or a tensor of them in older releases; NaN before the first step."""
    if tloss is None:
        return float("nan")
    if isinstance(tloss, dict):
        return float(sum(float(value) for value in tloss.values()))
    return float(tloss.sum())
