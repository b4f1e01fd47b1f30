"""Speed of one MWAM step (FRM + bank + weights) against a straightforward implementation of the same maths.

The straightforward version is written the way research code usually is: patches through view + permute,
an orthonormal 2-D DCT-II of every whole patch through ``torch.fft`` (the Makhoul construction), boolean
masks to pick the low / high corners, and a bank kept as Python floats read back with ``.item()``. The
fast version is :class:`mwam.MWAM`: one strided convolution that computes only the sampled coefficients, no host sync.

The two are timed interleaved in one process (:mod:`reproduce.benchmarks.interleave`: each round times both, the
order alternating fast, naive / naive, fast; warm-up rounds discarded): ``fast_ms`` / ``naive_ms`` are the medians,
``speedup`` their ratio, ``speedup_paired`` the median, min and max of naive / fast within the same round.
:func:`time_step` remains for single measurements (one callable, nothing to compare it with).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

import mwam
from reproduce.benchmarks.interleave import interleave, synchroniser
from reproduce.devices import device_name

MODALITIES: tuple[str, ...] = ("rgb", "depth", "ir")
TARGETS: dict[str, float | bool] = {
    "cpu_speedup_min": 10.0,
    "cuda_h100_speedup_min": 20.0,
    "cuda_h100_fast_step_max_ms": 0.2,
    "no_host_sync": True,
}
# (rounds, warm-up rounds, steps per timing) per device type when the caller gives none: fast and naive interleaved
# (reproduce.benchmarks.interleave); the CPU run stays well under a minute on 2 cores; on CUDA each timing is 10
# back-to-back steps with one synchronisation at the end (pipelined, as in a training loop).
DEFAULT_ITERS: dict[str, tuple[int, int, int]] = {"cpu": (15, 2, 1), "cuda": (20, 3, 10)}


# ---------------------------------------------------------------------------------------------- straightforward
def _dct_ortho_last(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II along the last axis through one complex FFT of length N (Makhoul, 1980)."""
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)  # even samples, then odd ones reversed
    spectrum = torch.view_as_real(torch.fft.fft(v, dim=-1))
    k = -torch.arange(n, dtype=x.dtype, device=x.device) * math.pi / (2 * n)
    real = spectrum[..., 0] * torch.cos(k) - spectrum[..., 1] * torch.sin(k)  # Re(V_k e^{-i pi k / 2N})
    scale = torch.full((n,), math.sqrt(2.0 / n), dtype=x.dtype, device=x.device)
    scale[0] = math.sqrt(1.0 / n)
    return real * scale


def _dct_2d(x: torch.Tensor) -> torch.Tensor:
    """2-D orthonormal DCT-II of the last two axes: the last axis first, then the second-last."""
    rows = _dct_ortho_last(x)
    return _dct_ortho_last(rows.transpose(-1, -2)).transpose(-1, -2)


def naive_frequency_components(x: torch.Tensor, patch: int = 8, window: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Straightforward ``(low, high)`` of every p x p patch, laid out like :func:`mwam.frequency_components`.

    Returns two ``(B, C, H // p, W // p, q, q)`` tensors: ``low[..., a, b]`` is DCT coefficient (a, b),
    ``high[..., a, b]`` coefficient (p-1-a, p-1-b). float64 input computes in float64, any other in float32.
    """
    batch, channels, height, width = x.shape
    n_h, n_w = height // patch, width // patch
    x = x[:, :, : n_h * patch, : n_w * patch]
    x = x.double() if x.dtype == torch.float64 else x.float()
    patches = x.reshape(batch, channels, n_h, patch, n_w, patch).permute(0, 2, 4, 1, 3, 5)  # (B, nH, nW, C, p, p)
    coeffs = _dct_2d(patches.contiguous())
    low_mask = torch.zeros(patch, patch, dtype=torch.bool, device=x.device)
    low_mask[:window, :window] = True
    high_mask = torch.zeros(patch, patch, dtype=torch.bool, device=x.device)
    high_mask[-window:, -window:] = True
    low = coeffs[..., low_mask].reshape(batch, n_h, n_w, channels, window, window)
    high = coeffs[..., high_mask].reshape(batch, n_h, n_w, channels, window, window).flip(-2, -1)
    return low.permute(0, 3, 1, 2, 4, 5), high.permute(0, 3, 1, 2, 4, 5)


class NaiveMWAMStep:
    """The per-step loop of research code: FRM per modality, a Python-float bank (``.item()`` syncs), T, K.

    Matches :class:`mwam.MWAM` with its default configuration (Eq. 2 bank starting at F^0, T over the mean of
    this batch's FRMs, Eq. 5 with alpha 1.5, beta 1, lam 6, gamma 0.7) on inputs with no blank samples.
    """

    def __init__(
        self,
        modalities: Sequence[str] = MODALITIES,
        patch: int = 8,
        window: int = 2,
        sigma: float = 1e-6,
        momentum: float = 0.5,
        alpha: float = 1.5,
        beta: float = 1.0,
        lam: float = 6.0,
        gamma: float = 0.7,
    ) -> None:
        self.modalities = tuple(modalities)
        self.patch, self.window, self.sigma, self.momentum = patch, window, sigma, momentum
        self.alpha, self.beta, self.lam, self.gamma = alpha, beta, lam, gamma
        self.bank: dict[str, float] = {}

    def step(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Measure the batch, update the bank, return K (M,) as a float32 tensor on the inputs' device."""
        frms: dict[str, float] = {}
        for m in self.modalities:
            low, high = naive_frequency_components(inputs[m], self.patch, self.window)
            frms[m] = (low / (high + self.sigma)).abs().sum().item()
            previous = self.bank.get(m)
            w = self.momentum
            self.bank[m] = frms[m] if previous is None else w * previous + (1.0 - w) * frms[m]
        mean = sum(frms.values()) / len(frms)
        weights = []
        for m in self.modalities:
            t = frms[m] / (mean + self.sigma)
            weights.append(self.alpha - self.beta / (1.0 + math.exp(-self.lam * (t - self.gamma))))
        device = inputs[self.modalities[0]].device
        return torch.tensor(weights, dtype=torch.float32, device=device)

    __call__ = step


# ---------------------------------------------------------------------------------------------- timing
def time_step(
    fn: Callable[[Mapping[str, torch.Tensor]], Any],
    inputs: Mapping[str, torch.Tensor],
    device: torch.device | str,
    warmup: int,
    iters: int,
) -> dict[str, float | int]:
    """Milliseconds per call of ``fn(inputs)``: median, mean, min and (population) std over ``iters`` calls after
    ``warmup``.

    On CUDA each call is bracketed by CUDA events after a ``torch.cuda.synchronize()`` (so it is the device
    time from the first launch to the last kernel, launch gaps included) and ``pipelined_ms`` adds the mean of
    ``iters`` back-to-back calls with one synchronisation at the end (what a training loop sees). On CPU each
    call is timed with ``time.perf_counter``.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f"need iters >= 1 and warmup >= 0, got iters={iters}, warmup={warmup}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    for _ in range(warmup):
        fn(inputs)
    times: list[float] = []
    pipelined: float | None = None
    if cuda:
        torch.cuda.synchronize(device)
        for _ in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(inputs)
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn(inputs)
        end.record()
        torch.cuda.synchronize(device)
        pipelined = start.elapsed_time(end) / iters
    else:
        for _ in range(iters):
            begin = time.perf_counter()
            fn(inputs)
            times.append((time.perf_counter() - begin) * 1e3)
    result: dict[str, float | int] = {
        "median_ms": statistics.median(times),
        "mean_ms": statistics.fmean(times),
        "min_ms": min(times),
        "std_ms": statistics.pstdev(times),
        "iters": iters,
        "warmup": warmup,
    }
    if pipelined is not None:
        result["pipelined_ms"] = pipelined
    return result


def time_step_with_mwam(
    step: Callable[..., Any],
    host: torch.nn.Module,
    inputs: Mapping[str, torch.Tensor],
    device: torch.device | str,
    warmup: int,
    iters: int,
    steps: int = 1,
) -> dict[str, Any]:
    """A host's training ``step(inputs, mwam=None)`` without MWAM, with MWAM's gradient editing (``step(inputs,
    mwam)``: the caller runs ``mwam.step`` and backward) and MWAM's own step alone, timed interleaved
    (:func:`reproduce.benchmarks.interleave.interleave`: ``warmup`` discarded rounds, ``iters`` timed rounds of
    ``steps`` calls each); MWAM's share of the step with it, the paired ratio with / without, and the peak CUDA
    memory of one plain step taken before the rounds (None on the CPU). The host benchmarks' common core
    (``brats_step``, ``nyuv2_step``).

    The gradient hooks of MWAM are on the host only while the MWAM variant runs (attached and removed outside
    its timed window), so the plain step pays nothing of MWAM.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    peak = None
    if cuda:  # one plain step before MWAM exists: the host's own footprint
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step(inputs)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    module = mwam.MWAM.for_host(host, intervention="grad").to(device)
    module.remove_hooks()  # attached only around the MWAM variant's timings (see hooks_attached)

    def alone() -> None:
        with torch.no_grad():
            module.step(inputs)

    timed = interleave(
        {"plain": lambda: step(inputs), "mwam": lambda: step(inputs, module), "mwam_alone": alone},
        rounds=iters,
        warmup=warmup,
        steps=steps,
        baseline="plain",
        sync=synchroniser(device),
        contexts={"mwam": lambda: hooks_attached(module)},
    )
    entries = timed["variants"]
    return {
        "train_step_ms": entries["plain"],
        "train_step_mwam_ms": entries["mwam"],
        "mwam_step_ms": entries["mwam_alone"],
        "mwam_share_of_step": entries["mwam_alone"]["median_ms"] / entries["mwam"]["median_ms"],
        "mwam_over_plain_paired": entries["mwam"]["paired_ratio"],
        "measurement": timed["measurement"],
        "peak_memory_mb": peak,
    }


@contextmanager
def hooks_attached(module: mwam.MWAM) -> Iterator[mwam.MWAM]:
    """``module``'s gradient hooks on its branches' parameters within the block (the same registration as at its
    construction), removed afterwards."""
    module.add_hooks()
    try:
        yield module
    finally:
        module.remove_hooks()


def check_no_sync(module: mwam.MWAM, inputs: Mapping[str, torch.Tensor]) -> bool | None:
    """On CUDA: True when ``module.step(inputs)`` runs under sync debug mode "error" without raising.

    On CPU there is no device-to-host synchronisation to detect: returns None. The debug mode is restored.
    """
    device = next(iter(inputs.values())).device
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        module.step(inputs)
    except RuntimeError:
        return False
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    return True


# ---------------------------------------------------------------------------------------------- data and runner
def _normalise(x: torch.Tensor) -> torch.Tensor:
    """Per sample and channel, map to [-1, 1]."""
    flat = x.flatten(2)
    low, high = flat.amin(dim=2, keepdim=True), flat.amax(dim=2, keepdim=True)
    return (2.0 * (flat - low) / (high - low).clamp(min=1e-12) - 1.0).view_as(x)


def _blur(x: torch.Tensor, size: int) -> torch.Tensor:
    return torch.nn.functional.avg_pool2d(x, size, stride=1, padding=size // 2, count_include_pad=False)[
        ..., : x.shape[-2], : x.shape[-1]
    ]


def make_inputs(
    batch: int = 64, size: int = 112, device: torch.device | str = "cpu", seed: int = 0
) -> dict[str, torch.Tensor]:
    """Three float32 modalities (B, 3, size, size) in [-1, 1] with different spectra.

    rgb: textured and noise-rich (lightly blurred noise plus white noise); depth: smooth (a blurred Brownian
    surface -- the 2-D cumulative sum of noise -- plus faint sensor noise); ir: in between (blurred noise plus
    mild noise). Seeded, so every run measures the same data.
    """
    g = torch.Generator().manual_seed(seed)
    shape = (batch, 3, size, size)
    rgb = _normalise(_blur(torch.randn(shape, generator=g), 3) + 0.5 * torch.randn(shape, generator=g))
    surface = _normalise(_blur(torch.randn(shape, generator=g).cumsum(-1).cumsum(-2), 5))
    depth = (surface + 0.02 * torch.randn(shape, generator=g)).clamp(-1.0, 1.0)
    ir = _normalise(_blur(torch.randn(shape, generator=g), 7) + 0.05 * torch.randn(shape, generator=g))
    return {"rgb": rgb.to(device), "depth": depth.to(device), "ir": ir.to(device)}


def _bench_device(
    device: torch.device, batch: int, size: int, rounds: int | None, warmup: int | None, steps: int | None
) -> dict[str, Any]:
    default_rounds, default_warmup, default_steps = DEFAULT_ITERS["cuda" if device.type == "cuda" else "cpu"]
    rounds = default_rounds if rounds is None else rounds
    warmup = default_warmup if warmup is None else warmup
    steps = default_steps if steps is None else steps
    inputs = make_inputs(batch, size, device)

    fast = mwam.MWAM(modalities=MODALITIES, intervention="none").to(device)
    naive = NaiveMWAMStep(MODALITIES)
    k_diff = (fast.step(inputs) - naive.step(inputs)).abs().max().item()  # first step of both: same bank state

    timed = interleave(
        {"fast": lambda: fast.step(inputs), "naive": lambda: naive.step(inputs)},
        rounds=rounds,
        warmup=warmup,
        steps=steps,
        baseline="fast",
        sync=synchroniser(device),
    )
    no_sync = check_no_sync(fast, inputs)
    fast_t, naive_t = timed["variants"]["fast"], timed["variants"]["naive"]
    fast_ms, naive_ms = float(fast_t["median_ms"]), float(naive_t["median_ms"])
    result: dict[str, Any] = {
        "device_name": device_name(device),
        "fast_ms": fast_ms,
        "naive_ms": naive_ms,
        "speedup": naive_ms / fast_ms if fast_ms > 0 else math.inf,
        "speedup_paired": naive_t["paired_ratio"],
        "fast_step_under_0.2ms": fast_ms < TARGETS["cuda_h100_fast_step_max_ms"] if device.type == "cuda" else None,
        "no_host_sync": no_sync,
        "measurement": timed["measurement"],
        "rounds": rounds,
        "warmup_rounds": warmup,
        "steps_per_timing": steps,
        "fast": fast_t,
        "naive": naive_t,
        "max_abs_k_diff": k_diff,
    }
    if device.type == "cpu":
        result["threads"] = torch.get_num_threads()
    return result


def run_benchmark(
    devices: Sequence[str] | None = None,
    batch: int = 64,
    size: int = 112,
    iters: int | None = None,
    warmup: int | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """Time the fast MWAM step and the straightforward one, interleaved, on every device; one JSON-ready dict.

    ``iters`` timed rounds after ``warmup`` discarded ones, ``steps`` calls per timing, each defaulting per device
    type (:data:`DEFAULT_ITERS`); ``devices`` defaults to CPU plus CUDA when available. Device entries sit at the
    top level under their names (``"cpu"``, ``"cuda"``).
    """
    if devices is None:
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    report: dict[str, Any] = {
        "benchmark": "mwam_step",
        "batch": batch,
        "shape": [3, size, size],
        "modalities": len(MODALITIES),
        "torch": torch.__version__,
        "targets": dict(TARGETS),
    }
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but torch.cuda.is_available() is False")
        report[device.type] = _bench_device(device, batch, size, iters, warmup, steps)

    cpu, cuda = report.get("cpu"), report.get("cuda")
    is_h100 = None if cuda is None else "H100" in cuda["device_name"]
    report["targets_met"] = {
        "cpu_speedup": None if cpu is None else cpu["speedup"] >= TARGETS["cpu_speedup_min"],
        "cuda_is_h100": is_h100,
        "cuda_speedup": None if cuda is None else cuda["speedup"] >= TARGETS["cuda_h100_speedup_min"],
        "cuda_fast_step_ms": None if cuda is None else cuda["fast_step_under_0.2ms"],
        "no_host_sync": None if cuda is None else cuda["no_host_sync"],
    }
    return report
