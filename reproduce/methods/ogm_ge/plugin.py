"""The hooks of ``ogm_ge`` (see the package docstring). Torch is imported inside the hooks, so that the catalog
imports this module without torch; the coefficient rules are plain Python."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, StepData, register_plugin
from reproduce.methods.ogm_ge.options import OGMGEOptions

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext

WHO = "ogm_ge"
#: The noise generator's seed is the run's seed plus this offset (its stream is then unrelated to the global one).
NOISE_SEED_OFFSET = 62_022
#: Added to the unmodulated gradient's standard deviation before drawing the noise (both codes: ``std() + 1e-8``).
NOISE_STD_EPS = 1e-8


def _divide(numerator: float, denominator: float) -> float:
    """numerator / denominator with x / 0 = inf (x > 0) and 0 / 0 = 1 (a tie), where torch would give inf / nan."""
    if denominator == 0.0:
        return math.inf if numerator > 0.0 else 1.0
    return numerator / denominator


def official_coefficients(scores: Sequence[float], alpha: float) -> tuple[list[float], float]:
    """OGM-GE's Eq. 10 as ``main.py`` l.105-124 computes it, for the two modalities' scores ``(s_0, s_1)`` (the
    batch sums of softmax(out_m)[y]; s_0 plays audio's role, s_1 visual's): rho = s_1 / s_0; if rho > 1 the second
    modality gets k = 1 - tanh(alpha rho) and the first 1, otherwise the first gets 1 - tanh(alpha / rho) and the
    second 1 (so a tie modulates the first). Returns ``([k_0, k_1], rho)``."""
    s0, s1 = (float(s) for s in scores)
    rho = _divide(s1, s0)
    if rho > 1:
        return [1.0, 1.0 - math.tanh(alpha * rho)], rho
    inverse = math.inf if rho == 0.0 else 1.0 / rho
    return [1.0 - math.tanh(alpha * inverse), 1.0], rho


def balancebenchmark_coefficients(
    scores: Sequence[float], alpha: float, eps: float = 1e-5, clamp: bool = True
) -> tuple[list[float], float]:
    """BalanceBenchmark's two-modality rule (``OGM_trainer.py`` l.135-151): each modality's ratio against the
    other, rho_m = s_m / (s_other + eps), and k_m = max(1 - tanh(alpha rho_m), 0) where rho_m > 1, else 1 (a tie
    modulates neither). Returns ``([k_0, k_1], rho_1)`` (rho_1 = s_1 / (s_0 + eps), the logged ratio)."""
    s0, s1 = (float(s) for s in scores)
    ratios = [_divide(s0, s1 + eps), _divide(s1, s0 + eps)]
    coefficients = []
    for rho in ratios:
        k = 1.0 - math.tanh(alpha * rho) if rho > 1 else 1.0
        coefficients.append(max(k, 0.0) if clamp and rho > 1 else k)
    return coefficients, ratios[1]


def multimodal_coefficients(
    scores: Sequence[float], alpha: float, eps: float = 1e-5, clamp: bool = True
) -> tuple[list[float], list[float]]:
    """BalanceBenchmark's rule for more than two modalities (``OGM_trainer.py`` l.109, 112-123, 144-151: written for
    three, applied here to M >= 3 unchanged), on the scores s_m = batch sums of the cos-softmax of the correctly
    predicted positions (:meth:`OGMGE.loss`): rho_m = s_m / (min_n s_n + eps), k_m = max(1 - tanh(alpha rho_m), 0)
    where rho_m > 1, else 1 (so the weakest modality, rho < 1, is never modulated). A score of exactly 0 (no
    correctly predicted position in the batch: their ``sum`` of integer zeros, which fails ``.detach()`` and is
    skipped by ``except: continue`` before ``minscore = min(...)``) is left out of the minimum; its own ratio is 0
    (k = 1), where their next line raises a KeyError. With every score 0 the minimum stays inf: every k = 1.
    Returns ``(k, rho)``, each in the modalities' order."""
    values = [float(s) for s in scores]
    minimum = min((s for s in values if s != 0.0), default=math.inf)
    ratios = [s / (minimum + eps) for s in values]
    coefficients = []
    for rho in ratios:
        k = 1.0 - math.tanh(alpha * rho) if rho > 1 else 1.0
        coefficients.append(max(k, 0.0) if clamp and rho > 1 else k)
    return coefficients, ratios


def coefficients(scores: Sequence[float], settings: Mapping[str, Any]) -> tuple[list[float], float | list[float]]:
    """The variant's coefficients (one per modality) and ratio(s) for ``scores`` (``OGMGEOptions.settings()``):
    two modalities, ``(k, rho_1)``; more (BalanceBenchmark only), ``(k, [rho_m])``."""
    if settings["variant"] == "official":
        return official_coefficients(scores, settings["alpha"])
    if len(scores) > 2:
        return multimodal_coefficients(scores, settings["alpha"], settings["ratio_eps"], settings["clamp"])
    return balancebenchmark_coefficients(scores, settings["alpha"], settings["ratio_eps"], settings["clamp"])


def run_modalities(ctx: TrainContext) -> tuple[str, ...]:
    """The run's modalities (the task's, else the host's)."""
    return tuple(getattr(ctx.task, "modalities", None) or ctx.host.modalities)


@register_plugin("ogm_ge")
class OGMGE(Plugin):
    """On-the-fly gradient modulation with generalisation enhancement (package docstring)."""

    options_class = OGMGEOptions

    def __init__(self, options: OGMGEOptions | None = None) -> None:
        super().__init__(options if options is not None else OGMGEOptions())
        self.settings = self.options.settings()
        self.modalities: tuple[str, ...] = ()
        self.parameters: dict[str, list[Any]] = {}
        self.generator: Any = None
        self._scores: Any = None
        self.last: dict[str, float] = {}

    # ------------------------------------------------------------------ hooks
    def setup(self, ctx: TrainContext, dependencies: Mapping[str, Any]) -> None:
        """The modalities (official: two; BalanceBenchmark: two or more), their modulated branch parameters and the
        noise generator (on their device)."""
        import torch

        from reproduce.methods.modality_signals import branch_parameters

        self.modalities = run_modalities(ctx)
        count = len(self.modalities)
        if self.settings["variant"] == "official" and count != 2:
            raise ValueError(
                f"ogm_ge modulates exactly two modalities (Eq. 10 compares the two scores); this run has "
                f"{count}: {list(self.modalities)}. Train it on a pair (data.modalities) or use variant: "
                "balancebenchmark (its rule for more modalities: ratios over the minimum score)"
            )
        if count < 2:
            raise ValueError(f"ogm_ge balances modalities: it needs at least two, this run has {list(self.modalities)}")
        rule = self.settings["parameters"]
        self.parameters = {m: [p for _, p in branch_parameters(ctx.host, m, rule)] for m in self.modalities}
        empty = [m for m, params in self.parameters.items() if not params]
        if empty:
            raise ValueError(
                f"ogm_ge: the host {type(ctx.host).__name__}'s branches {empty} have no trainable parameters under "
                f"the rule {rule!r} (conv: 4-D / 5-D conv weights; matrix: every parameter with more than one "
                "dimension); set options.parameters to the other rule"
            )
        if self.settings["noise"]:
            device = self.parameters[self.modalities[0]][0].device
            seed = int(getattr(ctx.config, "seed", 0) or 0) + NOISE_SEED_OFFSET
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(seed)

    def loss(self, ctx: TrainContext, step: StepData, loss: Any, parts: dict[str, Any]) -> tuple[Any, dict]:
        """Record, detached, each modality's score: the batch sum of the task's correct-class score of out_m
        (classification: softmax(out_m)[y], ``main.py`` l.105-106; dense: its mean over the sample's labelled
        positions); with more than two modalities BalanceBenchmark's cos-softmax on the correct positions."""
        import torch

        from reproduce.methods.modality_signals import correct_class_score, unimodal_logits

        logits = unimodal_logits(ctx, step.output, WHO)
        multi = len(self.modalities) > 2
        scores = [
            correct_class_score(ctx, logits[m].detach(), step.batch, WHO, cosine=multi, correct_only=multi).sum()
            for m in self.modalities
        ]
        self._scores = torch.stack(scores)
        return loss, parts

    def before_optimizer_step(self, ctx: TrainContext) -> None:
        """k from the step's scores (averaged over the processes); within the modulation epochs each modality's
        selected gradients become k_m g (+ N(0, std(g) + 1e-8) with noise)."""
        if self._scores is None:
            raise RuntimeError("ogm_ge: no scores were recorded this step (its loss hook did not run)")
        local = [float(s) for s in self._scores.tolist()]
        self._scores = None
        gathered = ctx.distributed.gather(local)
        scores = [sum(part[i] for part in gathered) / len(gathered) for i in range(len(local))]
        k, ratio = coefficients(scores, self.settings)
        modulating = self.settings["modulation_start"] <= ctx.epoch <= self.settings["modulation_end"]
        self.last = {f"{WHO}/modulating": float(modulating)}
        if isinstance(ratio, list):  # more than two modalities: rho_m = s_m / (min s + eps) each
            self.last.update({f"{WHO}/ratio/{m}": r for m, r in zip(self.modalities, ratio, strict=True)})
        else:
            self.last[f"{WHO}/ratio"] = ratio
        for m, s, k_m in zip(self.modalities, scores, k, strict=True):
            self.last[f"{WHO}/k/{m}"] = k_m
            self.last[f"{WHO}/score/{m}"] = s
        if modulating:
            self.modulate(dict(zip(self.modalities, k, strict=True)))

    def modulate(self, k: Mapping[str, float]) -> None:
        """g <- k_m g (+ Gaussian noise of the unmodulated gradient's standard deviation), modality by modality in
        the run's order, parameter by parameter in the branch's order (the noise stream's order)."""
        import torch

        for m in self.modalities:
            for p in self.parameters[m]:
                if p.grad is None:
                    continue
                if self.generator is not None:
                    std = p.grad.std() + NOISE_STD_EPS  # of the unmodulated gradient (Issue #5: Sigma, not k^2 Sigma)
                    noise = torch.randn(
                        p.grad.shape, generator=self.generator, device=p.grad.device, dtype=p.grad.dtype
                    )
                    p.grad.mul_(k[m]).add_(noise * std)
                else:
                    p.grad.mul_(k[m])

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        values.update(self.last)

    # ------------------------------------------------------------------ state
    def process_state_dict(self) -> dict[str, Any]:
        """The noise generator's state (the same on every process: the gradients and the seed are)."""
        return {} if self.generator is None else {"generator": self.generator.get_state()}

    def load_process_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.generator is None:
            if state.get("generator") is not None:
                raise ValueError("ogm_ge: the checkpoint has a noise generator, this run (noise: false) has none")
            return
        if state.get("generator") is None:
            raise ValueError("ogm_ge: the checkpoint has no noise generator state for this run (noise: true)")
        self.generator.set_state(state["generator"].cpu())

    def describe(self) -> dict[str, Any]:
        return {
            "plugin": self.name,
            **self.settings,
            "modulation_epochs": "0-based, inclusive",
            "noise_std": "std of the unmodulated gradient + 1e-8" if self.settings["noise"] else None,
            "score": self.score_rule(),
        }

    def score_rule(self) -> str:
        """How each modality is scored and compared (in the registry entry)."""
        if len(self.modalities) > 2:
            return (
                "batch sum of the mean over labelled positions of softmax(cos(out_m))[y] where argmax(out_m) = y "
                "(else 0); rho_m = s_m / (min of the nonzero s + 1e-5)"
            )
        return "batch sum of the mean over labelled positions of softmax(out_m)[y]; rho = ratio of the two scores"
