"""Speed and memory of one SF-MD training step with and without MWAM, and of the CASIA-SURF data loader.

The step is the trainer's own: a :class:`reproduce.engine.trainer.Trainer` is set up (``setup()``: host, MWAM,
SGD, grad scaler, autocast and channels-last exactly as a run would use them) on a small synthetic CASIA-SURF and
its ``train_step`` is timed on a fixed batch that already lies on the device (random-spectrum inputs from
:func:`reproduce.benchmarks.mwam_step.make_inputs`, random labels), so the loader is not in the step's time.
The loader is timed on its own, on the same synthetic set, and compared with the step's samples/s.

Variants: ``sf_md`` (no MWAM at all: the trainer's MWAM is replaced by a no-op), ``sf_md+mwam_grad`` (gradient
editing: ``mwam.step`` before the forward, branch-gradient hooks) and ``sf_md+mwam_hybrid`` (auxiliary heads,
Eq. 7 loss through ``mwam.weighted_loss``, and gradient editing). CUDA uses the trainer's defaults there (bf16
autocast, channels-last); the CPU runs fp32 and, by default, a smaller batch and few steps: its numbers are for
relative comparison only (and are noisy on a shared machine).

**Interleaving.** On each device the three trainers (and each MWAM variant's ``mwam.step`` alone) are timed in one
process, round by round (:mod:`reproduce.benchmarks.interleave`: each round times each once, the order rotated
every round, warm-up rounds discarded), never one variant to the end and then the next -- that showed a 24 %
MWAM overhead that did not exist. A timing is ``steps`` back-to-back steps with one synchronisation at the end,
divided by ``steps`` (on CUDA the pipelined time a training loop sees). ``step_ms`` is the median over the rounds,
with min, max, quartiles and the raw times beside it, and ``paired_ratio`` is the step's time over ``sf_md``'s in
the same round (median, min, max). Peak memory is measured per variant before the rounds, while the variant is
built and takes its first step (the variants built before it stay alive, and are subtracted).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import resource
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from reproduce.benchmarks.interleave import interleave, synchroniser
from reproduce.benchmarks.mwam_step import MODALITIES, make_inputs, time_step
from reproduce.devices import device_name
from reproduce.engine.trainer import Trainer
from reproduce.runs.config import DataConfig, HostConfig, MWAMSettings, RunConfig, TrainConfig
from reproduce.runs.registry import Registry
from reproduce.runs.runtime import Runtime

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sf_md": ("off", {}),
    "sf_md+mwam_grad": ("grad", {}),
    "sf_md+mwam_hybrid": ("hybrid", {"aux_heads": True}),
}  # variant -> (the run's mwam.intervention, host options); "off": no MWAM at all
PRIMARY = "sf_md+mwam_grad"  # "SF-MD + MWAM" of the targets: gradient editing, MWAM's default intervention
TARGETS: dict[str, Any] = {
    "cuda_h100_batch": 64,
    "cuda_h100_samples_per_s_min": 8700.0,
    "mwam_share_max": 0.01,
    "loader_keeps_up": True,
    "reference_authors_sf_step_ms": 29.0,
    "reference_authors_sf_samples_per_s": 2200.0,
}
DEFAULT_BATCH: dict[str, int] = {"cpu": 16, "cuda": 64}
# (timed rounds, warm-up rounds, steps per timing) per device type when the caller gives none: the whole CPU run
# stays near a minute and a half on 2 cores; on CUDA a timing is 10 back-to-back steps (pipelined).
DEFAULT_ITERS: dict[str, tuple[int, int, int]] = {"cpu": (3, 1, 1), "cuda": (10, 2, 10)}
LOADER_SAMPLES = 256
LOADER_BATCH = 64


# ---------------------------------------------------------------------------------------------- memory
def _proc_status_mb(field: str) -> float | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in MiB, or None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_mb() -> float | None:
    """Current resident set size in MiB (/proc, else psutil, else None)."""
    current = _proc_status_mb("VmRSS")
    if current is not None:
        return current
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) through /proc/self/clear_refs; False where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return _proc_status_mb("VmHWM") is not None


def _release_host_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), so RSS starts low."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class _PeakMemory:
    """Peak memory of a block: CUDA ``max_memory_allocated``; CPU peak RSS minus the RSS at the start."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start = 0.0
        self.resettable = False

    @staticmethod
    def method(device: torch.device) -> str:
        """How :meth:`peak_mb` measures on ``device``, in words."""
        if device.type == "cuda":
            return (
                "torch.cuda.max_memory_allocated after reset_peak_memory_stats, minus memory_allocated before the "
                "variant was built (its own model, optimiser, batch and step)"
            )
        if _reset_peak_rss():
            return "peak RSS (Linux VmHWM, reset through /proc/self/clear_refs) minus RSS before the trainer was built"
        return "resource.getrusage ru_maxrss (peak RSS since process start, not resettable) minus RSS before setup"

    def begin(self) -> None:
        if self.device.type == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device) / 2**20
            return
        _release_host_memory()
        self.start = _rss_mb() or 0.0
        self.resettable = _reset_peak_rss()

    def peak_mb(self) -> float | None:
        if self.device.type == "cuda":
            return max(torch.cuda.max_memory_allocated(self.device) / 2**20 - self.start, 0.0)
        peak = _proc_status_mb("VmHWM") if self.resettable else None
        if peak is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
        return max(peak - self.start, 0.0)


# ---------------------------------------------------------------------------------------------- the step
def make_batch(batch: int, size: int, device: torch.device | str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch on ``device``: the three modalities of :func:`make_inputs` plus random 0/1 labels."""
    out: dict[str, torch.Tensor] = dict(make_inputs(batch, size, device, seed))
    labels = torch.randint(0, 2, (batch,), generator=torch.Generator().manual_seed(seed + 1))
    out["label"] = labels.to(device)
    return out


def build_trainer(
    variant: str, device: torch.device | str, batch: int, data_root: str | Path, work_dir: str | Path, seed: int = 0
) -> Trainer:
    """A set-up :class:`Trainer` of ``variant`` (a key of :data:`VARIANTS`) on ``device``, with the trainer's defaults.

    ``data_root`` must hold a (synthetic) CASIA-SURF with at least ``batch`` training samples; nothing is written
    under ``work_dir`` (the trainer's registry root) by ``setup``. ``sf_md`` runs without MWAM (``mwam: off``).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {list(VARIANTS)}")
    intervention, host_options = VARIANTS[variant]
    config = RunConfig(
        data=DataConfig("casia_surf", root=str(data_root)),
        host=HostConfig("sf_md", dict(host_options)),
        train=TrainConfig(batch_size=batch),
        mwam=MWAMSettings(intervention),
        seed=seed,
    )
    runtime = Runtime(device=str(device), progress=False)
    trainer = Trainer(config, registry=Registry(Path(work_dir) / "runs"), runtime=runtime)
    trainer.setup()
    trainer.host.train()
    return trainer


def _timing_fields(timing: Mapping[str, Any], batch: int) -> dict[str, Any]:
    """step_ms (the median over the rounds of one timing each), samples/s, the spread and the paired ratio."""
    step_ms = float(timing["median_ms"])
    fields: dict[str, Any] = {"step_ms": step_ms, "samples_per_s": batch * 1e3 / step_ms if step_ms > 0 else None}
    fields.update(timing)
    return fields


def _build_measured(
    variant: str, device: torch.device, batch_size: int, size: int, data_root: Path, work_dir: Path
) -> tuple[Trainer, dict[str, torch.Tensor], float | None]:
    """The variant's trainer and batch, and the peak memory of building it and taking its first (untimed) step."""
    memory = _PeakMemory(device)
    memory.begin()
    trainer = build_trainer(variant, device, batch_size, data_root, work_dir)
    batch = make_batch(batch_size, size, device)
    trainer.train_step(batch)
    synchroniser(device)()
    return trainer, batch, memory.peak_mb()


def _time_interleaved(
    trainers: Mapping[str, Trainer],
    batches: Mapping[str, dict[str, torch.Tensor]],
    device: torch.device,
    rounds: int,
    warmup: int,
    steps: int,
    batch_size: int,
) -> tuple[dict[str, dict[str, Any]], str]:
    """Every trainer's step and every MWAM variant's ``mwam.step`` alone, interleaved; per variant its fields."""
    fns: dict[str, Callable[[], Any]] = {v: functools.partial(t.train_step, batches[v]) for v, t in trainers.items()}
    for variant, trainer in trainers.items():
        if "mwam" in trainer.plugins:
            inputs = {m: batches[variant][m] for m in MODALITIES}
            fns[f"{variant}:mwam.step"] = functools.partial(trainer.plugins["mwam"].mwam.step, inputs)
    baseline = "sf_md" if "sf_md" in trainers else next(iter(trainers))
    timed = interleave(fns, rounds=rounds, warmup=warmup, steps=steps, baseline=baseline, sync=synchroniser(device))
    entries: dict[str, dict[str, Any]] = {}
    for variant in trainers:
        entry = _timing_fields(timed["variants"][variant], batch_size)
        alone = timed["variants"].get(f"{variant}:mwam.step")
        if alone is not None:
            entry["mwam_step_ms"] = alone["median_ms"]
        entries[variant] = entry
    return entries, timed["measurement"]


def _compile_all(
    trainers: Mapping[str, Trainer],
    batches: Mapping[str, dict[str, torch.Tensor]],
    device: torch.device,
    compile_mode: str,
) -> tuple[dict[str, Trainer], dict[str, dict[str, Any]]]:
    """Compile each trainer's model (one variant at a time: its compile time and peak memory); the compiled
    trainers, and per variant its set-up fields or its error (a failing compiler must not lose the others)."""
    compiled: dict[str, Trainer] = {}
    fields: dict[str, dict[str, Any]] = {}
    for variant, trainer in trainers.items():
        try:
            memory = _PeakMemory(device)
            memory.begin()
            trainer.model = torch.compile(trainer.model, mode=None if compile_mode == "default" else compile_mode)
            begin = time.perf_counter()
            trainer.train_step(batches[variant])  # compiles (forward and backward graphs)
            synchroniser(device)()
            fields[variant] = {"compile_s": time.perf_counter() - begin, "peak_mem_mb": memory.peak_mb()}
            compiled[variant] = trainer
        except Exception as error:
            fields[variant] = {"error": f"{type(error).__name__}: {error}"[:500]}
    return compiled, fields


def _add_shares(mode: dict[str, dict[str, Any]]) -> None:
    """MWAM's share of the step (``mwam.step`` alone / step) and the with-minus-without overhead, per variant."""
    base = mode.get("sf_md", {}).get("step_ms")
    for name, entry in mode.items():
        step_ms = entry.get("step_ms")
        if name == "sf_md" or step_ms is None:
            continue
        if "mwam_step_ms" in entry:
            entry["mwam_share"] = entry["mwam_step_ms"] / step_ms
        if base is not None:
            overhead = step_ms - base
            entry["overhead_ms"] = overhead
            entry["overhead_share"] = overhead / step_ms
            if "mwam_step_ms" in entry:
                entry["hooks_ms_estimate"] = overhead - entry["mwam_step_ms"]


def _h2d_copy_ms(batch_size: int, size: int, device: torch.device, iters: int, warmup: int) -> float:
    """Time of copying one pinned fp32 batch (3 modalities + labels) to the device, as the trainer does per step."""
    host_batch = {k: v.pin_memory() for k, v in make_batch(batch_size, size, "cpu").items()}
    timing = time_step(
        lambda b: {k: v.to(device, non_blocking=True) for k, v in b.items()}, host_batch, device, warmup, iters
    )
    return float(timing.get("pipelined_ms", timing["median_ms"]))


def _warm_up_process(device: torch.device, batch_size: int, size: int, data_root: Path, work_dir: Path) -> None:
    """One untimed ``sf_md`` step, so that one-off library initialisation is in no variant's time or memory."""
    trainer = build_trainer("sf_md", device, batch_size, data_root, work_dir)
    trainer.train_step(make_batch(batch_size, size, device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    del trainer
    _release_host_memory()


def _bench_device(
    device: torch.device,
    batch: int,
    size: int,
    rounds: int | None,
    warmup: int | None,
    data_root: Path,
    work_dir: Path,
    compile_mode: str | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """Every variant on one device: ``{"eager": {variant: ...}, "compiled": {...}}`` plus the device's set-up."""
    default_rounds, default_warmup, default_steps = DEFAULT_ITERS["cuda" if device.type == "cuda" else "cpu"]
    rounds = default_rounds if rounds is None else rounds
    warmup = default_warmup if warmup is None else warmup
    steps = default_steps if steps is None else steps
    cuda = device.type == "cuda"
    result: dict[str, Any] = {
        "device_name": device_name(device),
        "batch": batch,
        "rounds": rounds,
        "warmup_rounds": warmup,
        "steps_per_timing": steps,
        "precision": "bf16 autocast" if cuda else "fp32",
        "channels_last": cuda,
        "memory_method": _PeakMemory.method(device),
        "timing": "step_ms = median over the rounds; one timing = steps_per_timing back-to-back steps with one "
        "synchronisation at the end, divided by steps_per_timing (pipelined on CUDA)",
    }
    if cuda:
        result["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    else:
        result["threads"] = torch.get_num_threads()
    _warm_up_process(device, batch, size, data_root, work_dir)
    trainers: dict[str, Trainer] = {}
    batches: dict[str, dict[str, torch.Tensor]] = {}
    memory: dict[str, float | None] = {}
    for variant in VARIANTS:  # one at a time, before the timed rounds: each one's memory
        trainers[variant], batches[variant], memory[variant] = _build_measured(
            variant, device, batch, size, data_root, work_dir
        )
    eager, measurement = _time_interleaved(trainers, batches, device, rounds, warmup, steps, batch)
    for variant, entry in eager.items():
        entry["peak_mem_mb"] = memory[variant]
    result["measurement"] = measurement
    modes: dict[str, dict[str, dict[str, Any]]] = {"eager": eager}
    if compile_mode is not None:
        compiled_trainers, compiled = _compile_all(trainers, batches, device, compile_mode)
        if compiled_trainers:
            timed, _ = _time_interleaved(compiled_trainers, batches, device, rounds, warmup, steps, batch)
            for variant, entry in timed.items():  # mwam.step alone is not compiled: timed again beside them
                compiled[variant].update(entry)
        modes["compiled"] = {variant: compiled[variant] for variant in VARIANTS}
        result["compile_mode"] = compile_mode
    for entries in modes.values():
        _add_shares(entries)
    result.update(modes)
    del trainers, batches
    _release_host_memory()
    if cuda:
        torch.cuda.empty_cache()
        copy_ms = _h2d_copy_ms(batch, size, device, rounds * steps, warmup)
        result["h2d_copy_ms"] = copy_ms
        result["h2d_copy_note"] = "not in step_ms (the batch is already on the device); the trainer copies per step"
    return result


# ---------------------------------------------------------------------------------------------- loader
def _time_loader(loader: DataLoader) -> tuple[int, float]:
    """(samples, seconds) of one pass over ``loader``."""
    count = 0
    begin = time.perf_counter()
    for item in loader:
        count += len(item["label"])
    return count, time.perf_counter() - begin


def bench_loader(
    data_root: str | Path, batch: int = LOADER_BATCH, workers: Sequence[int] | None = None, pin_memory: bool = False
) -> dict[str, Any]:
    """Samples/s of a DataLoader over the training split (with augmentation), per worker count and cache setting.

    Each setting makes two passes with persistent workers: the first (worker start-up, cache filling) is reported
    as ``first_pass_samples_per_s``, the second (steady state; all hits for ``cache=True``) as ``samples_per_s``.
    """
    from mwam_harness.datasets.casia_surf.loader import CasiaSurfDataset

    cpus = os.cpu_count() or 1
    if workers is None:
        workers = sorted({0, min(2, cpus), cpus})
    configs: dict[str, dict[str, Any]] = {}
    for num_workers in workers:
        for cache in (False, True):
            dataset = CasiaSurfDataset(data_root, "train", train=True, cache=cache, seed=0)
            loader = DataLoader(
                dataset,
                batch_size=batch,
                shuffle=False,  # the same indices reach the same worker in both passes: its cache hits
                num_workers=num_workers,
                persistent_workers=num_workers > 0,
                pin_memory=pin_memory,
            )
            first_count, first_s = _time_loader(loader)
            count, seconds = _time_loader(loader)
            configs[f"workers={num_workers},cache={cache}"] = {
                "num_workers": num_workers,
                "cache": cache,
                "samples_per_s": count / seconds if seconds > 0 else None,
                "first_pass_samples_per_s": first_count / first_s if first_s > 0 else None,
            }
            del loader, dataset
    best = max(configs, key=lambda k: configs[k]["samples_per_s"] or 0.0)
    return {
        "samples": len(CasiaSurfDataset(data_root, "train", train=True)),
        "batch": batch,
        "pin_memory": pin_memory,
        "cpus": cpus,
        "configs": configs,
        "best": best,
        "best_samples_per_s": configs[best]["samples_per_s"],
        "note": "persistent workers; the trainer uses persistent_workers=False, so it pays the first pass every epoch",
    }


def _keeps_up(device_result: dict[str, Any], loader: dict[str, Any] | None) -> dict[str, Any] | None:
    """Whether the best loader setting delivers at least the fastest measured training step's samples/s."""
    if loader is None:
        return None
    rates = [
        entry["samples_per_s"]
        for mode in ("eager", "compiled")
        for entry in device_result.get(mode, {}).values()
        if entry.get("samples_per_s") is not None
    ]
    if not rates or loader["best_samples_per_s"] is None:
        return None
    train = max(rates)
    return {
        "loader_samples_per_s": loader["best_samples_per_s"],
        "loader_config": loader["best"],
        "train_samples_per_s": train,
        "keeps_up": loader["best_samples_per_s"] >= train,
    }


# ---------------------------------------------------------------------------------------------- runner
def _best_mode(device_result: dict[str, Any]) -> str | None:
    """The mode (eager / compiled) in which :data:`PRIMARY` trains fastest."""
    rates = {
        mode: device_result[mode][PRIMARY]["samples_per_s"]
        for mode in ("eager", "compiled")
        if device_result.get(mode, {}).get(PRIMARY, {}).get("samples_per_s") is not None
    }
    return max(rates, key=rates.__getitem__) if rates else None


def _targets_met(report: dict[str, Any]) -> dict[str, Any]:
    cuda = report.get("cuda")
    met: dict[str, Any] = {
        "cuda_is_h100": None,
        "cuda_mode": None,
        "cuda_samples_per_s": None,
        "cuda_mwam_share": None,
    }
    if cuda is not None:
        met["cuda_is_h100"] = "H100" in cuda["device_name"]
        mode = _best_mode(cuda)
        met["cuda_mode"] = mode
        if mode is not None:
            entries = cuda[mode]
            if cuda["batch"] == TARGETS["cuda_h100_batch"]:
                rate = entries[PRIMARY]["samples_per_s"]
                met["cuda_samples_per_s"] = rate >= TARGETS["cuda_h100_samples_per_s_min"]
            shares = [e["mwam_share"] for e in entries.values() if e.get("mwam_share") is not None]
            met["cuda_mwam_share"] = max(shares) <= TARGETS["mwam_share_max"] if shares else None
    for name in ("cpu", "cuda"):
        keeps = report.get(name, {}).get("loader_keeps_up") if name in report else None
        met[f"{name}_loader_keeps_up"] = None if keeps is None else keeps["keeps_up"]
    return met


@contextlib.contextmanager
def _restore_threads(count: int) -> Iterator[None]:
    """Set torch's intra-op thread count back to ``count`` on exit."""
    try:
        yield
    finally:
        torch.set_num_threads(count)


def run_benchmark(
    devices: Sequence[str] | None = None,
    batch: int | None = None,
    size: int = 112,
    rounds: int | None = None,
    warmup: int | None = None,
    compile: bool | str = False,
    loader: bool = True,
    loader_samples: int | None = None,
    loader_batch: int = LOADER_BATCH,
    loader_workers: Sequence[int] | None = None,
    threads: int | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """Time the SF-MD training step (three variants, interleaved) on every device and the data loader; one
    JSON-ready dict.

    ``devices`` defaults to CPU plus CUDA when available. ``batch`` defaults per device (:data:`DEFAULT_BATCH`:
    64 on CUDA, 16 on CPU); ``rounds`` (timed), ``warmup`` (discarded rounds) and ``steps`` (steps per timing)
    per device type (:data:`DEFAULT_ITERS`). ``compile`` (True or
    a ``torch.compile`` mode such as ``"reduce-overhead"``) adds compiled-host numbers on CUDA (the CPU is never
    compiled: it would take minutes). The loader is timed on a synthetic CASIA-SURF of ``loader_samples``
    training images (default: 256, or two batches per worker when more workers are timed) at ``size`` px.
    ``threads`` sets torch's intra-op threads for the run (restored afterwards); on a machine shared with other
    jobs, 1 avoids OpenMP barrier stalls that otherwise dominate the CPU numbers.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if devices is None:
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    targets = [torch.device(name) for name in devices]
    for device in targets:
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but torch.cuda.is_available() is False")
    batches = {d.type: batch if batch is not None else DEFAULT_BATCH[d.type] for d in targets}
    compile_mode = None if compile is False else ("default" if compile is True else str(compile))
    cpus = os.cpu_count() or 1
    worker_counts = sorted(set(loader_workers)) if loader_workers is not None else sorted({0, min(2, cpus), cpus})
    if loader_samples is None:
        loader_samples = max(LOADER_SAMPLES, 2 * loader_batch * max(worker_counts))
    report: dict[str, Any] = {
        "benchmark": "train_step",
        "batch": batches,
        "shape": [3, size, size],
        "modalities": len(MODALITIES),
        "torch": torch.__version__,
        "variants": list(VARIANTS),
        "targets": dict(TARGETS),
        "notes": [
            "step: Trainer.train_step (MWAM step, channels-last, autocast, forward with modality dropout, CE loss, "
            "backward, SGD lr 1e-3 momentum 0.9 wd 5e-4 nesterov) on a batch already on the device",
            "sf_md has no MWAM; mwam_share = mwam.step alone / step; overhead = step with MWAM - step without "
            "(hybrid's overhead includes its auxiliary heads); hooks_ms_estimate = overhead - mwam.step",
            "the variants (and mwam.step alone) run interleaved, one timing each per round, the order rotated every "
            "round, warm-up rounds discarded; paired_ratio = step / sf_md's step of the same round (median, min, max)",
            "peak_mem_mb: per variant, while it is built and takes its first step, before the timed rounds",
            "CPU numbers (fp32, smaller batch, few steps) are for relative comparison only",
        ],
    }
    from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp, _restore_threads(previous_threads):
        begin = time.perf_counter()
        need = max([loader_samples, *batches.values()])
        root = write_casia_surf(Path(tmp) / "surf", num_train=need, num_val=1, num_test=1, size=size)
        generate_s = time.perf_counter() - begin
        loader_result = None
        if loader:
            pin = any(d.type == "cuda" for d in targets)
            loader_result = bench_loader(root, loader_batch, worker_counts, pin_memory=pin)
            loader_result["generate_s"] = generate_s
            loader_result["size"] = size
        report["loader"] = loader_result
        for device in targets:
            mode = compile_mode if device.type == "cuda" else None
            result = _bench_device(
                device, batches[device.type], size, rounds, warmup, root, Path(tmp), mode, steps=steps
            )
            result["loader_keeps_up"] = _keeps_up(result, loader_result)
            report[device.type] = result
    report["targets_met"] = _targets_met(report)
    return report


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_ITERS",
    "PRIMARY",
    "TARGETS",
    "VARIANTS",
    "bench_loader",
    "build_trainer",
    "make_batch",
    "run_benchmark",
]
