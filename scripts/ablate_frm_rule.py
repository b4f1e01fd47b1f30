"""Table 8 (Sec. A.8): MMANet + MWAM on CASIA-SURF with each rule for measuring a modality's preference.

  low_l1        'w/o High-Freq.': L1 norm of the low-frequency components only (Eq. 3)
  ratio         'w/ High-Freq.':  the FRM, low over high frequencies (Eq. 4; MWAM's default)
  sum           'Direct Sum':     L1 norm of low plus high frequencies (Eq. 27)
  weighted_sum  'Weighted Sum':   omega * low + (1 - omega) * high, omega = 0.9 (Eq. 28)
  none          'w/o MWAM':       vanilla MMANet

Example: python scripts/ablate_frm_rule.py --rule weighted_sum --preset smoke
"""

from __future__ import annotations

import sys

from reproduce.ablations import ablation_main
from reproduce.tables.specs import FRM_RULE_COLUMNS

COLUMNS = {"none": "w/o MWAM", **{rule: column for column, rule in FRM_RULE_COLUMNS.items()}}


def main(argv: list[str] | None = None) -> int:
    return ablation_main(
        argv,
        table=8,
        doc=__doc__,
        add_arguments=lambda p: p.add_argument(
            "--rule", choices=list(COLUMNS), required=True, help="the FRM rule (see above)"
        ),
        select=lambda a: ([COLUMNS[a.rule]], f"table8_{a.rule}"),
    )


if __name__ == "__main__":
    sys.exit(main())
