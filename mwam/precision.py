"""Full float32 precision for the DCT, whatever the user set globally.

With TF32 (or bf16 matmuls on oneDNN) the DCT of an 8x8 patch carries relative errors near 1e-3: the
near-zero high-frequency coefficients that Eq. 4 divides by would be replaced by rounding noise.
cuDNN convolutions default to TF32, so convolutions are covered as well as matrix products.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def _precision_switches() -> list[object]:
    switches = []
    for backend in (torch.backends.cuda, torch.backends.mkldnn, torch.backends.cudnn):
        for op in ("matmul", "conv"):
            switch = getattr(backend, op, None)
            if switch is not None and hasattr(switch, "fp32_precision"):
                switches.append(switch)
    return switches


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """Within the block, float32 matmuls and convolutions use IEEE float32 (no TF32, no bf16 shortcuts)."""
    switches = _precision_switches()
    if not switches:  # torch without the per-backend API
        previous = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
        try:
            torch.set_float32_matmul_precision("highest")
            torch.backends.cudnn.allow_tf32 = False
            yield
        finally:
            torch.set_float32_matmul_precision(previous[0])
            torch.backends.cudnn.allow_tf32 = previous[1]
        return
    saved = [s.fp32_precision for s in switches]
    if all(value == "ieee" for value in saved):
        yield
        return
    try:
        for s in switches:
            s.fp32_precision = "ieee"
        yield
    finally:
        for s, value in zip(switches, saved, strict=True):
            s.fp32_precision = value


class KeepsBufferDtypes(torch.nn.Module):
    """A module whose floating-point buffers keep their dtype through ``.to(dtype)``, ``.half()``, ``.bfloat16()``.

    Casting the model around MWAM to bfloat16 would otherwise round its float64 statistics (the FRM bank, K, the
    last FRM: values up to ~1e10 that Eq. 2 and 6 compare) to 8 bits of mantissa. ``_apply`` is where every such
    conversion (and every device move) passes: a buffer whose dtype the conversion changed is replaced by its
    previous value, unrounded, on the device the conversion chose, so device moves still work.
    """

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]  # torch's own signature
        before = {name: b for name, b in self._buffers.items() if b is not None and b.is_floating_point()}
        result = super()._apply(fn, recurse)
        for name, old in before.items():
            new = self._buffers.get(name)
            if new is not None and new.dtype != old.dtype:
                self._buffers[name] = old.to(device=new.device)
        return result
