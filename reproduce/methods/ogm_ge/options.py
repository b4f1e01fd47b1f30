"""The options of ``ogm_ge`` (torch-free): the variant and the settings in which BalanceBenchmark differs from the
authors' code, each ``None`` by default, meaning "the variant's value" (:data:`VARIANT_DEFAULTS`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: ``official``: GeWu-Lab/OGM-GE_CVPR2022 ``main.py``; ``balancebenchmark``: GeWu-Lab/BalanceBenchmark
#: ``balancemm/trainer/OGM_trainer.py`` with ``configs/trainer_config.yaml``'s ``OGM`` entry.
VARIANTS = ("official", "balancebenchmark")
#: Which branch parameters are modulated: ``conv`` (4-D / 5-D conv weights: the official ``len(grad.size()) == 4``),
#: ``matrix`` (every parameter with more than one dimension: BalanceBenchmark's ``len(grad.size()) != 1``).
PARAMETER_RULES = ("conv", "matrix")
#: Each variant's value of the options left at None. ``ratio_eps`` and ``clamp`` are not options: they follow the
#: variant (official 0 and no clamp; BalanceBenchmark 1e-5 in each ratio's denominator and k >= 0).
VARIANT_DEFAULTS: dict[str, dict[str, Any]] = {
    # alpha: the README's "default modulation setting" (--alpha 0.1, also its VGGSound value; CREMA-D: 0.8);
    # epochs: main.py's --modulation_starts 0 / --modulation_ends 50 (both inclusive, 0-based epochs).
    "official": {"alpha": 0.1, "modulation_start": 0, "modulation_end": 50, "parameters": "conv"},
    # trainer_config.yaml l.9-13: alpha 0.3, modulation_starts 10, modulation_ends 80 (0-based, inclusive).
    "balancebenchmark": {"alpha": 0.3, "modulation_start": 10, "modulation_end": 80, "parameters": "matrix"},
}
VARIANT_RULES: dict[str, dict[str, Any]] = {
    "official": {"ratio_eps": 0.0, "clamp": False},
    "balancebenchmark": {"ratio_eps": 1e-5, "clamp": True},
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class OGMGEOptions:
    """variant: ``official`` or ``balancebenchmark`` (which code the defaults and the rules follow).

    alpha: alpha of k = 1 - tanh(alpha * rho) (None: official 0.1, BalanceBenchmark 0.3).
    modulation_start, modulation_end: the first and last epoch (0-based, both inclusive, as both codes count) in
        which gradients are modulated (None: official 0 / 50, BalanceBenchmark 10 / 80); an end past the run's last
        epoch modulates to the end.
    noise: OGM-GE's generalisation enhancement, Gaussian noise N(0, std of the unmodulated gradient) added to every
        modulated parameter's gradient (also where k = 1); ``false`` is plain OGM.
    parameters: ``conv`` or ``matrix`` (:data:`PARAMETER_RULES`; None: official ``conv``, BalanceBenchmark
        ``matrix``).
    """

    variant: str = "official"
    alpha: float | None = None
    modulation_start: int | None = None
    modulation_end: int | None = None
    noise: bool = True
    parameters: str | None = None

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.alpha is not None:
            number = isinstance(self.alpha, int | float) and not isinstance(self.alpha, bool)
            if not number or not math.isfinite(self.alpha) or self.alpha <= 0:
                raise ValueError(f"alpha must be a finite number > 0, got {self.alpha!r}")
        for name in ("modulation_start", "modulation_end"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                raise ValueError(f"{name} must be an epoch (an integer >= 0, 0-based) or null, got {value!r}")
        if not isinstance(self.noise, bool):
            raise ValueError(f"noise must be true (OGM-GE) or false (OGM), got {self.noise!r}")
        if self.parameters is not None and self.parameters not in PARAMETER_RULES:
            raise ValueError(f"parameters must be one of {', '.join(PARAMETER_RULES)} or null, got {self.parameters!r}")
        start, end = self.settings()["modulation_start"], self.settings()["modulation_end"]
        if end < start:
            raise ValueError(f"modulation_end ({end}) must not be before modulation_start ({start})")

    def settings(self) -> dict[str, Any]:
        """Every setting with the variant's values filled in (what the plug-in uses and records)."""
        out = {"variant": self.variant, "noise": self.noise}
        for name, default in VARIANT_DEFAULTS[self.variant].items():
            value = getattr(self, name)
            out[name] = default if value is None else value
        out["alpha"] = float(out["alpha"])
        out.update(VARIANT_RULES[self.variant])
        return out
