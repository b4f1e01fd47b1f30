"""Table 10 (Sec. A.10): MMANet with and without MWAM on CASIA-SURF trained with batch size 64, 16, 4 or 1.

For batch sizes 4 and 1 the paper changes MWAM's weight function (Eq. 5) to alpha = 1.5, beta = 1, gamma = 1,
lambda = 4; this script does the same. The frozen teacher stays the one trained at the preset's batch size (the
table's common teacher). Batch size 1 trains (BatchNorm normalises over the feature maps' pixels).

Example: python scripts/ablate_batch_size.py --batch-size 4 --preset smoke
"""

from __future__ import annotations

import argparse
import sys

from reproduce.ablations import ablation_main
from reproduce.tables.specs import BATCH_SIZES


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, choices=BATCH_SIZES, required=True, help="training batch size")
    parser.add_argument(
        "--mwam", choices=("with", "without", "both"), default="both", help="MMANet with / without MWAM (both)"
    )


def _select(args: argparse.Namespace) -> tuple[list[str], str]:
    kinds = {"with": ["w/"], "without": ["w/o"], "both": ["w/o", "w/"]}[args.mwam]
    return [f"bs={args.batch_size} {k} MWAM" for k in kinds], f"table10_bs{args.batch_size}_{args.mwam}"


def main(argv: list[str] | None = None) -> int:
    return ablation_main(argv, table=10, doc=__doc__, add_arguments=_arguments, select=_select, baseline=None)


if __name__ == "__main__":
    sys.exit(main())
