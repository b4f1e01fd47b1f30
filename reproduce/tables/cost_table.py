"""Table 6 as this repository computes it, beside the paper's numbers (``make table6``; the measurements:
``reproduce/benchmarks/model_cost.py``).

One row per model of the paper's table in its order; for each quantity this repository's value and the paper's.
A model this repository does not build yet shows the paper's numbers only. The device the MWAM times were
measured on is named in the title.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from reproduce.tables.paper_data import load_paper_table

UNITS = {"mwam_time_mean": "ms", "mwam_time_std": "ms"}


def _number(value: float | None, decimals: int) -> str:
    return "" if value is None else f"{value:.{decimals}f}"


def render_cost_markdown(report: Mapping[str, Any]) -> str:
    """``report`` is :func:`reproduce.benchmarks.model_cost.run_cost`'s."""
    paper = load_paper_table(6)
    ours: Mapping[str, Mapping[str, float]] = report["table"]
    header = ["Model"]
    for key, printed in paper.quantities.items():
        unit = f" [{UNITS[key]}]" if key in UNITS else ""
        header += [f"{printed} ours{unit}", f"{printed} paper"]
        if key == "flops_g":
            header.append("MACs x batch (G) ours")
    lines = [
        f"**Table 6 (this repository, computed from the models; MWAM times on {report['device']}, torch "
        f"{report['torch']}): {paper.title}**",
        "",
        "| " + " | ".join(header) + " |",
        "| :-- | " + " | ".join("--:" for _ in header[1:]) + " |",
    ]
    for model, printed_values in paper.cost.items():
        row = [model]
        for key in paper.quantities:
            decimals = 2 if key in ("params_m",) else 4
            row += [_number(ours.get(model, {}).get(key), decimals), _number(printed_values.get(key), 4)]
            if key == "flops_g":
                row.append(_number(ours.get(model, {}).get("macs_batch_g"), 2))
        lines.append("| " + " | ".join(row) + " |")
    built = ", ".join(report["models"])
    notes = [
        "",
        f"Computed here: {built}; the other rows show the paper's numbers only.",
        "Params.: the parameters an inference forward pass uses (the paper's convention: RFNet's training-only "
        "separate decoder and MMANet's auxiliary trunk are left out); MWAM adds none.",
        "Flops: PyTorch's FlopCounterMode, one sample, 2 FLOPs per multiply-accumulate of convolutions and matrix "
        "products (normalisation, activations and pooling are not counted); +MWAM adds one MWAM step per sample. "
        "MACs x batch: the same count as multiply-accumulates of one training batch (MMANet 64, ESANet-MD 8, RFNet 2), "
        "which the paper's Flops column matches within 1 % for all three models: it appears to be that.",
        "MWAM time: MWAM.step alone (FRM, bank, T, K) at the paper's training batch, mean and std in milliseconds; "
        "the paper does not state its unit or device.",
    ]
    for model, m in report["models"].items():
        notes.append(
            f"{model}: {m['input']}; {m['parameters_inference']:,} parameters used in inference of "
            f"{m['parameters_total']:,}; MWAM timed at batch {m['mwam_batch']} over {m['mwam_step_ms']['iters']} steps."
        )
    notes += [f"Paper: {n}" for n in paper.notes]
    return "\n".join(lines + notes) + "\n"


def render_cost_csv(report: Mapping[str, Any]) -> str:
    """Long format ``model,quantity,ours,paper,device``."""
    paper = load_paper_table(6)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", "quantity", "ours", "paper", "device"])
    for model, printed_values in paper.cost.items():
        for key in [*paper.quantities, "macs_batch_g"]:
            value = report["table"].get(model, {}).get(key)
            writer.writerow(
                [model, key, "" if value is None else f"{value:.6g}", printed_values.get(key, ""), report["device"]]
            )
    return out.getvalue()
