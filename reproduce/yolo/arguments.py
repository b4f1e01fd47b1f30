"""A run configuration as ultralytics arguments (torch-free), and what the ultralytics runner cannot honour.

The run's sections give what they can say -- ``train.epochs`` -> ``epochs``, ``train.batch_size`` -> ``batch``,
``train.amp`` -> ``amp`` (``off``: False, ``fp16``: True, ``bf16``: ``"bf16"``), ``train.deterministic``,
``seed``, ``optim`` (``sgd`` / ``adam`` / ``adamw`` -> ``SGD`` / ``Adam`` / ``AdamW``, ``lr`` -> ``lr0``,
``momentum``, ``weight_decay``), ``data.options.imgsz`` -- and the ``ultralytics`` method's options the rest.
Settings the runner cannot honour are errors naming the key: a learning-rate ``schedule`` (ultralytics has its own:
warm-up then linear or cosine to ``lrf``, method options), ``train.iterations_per_epoch``,
``train.channels_last``, MWAM's loss-level interventions (the host has no per-modality heads), SGD without
Nesterov (ultralytics' SGD is always Nesterov), ``eval.split`` other than test / val, listed ``plugins`` (the runner
drives MWAM and SDE only), and a ``runtime.val_split`` other than ``val`` (ultralytics validates ``val`` every
epoch). SDE (``sde: {enabled: true}``) is honoured: the trainer drives the SDE plug-in on the two backbones' SPPF
outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reproduce.runs.config import ConfigError, RunConfig, ScheduleConfig
from reproduce.runs.runtime import Runtime

OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}
AMP = {"off": False, "fp16": True, "bf16": "bf16", "auto": True}
DEFAULT_IMGSZ = 640
DATA_OPTIONS = ("imgsz", "hsv")
MWAM_INTERVENTIONS = ("off", "none", "grad")
#: The ultralytics output folder inside a run's registry folder (``weights/last.pt``, ``best.pt``, plots, csv).
OUTPUT_NAME = "ultralytics"


def check_config(config: RunConfig) -> None:
    """ConfigError for every setting of ``config`` the ultralytics runner cannot honour (module docstring)."""
    if config.method.name != "ultralytics":
        raise ConfigError(
            f"host {config.host.name!r} trains through ultralytics: set method.name: ultralytics (got "
            f"{config.method.name!r}); its options are ultralytics' recipe"
        )
    if config.schedule != ScheduleConfig():
        raise ConfigError(
            "schedule: ultralytics has its own learning-rate schedule (warm-up, then linear or cosine to lrf); set "
            "method.options warmup_epochs / lrf / cos_lr instead of a schedule section"
        )
    if config.train.iterations_per_epoch is not None:
        raise ConfigError("train.iterations_per_epoch: ultralytics runs one pass over the training split per epoch")
    if config.train.channels_last is not None:
        raise ConfigError("train.channels_last: set through method.options.extra {channels_last: ...} for ultralytics")
    if config.plugins:
        raise ConfigError(
            f"plugins {[p.name for p in config.plugins]}: the ultralytics runner drives the built-in plug-ins MWAM "
            "and SDE only (its own loop calls no other plug-in)"
        )
    if config.mwam.intervention not in MWAM_INTERVENTIONS:
        raise ConfigError(
            f"mwam.intervention {config.mwam.intervention!r}: the two-stream YOLO has no per-modality heads for "
            f"Eq. 7; use one of {MWAM_INTERVENTIONS}"
        )
    if config.optim.name not in OPTIMIZERS:
        raise ConfigError(f"optim.name {config.optim.name!r}: ultralytics offers {sorted(OPTIMIZERS)} here")
    if config.optim.name == "sgd" and not config.optim.nesterov:
        raise ConfigError("optim.nesterov: ultralytics' SGD is always Nesterov")
    if config.eval.split not in ("test", "val"):
        raise ConfigError(f"eval.split {config.eval.split!r}: the DroneVehicle layout has val and test")
    unknown = sorted(set(config.data.options) - set(DATA_OPTIONS))
    if unknown:
        raise ConfigError(f"data.options {unknown}: the two-stream data set takes {list(DATA_OPTIONS)}")
    if config.data.modalities is not None:
        raise ConfigError("data.modalities: the two-stream model always trains on RGB and IR")


def ultralytics_device(device: str) -> str | None:
    """The runtime's device as ultralytics spells it: ``auto`` -> None (its own choice), ``cuda`` / ``cuda:1`` ->
    ``0`` / ``1``, ``cpu`` -> ``cpu``. More than one GPU is refused (ultralytics' DDP re-launches the run
    through a pickled trainer and may pip-install ``cloudpickle``, which fails offline)."""
    if device == "auto":
        return None
    if device == "cpu":
        return "cpu"
    if device.startswith("cuda"):
        index = device.partition(":")[2] or "0"
        if "," in index:
            raise ConfigError(f"device {device!r}: the ultralytics runner trains on one GPU")
        return index
    raise ConfigError(f"device {device!r}: the ultralytics runner takes auto, cpu, cuda or cuda:N")


def imgsz(config: RunConfig) -> int:
    return int(config.data.options.get("imgsz", DEFAULT_IMGSZ))


def train_arguments(config: RunConfig, runtime: Runtime, data_yaml: Path, run_dir: Path) -> dict[str, Any]:
    """``config`` as the overrides of ``DetectionTrainer(overrides=...)``; output under ``run_dir/ultralytics``."""
    check_config(config)
    split = getattr(runtime, "val_split", "val")
    if split != "val":
        raise ConfigError(
            f"runtime.val_split {split!r}: ultralytics validates the data set's val split after every epoch (its "
            "best.pt), and the per-subset validation of the ultralytics runner validates the same split"
        )
    options = config.method.resolved_options()
    o, t = config.optim, config.train
    arguments = {
        "model": config.host.options.get("cfg", "yolov8n.yaml"),
        "data": str(data_yaml),
        "task": "detect",
        "epochs": t.epochs,
        "batch": t.batch_size,
        "imgsz": imgsz(config),
        "optimizer": OPTIMIZERS[o.name],
        "lr0": o.lr,
        "momentum": o.momentum if o.name == "sgd" else o.betas[0],
        "weight_decay": o.weight_decay,
        "amp": AMP[t.amp],
        "deterministic": t.deterministic,
        "seed": config.seed,
        "workers": runtime.workers,
        "project": str(Path(run_dir).resolve()),  # ultralytics nests a relative project under ./runs/detect/
        "name": OUTPUT_NAME,
        "exist_ok": True,
        "verbose": False,
        **options.train_arguments(),
    }
    device = ultralytics_device(runtime.device)
    if device is not None:
        arguments["device"] = device
    return arguments


def validation_arguments(config: RunConfig, runtime: Runtime, data_yaml: Path, split: str) -> dict[str, Any]:
    """The arguments of the final per-subset evaluation (as the fork's ``model.val(split='test', imgsz=640)``:
    rectangular batches, ultralytics' default confidence 0.001 and NMS IoU 0.7)."""
    arguments = {
        "data": str(data_yaml),
        "task": "detect",
        "mode": "val",
        "split": split,
        "imgsz": imgsz(config),
        "batch": config.eval.batch_size,
        "rect": True,
        "workers": runtime.workers,
        "plots": config.method.resolved_options().plots,
        "verbose": False,
    }
    device = ultralytics_device(runtime.device)
    if device is not None:
        arguments["device"] = device
    return arguments
