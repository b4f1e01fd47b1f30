"""The options of ``agm`` (torch-free): the variant and the settings in which BalanceBenchmark differs from the
authors' code, each ``None`` by default, meaning "the variant's value" (:data:`VARIANT_DEFAULTS`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: ``official``: lihong2303/AGM_ICCV2023 (``run/CREMAD_main.py``, ``model/CREMAD_net.py``, ``utils/config.py``);
#: ``balancebenchmark``: GeWu-Lab/BalanceBenchmark ``balancemm/trainer/AGM_trainer.py`` (``newGrad``, ``AGMTrainer``).
VARIANTS = ("official", "balancebenchmark")
#: After ``modulation_end``: ``hold`` keeps the last coefficients (the official output-gradient hooks keep their
#: scale: ``update_scale`` is only called within the modulation epochs), ``release`` uses 1.
AFTER_MODULATION = ("hold", "release")
VARIANT_DEFAULTS: dict[str, dict[str, Any]] = {
    # utils/config.py l.76 (alpha 1.0); CREMAD_main.py l.151-152 (min(., 10)), l.233-243 (clip 1.0 beyond +-1).
    "official": {"alpha": 1.0, "cap": 10.0, "clip": 1.0, "after_modulation": "hold", "all_zero_pass": True},
    # configs/trainer_config.yaml l.14-19 (alpha 0.1); AGM_trainer.py l.573 (min(., 7)), l.582-585 (clip 5.0).
    "balancebenchmark": {"alpha": 0.1, "cap": 7.0, "clip": 5.0, "after_modulation": "release", "all_zero_pass": False},
}


def _number(value: Any, name: str, positive: bool = True) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite number{' > 0' if positive else ''}, got {value!r}")


@dataclass(frozen=True)
class AGMOptions:
    """variant: ``official`` or ``balancebenchmark`` (which code the defaults and the rules follow).

    alpha: alpha of k_m = exp(alpha min(opt_m - ratio_m, cap)) (None: official 1.0, BalanceBenchmark 0.1).
    modulation_start, modulation_end: the first and last epoch (0-based, inclusive) in which the coefficients are
        updated and applied; end None: to the last epoch (the default of both variants; see the package docstring).
        The running scores are updated in every epoch, as in both codes.
    cap: the cap of opt_m - ratio_m (None: official 10, BalanceBenchmark 7).
    clip: when a gradient of the fusion head's weights lies outside +-clip, every gradient is clipped to total norm
        ``clip`` (None: official 1.0, BalanceBenchmark 5.0).
    after_modulation: ``hold`` or ``release`` (:data:`AFTER_MODULATION`; None: official ``hold``, BalanceBenchmark
        ``release``).
    all_zero_pass: official only: also run the host on all-zero inputs (the authors' ``zero_padding_out``, computed
        every step and never used: it changes no number, only the cost); None: official true.
    clipping: the clip above on (both codes: true) or off (``false``: no clipping, no fusion head needed; for hosts
        where the rule has no counterpart).
    head: which parameters are the fusion head whose gradient triggers the clip: a parameter name of the host or a
        module prefix (``decoder_fuse.seg_layer``: RFNet's fused-output layer), its trainable weights of more than
        one dimension; None: every trainable weight of more than one dimension outside ``host.branches()``
        (resnet18_concat: ``head.weight``, the authors' ``fusion_module.fc_out.weight``).
    """

    variant: str = "official"
    alpha: float | None = None
    modulation_start: int = 0
    modulation_end: int | None = None
    cap: float | None = None
    clip: float | None = None
    after_modulation: str | None = None
    all_zero_pass: bool | None = None
    clipping: bool = True
    head: str | None = None

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        for name in ("alpha", "cap", "clip"):
            if getattr(self, name) is not None:
                _number(getattr(self, name), name)
        for name in ("modulation_start", "modulation_end"):
            value = getattr(self, name)
            if value is None and name == "modulation_end":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an epoch (an integer >= 0, 0-based), got {value!r}")
        if self.modulation_end is not None and self.modulation_end < self.modulation_start:
            raise ValueError(
                f"modulation_end ({self.modulation_end}) must not be before modulation_start ({self.modulation_start})"
            )
        if self.after_modulation is not None and self.after_modulation not in AFTER_MODULATION:
            raise ValueError(
                f"after_modulation must be one of {', '.join(AFTER_MODULATION)} or null, got {self.after_modulation!r}"
            )
        if self.all_zero_pass is not None and not isinstance(self.all_zero_pass, bool):
            raise ValueError(f"all_zero_pass must be true, false or null, got {self.all_zero_pass!r}")
        if not isinstance(self.clipping, bool):
            raise ValueError(f"clipping must be true or false, got {self.clipping!r}")
        if self.head is not None and (not isinstance(self.head, str) or not self.head.strip(".")):
            raise ValueError(f"head must be a parameter name or module prefix of the host, or null, got {self.head!r}")
        if self.head is not None and not self.clipping:
            raise ValueError("head names the parameters that trigger the clip; with clipping: false it has no use")
        if self.variant == "balancebenchmark" and self.all_zero_pass:
            raise ValueError("all_zero_pass is the official variant's unused all-zero pass; balancebenchmark has none")

    def settings(self) -> dict[str, Any]:
        """Every setting with the variant's values filled in (what the plug-in uses and records)."""
        out: dict[str, Any] = {
            "variant": self.variant,
            "modulation_start": self.modulation_start,
            "modulation_end": self.modulation_end,
            "clipping": self.clipping,
            "head": self.head,
        }
        for name, default in VARIANT_DEFAULTS[self.variant].items():
            value = getattr(self, name)
            out[name] = default if value is None else value
        for name in ("alpha", "cap", "clip"):
            out[name] = float(out[name])
        return out
