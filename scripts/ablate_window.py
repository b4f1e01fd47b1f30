"""Table 7 (Sec. A.7): MMANet + MWAM on CASIA-SURF with frequency window q x q in each p = 8 patch.

The FRM (Eq. 4) compares the q x q lowest DCT frequencies of each 8 x 8 patch with the q x q highest. The paper's
default is q = 2; q = 1 keeps only the DC term and its opposite corner, q = 4 adds mid frequencies, q = 6 lets
the two windows overlap (aliasing). Everything else is MMANet + MWAM (gradient editing) as in Table 4.

Example: python scripts/ablate_window.py --q 4 --preset smoke
"""

from __future__ import annotations

import sys

from reproduce.ablations import ablation_main
from reproduce.tables.specs import WINDOWS


def main(argv: list[str] | None = None) -> int:
    return ablation_main(
        argv,
        table=7,
        doc=__doc__,
        add_arguments=lambda p: p.add_argument(
            "--q", type=int, choices=WINDOWS, required=True, help="window size q (Table 7's columns; default MWAM: 2)"
        ),
        select=lambda a: ([f"q={a.q}"], f"table7_q{a.q}"),
    )


if __name__ == "__main__":
    sys.exit(main())
