"""Table 9 (Sec. A.9): sensitivity of MMANet + MWAM on CASIA-SURF to the weight function's parameters (Eq. 5).

K = alpha - beta / (1 + exp(-lambda (T - gamma))) (Eq. 5), T being a modality's FRM relative to the batch mean
(Eq. 6): alpha and beta set the range of the weight, lambda its steepness and gamma the relative FRM at which it
crosses the middle of that range. The
paper's default is alpha = 1.5, beta = 1, gamma = 0.7, lambda = 6; the table varies one at a time (and one
joint setting). Only the paper's ten settings are offered, so that every run has the paper's numbers beside it;
the table reports each setting's Average Acc and Average PCR over the 7 subsets.

Example: python scripts/ablate_weight_fn.py --alpha 1.5 --beta 1 --gamma 0.7 --lam 6 --preset smoke
"""

from __future__ import annotations

import argparse
import sys

from reproduce.ablations import ablation_main
from reproduce.tables.paper_data import load_paper_table

NAMES = ("alpha", "beta", "gamma", "lam")


def _arguments(parser: argparse.ArgumentParser) -> None:
    defaults = {"alpha": 1.5, "beta": 1.0, "gamma": 0.7, "lam": 6.0}
    for name in NAMES:
        parser.add_argument(
            f"--{name}", type=float, default=defaults[name], help=f"{name} of Eq. 5 ({defaults[name]:g})"
        )


def _select(args: argparse.Namespace) -> tuple[list[str], str]:
    settings = load_paper_table(9).settings
    wanted = {n: getattr(args, n) for n in NAMES}
    for s in settings:
        if all(abs(s.values[n] - wanted[n]) < 1e-9 for n in NAMES):
            return [s.label], "table9_" + s.label.replace("/", "_")
    listed = "\n  ".join(s.label for s in settings)
    raise SystemExit(f"error: {wanted} is not one of Table 9's settings:\n  {listed}")


def main(argv: list[str] | None = None) -> int:
    return ablation_main(argv, table=9, doc=__doc__, add_arguments=_arguments, select=_select, baseline=None)


if __name__ == "__main__":
    sys.exit(main())
