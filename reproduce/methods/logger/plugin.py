"""The logger plug-in (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reproduce.methods.base import Plugin, register_plugin

if TYPE_CHECKING:
    from reproduce.methods.context import TrainContext

#: The series ``curves.csv`` keeps (per-modality loss curves and MWAM's K / FRM, Fig. 4).
CURVE_SERIES = ("loss/", "mwam/K/", "mwam/frm/")


@register_plugin("logger", kind="builtin")
class LoggerPlugin(Plugin):
    """Step values to the tracker and ``curves.csv``, epoch means, the final table (package docstring)."""

    order = 90

    def __init__(self, panel: str = "") -> None:
        super().__init__(None)
        self.panel = panel
        self.curves: Any = None

    @classmethod
    def from_run(cls, config: Any, runtime: Any) -> LoggerPlugin:
        return cls(panel=(runtime.column if runtime is not None else "") or config.variant)

    def on_train_start(self, ctx: TrainContext) -> None:
        """``curves.csv`` beside the run (a resumed run keeps the rows up to its checkpoint's step)."""
        from reproduce.tracking import CurveWriter

        run_dir = getattr(ctx, "run_dir", None)
        if ctx.distributed.is_main and run_dir is not None:
            self.curves = CurveWriter(run_dir / "curves.csv", self.panel, ctx.global_step or None)

    def on_log(self, ctx: TrainContext, values: dict[str, float]) -> None:
        ctx.tracker.log(values, step=ctx.global_step)
        if self.curves is not None:
            self.curves.write({k: v for k, v in values.items() if k.startswith(CURVE_SERIES)}, ctx.global_step)

    def on_epoch_end(self, ctx: TrainContext, epoch: int, entry: dict[str, Any]) -> None:
        lr = ctx.optimizer.param_groups[0]["lr"] if ctx.optimizer is not None else None
        ctx.tracker.log({"epoch/loss": entry["loss"], "epoch/lr": lr, "epoch": epoch}, step=ctx.global_step)

    def on_train_end(self, ctx: TrainContext, result: Mapping[str, Any]) -> None:
        """The per-subset results (metric and PCR) as a W&B table, and the test metrics and selection as summary."""
        if not ctx.distributed.is_main:
            return
        from reproduce.pcr import pcr

        primary = result["primary"]
        keys = list(result["subsets"])
        full = result["subsets"][keys[-1]][primary]
        rows = [[key, values[primary], pcr(full, values[primary]) if key != keys[-1] else None]
                for key, values in result["subsets"].items()]  # fmt: skip
        ctx.tracker.log_table("results/subsets", ["subset", result["metric"], "PCR"], rows)
        ctx.tracker.summary({f"test/{k}/{primary}": v[primary] for k, v in result["subsets"].items()})
        ctx.tracker.summary({f"selection/{k}": v for k, v in result["selection"].items()})

    def describe(self) -> dict[str, Any]:
        return {"plugin": "logger", "curves": self.curves is not None}
