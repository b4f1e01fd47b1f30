"""The options of ``lfm`` (torch-free): the official code's settings, BalanceBenchmark's as a variant, and each of
their differences as a named option (None: the variant's value)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

VARIANTS = ("official", "balancebenchmark")
SCHEDULES = ("fitted", "learnable")
INITS = ("official", "balancebenchmark")
CLS_INPUTS = ("mean", "fused")
DIVERGENCES = ("pairwise", "mean")
HELDOUT_MODES = ("eval", "train")

#: The learnable schedule's starting (lambda_c, lambda_g): the official ``Crema_epoch_learnable.py`` l.250
#: ``cls_k = [0.05, 0.95]``; BalanceBenchmark ``LFM_trainer.py`` ``alpha = {1: 0.05, 0: 0.95}`` (the opposite).
INIT_LAMBDAS = {"official": (0.05, 0.95), "balancebenchmark": (0.95, 0.05)}
#: The official held-out set: 16 training samples removed (``Crema_epoch_learnable.py`` l.216-233), half of them
#: used (``getAlpha_Learnable`` l.59-62).
OFFICIAL_HELDOUT = 8

#: What each variant sets for the options left at None.
VARIANT_SETTINGS: dict[str, dict[str, Any]] = {
    # njustkmg/NeurIPS24-LFM: the README runs Crema_epoch.py (fitted schedule); CE on the mean of the unimodal
    # logits; the held-out pass of the learnable script runs in eval mode from epoch 1 on (val() leaves it so).
    "official": {
        "schedule": "fitted",
        "init": "official",
        "cls_input": "mean",
        "heldout_mode": "eval",
        "heldout_size": OFFICIAL_HELDOUT,
    },
    # GeWu-Lab/BalanceBenchmark LFM_trainer.py: learnable only, CE on the fused output, lambda_c = 0.95 first, the
    # held-out pass in train mode (model.train() before getAlpha_Learnable), a quarter of the first val batch.
    "balancebenchmark": {
        "schedule": "learnable",
        "init": "balancebenchmark",
        "cls_input": "fused",
        "heldout_mode": "train",
        "heldout_size": None,
    },
}


def _choice(value: Any, choices: tuple[str, ...], name: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if value not in choices:
        allowed = ", ".join(choices) + (" or None (the variant's)" if optional else "")
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")


def _integer(value: Any, name: str, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        extra = " or None" if optional else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{extra}, got {value!r}")


@dataclass(frozen=True)
class LFMOptions:
    """Options of ``lfm`` (package docstring). Options left at None take the ``variant``'s value.

    variant: ``official`` (njustkmg/NeurIPS24-LFM) or ``balancebenchmark`` (GeWu-Lab/BalanceBenchmark).
    schedule: ``fitted`` (the degree-5 polynomial in the epoch, ``Crema_epoch.py``) or ``learnable`` (the bilevel
        update once per epoch, ``Crema_epoch_learnable.py``); official: fitted, BalanceBenchmark: learnable.
    init: the learnable schedule's starting lambdas, ``official`` (lambda_c 0.05, lambda_g 0.95) or
        ``balancebenchmark`` (0.95, 0.05).
    cls_input: the classification term's logits, ``mean`` of the unimodal logits (official) or the host's
        ``fused`` output (BalanceBenchmark).
    divergence: with more than two modalities, ``pairwise`` (BalanceBenchmark: the two-distribution term averaged
        over every pair) or ``mean`` (each distribution against the mean of all of them); the same for two.
    lr_alpha, halve_every: the learnable step's rate, halved every ``halve_every`` epochs (1e-4, 20).
    heldout_split: the split whose first samples are the held-out batch of the learnable step (``val``).
    heldout_size: how many of them (official: 8, the half of its 16 removed samples that it uses;
        BalanceBenchmark / None under it: a quarter of the split's first batch).
    heldout_mode: the host's mode in the held-out pass, ``eval`` (official from its second epoch on) or ``train``
        (BalanceBenchmark; BatchNorm statistics are updated, random draws of the host are made).
    """

    variant: str = "official"
    schedule: str | None = None
    init: str | None = None
    cls_input: str | None = None
    divergence: str = "pairwise"
    lr_alpha: float = 1e-4
    halve_every: int = 20
    heldout_split: str = "val"
    heldout_size: int | None = None
    heldout_mode: str | None = None

    def __post_init__(self) -> None:
        _choice(self.variant, VARIANTS, "variant")
        _choice(self.schedule, SCHEDULES, "schedule", optional=True)
        _choice(self.init, INITS, "init", optional=True)
        _choice(self.cls_input, CLS_INPUTS, "cls_input", optional=True)
        _choice(self.divergence, DIVERGENCES, "divergence")
        _choice(self.heldout_mode, HELDOUT_MODES, "heldout_mode", optional=True)
        number = isinstance(self.lr_alpha, int | float) and not isinstance(self.lr_alpha, bool)
        if not number or not math.isfinite(self.lr_alpha) or self.lr_alpha < 0:
            raise ValueError(f"lr_alpha must be a finite number >= 0, got {self.lr_alpha!r}")
        _integer(self.halve_every, "halve_every", 1)
        _integer(self.heldout_size, "heldout_size", 1, optional=True)
        if not isinstance(self.heldout_split, str) or not self.heldout_split:
            raise ValueError(f"heldout_split must name a split (e.g. 'val'), got {self.heldout_split!r}")

    def effective(self) -> dict[str, Any]:
        """Every setting as used: the options given, the variant's values for those left at None."""
        base = VARIANT_SETTINGS[self.variant]
        out: dict[str, Any] = {"variant": self.variant}
        for name in ("schedule", "init", "cls_input", "heldout_mode", "heldout_size"):
            value = getattr(self, name)
            out[name] = base[name] if value is None else value
        out.update(
            divergence=self.divergence,
            lr_alpha=self.lr_alpha,
            halve_every=self.halve_every,
            heldout_split=self.heldout_split,
        )
        return out
