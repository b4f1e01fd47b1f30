"""Full float32 matmul precision for the DCT, whatever the user set globally.

With TF32 (or bf16 matmuls on oneDNN) the DCT of an 8x8 patch carries relative errors near 1e-3: the
near-zero high-frequency coefficients that Eq. 4 divides by would be replaced by rounding noise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def exact_float32_matmul() -> Iterator[None]:
    """Within the block, float32 matrix products use IEEE float32 (no TF32, no reduced precision)."""
    backends = [
        b
        for b in (getattr(torch.backends.cuda, "matmul", None), getattr(torch.backends.mkldnn, "matmul", None))
        if b is not None and hasattr(b, "fp32_precision")
    ]
    if backends:
        saved = [b.fp32_precision for b in backends]
        if all(s == "ieee" for s in saved):
            yield
            return
        try:
            for b in backends:
                b.fp32_precision = "ieee"
            yield
        finally:
            for b, s in zip(backends, saved, strict=True):
                b.fp32_precision = s
        return
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        yield
    finally:
        torch.set_float32_matmul_precision(previous)
