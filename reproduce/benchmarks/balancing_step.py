"""Cost of one training step of each balancing plug-in beside MWAM's, on the ResNet-18 concat host, interleaved.

Every variant is the same run -- CASIA-SURF (a small synthetic set) on RGB + Depth, host ``resnet18_concat`` with
``host.options.modalities = [rgb, depth]``, the trainer's defaults -- set up as a real
:class:`reproduce.engine.trainer.Trainer` (``setup()``), and its ``train_step`` is timed on one fixed batch that
already lies on the device (random-spectrum inputs of :func:`reproduce.benchmarks.mwam_step.make_inputs`, random
labels), so the loader is not in the step's time. The variants (:data:`VARIANTS`):

- ``plain``: no MWAM (``mwam: off``), no plug-in; ``mwam_grad``: MWAM's default intervention (``grad``);
- one balancing plug-in each, with its defaults (``plugins: [{name: X}]``, ``mwam: off``, so that each ratio is the
  plug-in's own cost): ``ogm_ge``, ``agm`` (official: two extra forward passes with gradient and one without),
  ``agm_balancebenchmark`` (three extra forward passes without gradient), ``lfm`` (fitted schedule), ``lfm_learnable``
  (steady steps) and ``lfm_learnable_epoch_start`` (the first step of an epoch, which also runs the learnable
  schedule's hypergradient on the held-out batch: the step is timed after ``updated_epoch`` is reset, as at every
  new epoch), ``mslr``, ``mses``;
- ``crmt_host`` (the host ``resnet18_crmt`` alone: CRMT's orthogonal, scaled head) and ``crmt`` (that host with
  ``plugins: [{name: crmt}]`` in its step 1: the margin regulariser), so the plug-in's and the host's shares can be
  told apart.

**Interleaving.** All trainers are built first; then every round steps each variant once
(:mod:`reproduce.benchmarks.interleave`; the order rotates by one each round -- A B C, B C A, C A B, ... -- so that
no variant always runs first), so that the load of a shared machine affects all alike: ``warmup`` untimed rounds,
then ``rounds`` timed ones. Per variant: the median, min, max and quartiles in ms, the median's ratio to
``plain``'s, and the paired ratio (the step over ``plain``'s step of the same round: median, min, max).

**Per epoch.** MSLR and MSES also validate each modality on the validation split at the end of every epoch
(``on_epoch_end``: ``modality_signals.unimodal_validation``; MSES also keeps a CPU copy of an improved branch). That
hook is timed per call (one per epoch), interleaved with the step rounds, on a validation split of ``val_samples``
images, and reported apart from the step (``per_epoch``), with its cost per validation sample (to scale it to a real
split) and in plain steps.

CUDA uses the trainer's defaults (bf16 autocast, channels-last) and synchronises around each timed call; the CPU
runs fp32. CPU numbers are for relative comparison only (and noisy on a shared machine).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from reproduce.benchmarks.interleave import interleave, summarise, synchroniser, torch_threads
from reproduce.benchmarks.mwam_step import make_inputs
from reproduce.devices import device_name
from reproduce.engine.trainer import Trainer
from reproduce.runs.config import DataConfig, HostConfig, MWAMSettings, PluginConfig, RunConfig, TrainConfig
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime

MODALITIES: tuple[str, ...] = ("rgb", "depth")
CONCAT_HOST = "resnet18_concat"
CRMT_HOST = "resnet18_crmt"
EPOCH_START = "lfm_learnable_epoch_start"  # a pseudo-variant: the lfm_learnable run's first step of an epoch


def _variant(
    host: str = CONCAT_HOST, mwam: str = "off", plugin: str | None = None, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"host": host, "mwam": mwam, "plugin": plugin, "options": dict(options or {})}


#: variant -> its run (host, mwam intervention, the plug-in with its options); the order is the first round's.
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": _variant(),
    "mwam_grad": _variant(mwam="grad"),
    "ogm_ge": _variant(plugin="ogm_ge"),
    "agm": _variant(plugin="agm"),
    "agm_balancebenchmark": _variant(plugin="agm", options={"variant": "balancebenchmark"}),
    "lfm": _variant(plugin="lfm"),
    "lfm_learnable": _variant(plugin="lfm", options={"schedule": "learnable"}),
    EPOCH_START: _variant(plugin="lfm", options={"schedule": "learnable"}),
    "mslr": _variant(plugin="mslr"),
    "mses": _variant(plugin="mses"),
    "crmt_host": _variant(host=CRMT_HOST),
    "crmt": _variant(host=CRMT_HOST, plugin="crmt"),
}
BASELINE = "plain"
PER_EPOCH = ("mslr", "mses")  # the plug-ins whose on_epoch_end validates (timed per epoch)
DEFAULTS: dict[str, int] = {"batch": 16, "size": 64, "warmup": 3, "rounds": 10, "val_samples": 64, "threads": 1}


# ---------------------------------------------------------------------------------------------- set-up
def data_options(size: int) -> dict[str, int]:
    """CASIA-SURF loader options that give ``size`` x ``size`` images (test: resize to ``crop``; train: resize to
    ``resize``, then crop), ``resize`` in the authors' 144 / 112 proportion and large enough for the rotated canvas."""
    resize = math.ceil(size * 144 / 112)
    while int(resize * 0.8) <= size:  # the loader's rule: crop < int(0.8 x resize)
        resize += 1
    return {"resize": resize, "crop": size}


def run_config(variant: str, data_root: str | Path, batch: int, size: int, seed: int = 0) -> RunConfig:
    """The :class:`RunConfig` of ``variant`` (a key of :data:`VARIANTS`) on the CASIA-SURF at ``data_root``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {list(VARIANTS)}")
    spec = VARIANTS[variant]
    plugins = () if spec["plugin"] is None else (PluginConfig(spec["plugin"], dict(spec["options"])),)
    return RunConfig(
        data=DataConfig("casia_surf", root=str(data_root), modalities=MODALITIES, options=data_options(size)),
        host=HostConfig(spec["host"], {"modalities": list(MODALITIES)}),
        train=TrainConfig(batch_size=batch),
        plugins=plugins,
        mwam=MWAMSettings(spec["mwam"]),
        seed=seed,
    )


def build_trainer(
    variant: str, device: torch.device | str, batch: int, size: int, data_root: str | Path, work_dir: str | Path
) -> Trainer:
    """A set-up :class:`Trainer` of ``variant`` on ``device`` (its host in training mode); ``data_root`` must hold a
    synthetic CASIA-SURF with at least ``batch`` training images. ``setup`` writes nothing under ``work_dir``."""
    config = run_config(variant, data_root, batch, size)
    trainer = Trainer(config, registry=Registry(Path(work_dir) / "runs"), runtime=Runtime(device=str(device)))
    trainer.setup()
    trainer.host.train()
    return trainer


def make_batch(batch: int, size: int, device: torch.device | str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch on ``device``: RGB and Depth of :func:`make_inputs` plus random 0/1 labels."""
    inputs = make_inputs(batch, size, device, seed)
    out: dict[str, torch.Tensor] = {m: inputs[m] for m in MODALITIES}
    labels = torch.randint(0, 2, (batch,), generator=torch.Generator().manual_seed(seed + 1))
    out["label"] = labels.to(device)
    return out


# ---------------------------------------------------------------------------------------------- timing
def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Milliseconds of one call of ``fn`` (synchronised before and after on CUDA)."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    begin = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize(device)
    return (time.perf_counter() - begin) * 1e3


def _step_fn(name: str, trainer: Trainer, batch: dict[str, torch.Tensor]) -> Callable[[], Any]:
    """One training step of ``name``. LFM's learnable schedule updates its lambdas (a hypergradient on the held-out
    batch) at the first step of each epoch: :data:`EPOCH_START` times that step (``updated_epoch`` reset, as at a new
    epoch), ``lfm_learnable`` the steady steps after it (``updated_epoch`` marked current, as within an epoch)."""
    if name not in (EPOCH_START, "lfm_learnable"):
        return lambda: trainer.train_step(batch)
    plugin = trainer.plugins["lfm"]
    opening = name == EPOCH_START

    def step() -> Any:
        plugin.updated_epoch = -1 if opening else trainer.epoch
        return trainer.train_step(batch)

    return step


def _epoch_end_fn(name: str, trainer: Trainer) -> Callable[[], Any]:
    """The plug-in's own end-of-epoch hook (its validation pass) at the trainer's epoch, with a fresh entry."""
    plugin = trainer.plugins[name]
    return lambda: plugin.on_epoch_end(trainer.ctx, trainer.epoch, {})


def _describe(name: str, trainer: Trainer) -> dict[str, Any]:
    """What the variant runs: its host, MWAM intervention and plug-in (its describe(), AGM's extra passes)."""
    spec = VARIANTS[name]
    out: dict[str, Any] = {"host": spec["host"], "mwam": spec["mwam"], "plugin": spec["plugin"]}
    if spec["plugin"] is not None:
        out["options"] = dict(spec["options"])
        described = trainer.plugins[spec["plugin"]].describe()
        if spec["plugin"] == "agm":
            extra = described["extra_forward_passes_per_step"]
            out["extra_forward_passes_per_step"] = extra
            out["forward_passes_per_step"] = 1 + extra["with_gradient"] + extra["without_gradient"]
            out["backward_passes_per_step"] = 1 + extra["with_gradient"]
    return out


def _bench_device(
    device: torch.device,
    variants: Sequence[str],
    batch_size: int,
    size: int,
    warmup: int,
    rounds: int,
    epoch_rounds: int,
    data_root: Path,
    work_dir: Path,
) -> dict[str, Any]:
    """Build every variant's trainer, then time them interleaved; one device's section of the report."""
    cuda = device.type == "cuda"
    trainers = {name: build_trainer(name, device, batch_size, size, data_root, work_dir) for name in variants}
    batch = make_batch(batch_size, size, device)
    steps = {name: _step_fn(name, trainer, batch) for name, trainer in trainers.items()}
    epoch_ends = {name: _epoch_end_fn(name, trainers[name]) for name in PER_EPOCH if name in trainers}
    first = next(iter(trainers.values()))
    result: dict[str, Any] = {
        "device_name": device_name(device),
        "precision": first.precision,
        "channels_last": first.channels_last,
        "threads": None if cuda else torch.get_num_threads(),
        "batch": batch_size,
        "size": size,
        "warmup_rounds": warmup,
        "rounds": rounds,
        "order": list(variants),
    }
    epoch_times: dict[str, list[float]] = {name: [] for name in epoch_ends}
    for name in epoch_ends:  # untimed: the first call builds the validation loader (and MSES's first copy)
        epoch_ends[name]()

    def epoch_round(index: int) -> None:  # after timed round ``index``: the per-epoch hooks, interleaved too
        if index < epoch_rounds:
            for name, fn in epoch_ends.items():
                epoch_times[name].append(_timed(fn, device))

    timed = interleave(
        {name: steps[name] for name in variants},
        rounds=rounds,
        warmup=warmup,
        baseline=BASELINE if BASELINE in steps else variants[0],
        sync=synchroniser(device),
        after_round=epoch_round,
    )
    result["measurement"] = timed["measurement"]
    result["rotation"] = timed["order"]
    variants_out: dict[str, Any] = {}
    for name in variants:
        entry = _describe(name, trainers[name])
        entry.update(timed["variants"][name])  # the summary, and paired_ratio to the baseline of the same round
        variants_out[name] = entry
    base = variants_out.get(BASELINE, {}).get("median_ms")
    crmt_host = variants_out.get("crmt_host", {}).get("median_ms")
    for name, entry in variants_out.items():
        entry["ratio_to_plain"] = entry["median_ms"] / base if base else None
        if BASELINE not in variants_out:  # paired against another variant: not plain's, so not reported
            entry.pop("paired_ratio", None)
        if name == "crmt" and crmt_host:
            entry["ratio_to_crmt_host"] = entry["median_ms"] / crmt_host
    if EPOCH_START in variants_out and "lfm_learnable" in variants_out:
        extra = variants_out[EPOCH_START]["median_ms"] - variants_out["lfm_learnable"]["median_ms"]
        variants_out[EPOCH_START]["hypergradient_ms_estimate"] = extra  # once per epoch, at its first step
    result["variants"] = variants_out
    val_samples = len(first.eval_loader("val").dataset)
    per_epoch: dict[str, Any] = {}
    for name, times in epoch_times.items():
        if not times:  # epoch_rounds 0: the hooks were not timed
            continue
        entry = {"hook": f"{name}.on_epoch_end (unimodal validation on the val split)", "val_samples": val_samples}
        entry["eval_batch"] = trainers[name].config.eval.batch_size
        entry.update(summarise(times))
        entry["ms_per_val_sample"] = entry["median_ms"] / val_samples
        entry["in_plain_steps"] = entry["median_ms"] / base if base else None
        per_epoch[name] = entry
    result["per_epoch"] = per_epoch
    del trainers, steps, batch
    if cuda:
        torch.cuda.empty_cache()
    return result


# ---------------------------------------------------------------------------------------------- runner
def run_benchmark(
    devices: Sequence[str] | None = None,
    batch: int = DEFAULTS["batch"],
    size: int = DEFAULTS["size"],
    warmup: int = DEFAULTS["warmup"],
    rounds: int = DEFAULTS["rounds"],
    epoch_rounds: int | None = None,
    val_samples: int = DEFAULTS["val_samples"],
    threads: int | None = DEFAULTS["threads"],
    variants: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Time every variant's training step interleaved on each device (default: CPU); one JSON-ready dict.

    ``warmup`` untimed rounds, then ``rounds`` timed ones; ``epoch_rounds`` (default: ``rounds``) of them also time
    MSLR's and MSES's end-of-epoch hook, on a validation split of ``val_samples`` images. ``threads`` sets torch's
    intra-op threads for the run (restored afterwards; None: torch's); ``variants`` a subset of :data:`VARIANTS`
    (in their order).
    """
    for label, value, minimum in (("batch", batch, 1), ("size", size, 8), ("rounds", rounds, 1), ("warmup", warmup, 0)):
        if value < minimum:
            raise ValueError(f"{label} must be >= {minimum}, got {value}")
    if val_samples < 8:
        raise ValueError(f"val_samples must be >= 8 (LFM's held-out batch), got {val_samples}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    chosen = list(VARIANTS) if variants is None else [v for v in VARIANTS if v in set(variants)]
    unknown = sorted(set(variants or ()) - set(VARIANTS))
    if unknown or not chosen:
        raise ValueError(f"unknown or no variants {unknown or list(variants or ())}; known: {list(VARIANTS)}")
    epoch_rounds = rounds if epoch_rounds is None else min(epoch_rounds, rounds)
    targets = [torch.device(name) for name in (devices or ["cpu"])]
    for device in targets:
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but torch.cuda.is_available() is False")
    report: dict[str, Any] = {
        "benchmark": "balancing_step",
        "torch": torch.__version__,
        "batch": batch,
        "size": size,
        "shape": [3, size, size],
        "modalities": list(MODALITIES),
        "dataset": "casia_surf (synthetic)",
        "warmup_rounds": warmup,
        "rounds": rounds,
        "epoch_rounds": epoch_rounds,
        "val_samples": val_samples,
        "baseline": BASELINE,
        "variants": chosen,
        "notes": [
            "step: Trainer.train_step on a fixed batch already on the device (plug-in hooks, forward, loss, "
            "backward, SGD); the variants run interleaved, one step each per round, the order rotated every round "
            "(round r starts with variant r mod n), warm-up rounds discarded",
            "plug-in variants run with mwam: off and the plug-in's defaults; ratio_to_plain = median / plain median; "
            "paired_ratio: the step / plain's step of the same round, over the rounds (median, min, max)",
            "lfm_learnable_epoch_start: the first step of an epoch of lfm schedule learnable (its hypergradient on "
            "the held-out batch, once per epoch); hypergradient_ms_estimate = its median - lfm_learnable's",
            "crmt: step 1 on host resnet18_crmt; crmt_host: the same host without the plug-in",
            "per_epoch: mslr / mses on_epoch_end (one per epoch, not per step), timed interleaved with the rounds",
        ],
    }
    from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf

    with tempfile.TemporaryDirectory(prefix="bench-balancing-") as tmp, torch_threads(threads):
        begin = time.perf_counter()
        root = write_casia_surf(Path(tmp) / "surf", num_train=batch, num_val=val_samples, num_test=1, size=size)
        report["generate_s"] = time.perf_counter() - begin
        report["threads"] = torch.get_num_threads()
        for device in targets:
            report[device.type] = _bench_device(
                device, chosen, batch, size, warmup, rounds, epoch_rounds, root, Path(tmp)
            )
    return report


__all__ = [
    "BASELINE",
    "DEFAULTS",
    "EPOCH_START",
    "MODALITIES",
    "PER_EPOCH",
    "VARIANTS",
    "build_trainer",
    "data_options",
    "make_batch",
    "run_benchmark",
    "run_config",
    "summarise",
]
