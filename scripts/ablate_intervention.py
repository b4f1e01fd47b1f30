"""Table 5 (Sec. 5.3): SF-MD on CASIA-SURF with MWAM intervening at different levels.

  none      'w/o MWAM': SF-MD alone
  loss      'Loss':     auxiliary per-modality heads, their losses weighted by K (Eq. 7)
  grad      'Gradient': each branch's gradients scaled by its K (Alg. 1; no extra parameters)
  hybrid    'Hybrid':   both (the SF-MD + MWAM column of Table 4)

Example: python scripts/ablate_intervention.py --level grad --preset smoke
"""

from __future__ import annotations

import sys

from reproduce.ablations import ablation_main

COLUMNS = {"none": "w/o MWAM", "loss": "Loss", "grad": "Gradient", "hybrid": "Hybrid"}


def main(argv: list[str] | None = None) -> int:
    return ablation_main(
        argv,
        table=5,
        doc=__doc__,
        add_arguments=lambda p: p.add_argument("--level", choices=list(COLUMNS), required=True, help="see above"),
        select=lambda a: ([COLUMNS[a.level]], f"table5_{a.level}"),
    )


if __name__ == "__main__":
    sys.exit(main())
