"""Hyper-parameters of SDE, validated on construction (imports no torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .schedule import SHAPES, Curriculum, Shape
from .validation import (
    check_bool,
    check_choice,
    check_compute_dtype,
    check_fraction,
    check_non_negative,
    check_positive,
    check_positive_int,
    compute_dtype_name,
)

if TYPE_CHECKING:
    import torch

StrongSign = Literal["random", "adversarial"]
STRONG_SIGNS: tuple[str, ...] = ("random", "adversarial")


@dataclass(frozen=True)
class SDEConfig:
    """Every choice SDE makes (``docs/sde.md`` gives the reasons); the text gives no numbers.

    Split: ``center`` (subtract column means), ``iqr_factor`` (Tukey's k of the fence Q3 + k IQR),
        ``tw_margin`` (noise threshold = MP edge + tw_margin Tracy-Widom scales),
        ``top_is_strong`` (largest signal direction always strong), ``compute_dtype`` (``"float32"`` /
        ``"float64"``; a torch dtype is accepted and stored by its name, see ``torch_compute_dtype``).
    Enhancement ``Delta`` (t = training progress in [0, 1]):
        strong: ``sign_i * strong_noise * alpha(t) * (sigma_i / sigma_1) * sigma_i``, sign random (a
            ``torch.Generator`` seeded with ``seed``) or ``adversarial`` (the sign of a supplied loss gradient);
        weak: ``-weak_scale * alpha(t) * sigma_i``;
        noise: ``-mu(t) / (1 + mu(t)) * sigma_i`` with the SNR penalty mu from ``snr_start`` to ``snr_end``;
        then rescaled so that ``||Delta||_F <= rho ||Sigma||_F``.
    Loss: ``w_instance * InfoNCE(temperature) + lambda(t) * (w_hellinger * H + w_subspace * S_k)``, lambda
        from ``lambda_start`` to ``lambda_end``; S_k uses the top ``subspace_k`` right singular vectors.
        A modality pair with fewer than ``min_pair_samples`` joint samples is skipped.
    ``schedule``: shape of every ramp, ``cosine`` or ``linear``.
    """

    center: bool = True
    iqr_factor: float = 1.5
    tw_margin: float = 2.0
    top_is_strong: bool = False
    compute_dtype: str = "float32"
    strong_noise: float = 0.1
    strong_sign: StrongSign = "random"
    weak_scale: float = 0.2
    snr_start: float = 4.0
    snr_end: float = 0.25
    rho: float = 0.25
    schedule: Shape = "cosine"
    temperature: float = 0.07
    w_instance: float = 1.0
    w_hellinger: float = 1.0
    w_subspace: float = 1.0
    subspace_k: int = 8
    lambda_start: float = 1.0
    lambda_end: float = 0.1
    min_pair_samples: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        check_bool(self.center, "center")
        check_non_negative(self.iqr_factor, "iqr_factor")
        check_non_negative(self.tw_margin, "tw_margin")
        check_bool(self.top_is_strong, "top_is_strong")
        object.__setattr__(self, "compute_dtype", compute_dtype_name(self.compute_dtype))
        check_fraction(self.strong_noise, "strong_noise")
        check_choice(self.strong_sign, STRONG_SIGNS, "strong_sign")
        check_fraction(self.weak_scale, "weak_scale")
        check_non_negative(self.snr_start, "snr_start")
        check_non_negative(self.snr_end, "snr_end")
        if self.snr_end > self.snr_start:
            raise ValueError(
                f"snr_end={self.snr_end} > snr_start={self.snr_start}: the SNR penalty must relax during training"
            )
        check_positive(self.rho, "rho")
        check_choice(self.schedule, SHAPES, "schedule")
        check_positive(self.temperature, "temperature")
        for name in ("w_instance", "w_hellinger", "w_subspace", "lambda_start", "lambda_end"):
            check_non_negative(getattr(self, name), name)
        if self.lambda_end > self.lambda_start:
            raise ValueError(
                f"lambda_end={self.lambda_end} > lambda_start={self.lambda_start}: lambda(t) must shift the "
                "emphasis from the spectral terms to the instance term"
            )
        check_positive_int(self.subspace_k, "subspace_k")
        if check_positive_int(self.min_pair_samples, "min_pair_samples") < 2:
            raise ValueError(
                f"min_pair_samples must be >= 2 (a contrastive pair needs negatives), got {self.min_pair_samples}"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def curriculum(self, t: float) -> Curriculum:
        """alpha(t), lambda(t), the SNR penalty and the noise attenuation at progress t in [0, 1]."""
        return Curriculum.at(
            t,
            shape=self.schedule,
            lambda_start=self.lambda_start,
            lambda_end=self.lambda_end,
            snr_start=self.snr_start,
            snr_end=self.snr_end,
        )

    def split_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`sde.spectral_split` this config selects."""
        return {
            "center": self.center,
            "iqr_factor": self.iqr_factor,
            "tw_margin": self.tw_margin,
            "top_is_strong": self.top_is_strong,
            "compute_dtype": self.torch_compute_dtype,
        }

    @property
    def torch_compute_dtype(self) -> torch.dtype:
        """``compute_dtype`` as a torch dtype (the field holds its name, so that the config imports no torch)."""
        return check_compute_dtype(self.compute_dtype)

    def replace(self, **overrides: Any) -> SDEConfig:
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
