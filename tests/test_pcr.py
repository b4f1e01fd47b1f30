import math

import pytest

from reproduce.pcr import deltas, pcr, summarise


def test_eq26_in_percent():
    assert pcr(98.12, 80.10) == pytest.approx(18.3653, abs=1e-4)
    assert pcr(0.790, 0.215) == pytest.approx(72.7848, abs=1e-4)  # a fraction metric still gives percent
    assert pcr(65.11, 76.66) < 0  # a subset better than the full set has a negative PCR (Table 10)
    assert math.isnan(pcr(0.0, 1.0)) and math.isnan(pcr(float("nan"), 1.0))


def test_summary_of_table4_sf_md_column():
    s = summarise([83.92, 93.65, 89.60, 95.43, 93.26, 96.74, 97.39])
    assert [round(p, 2) for p in s.pcr[:-1]] == [13.83, 3.84, 8.00, 2.01, 4.24, 0.67]
    assert math.isnan(s.pcr[-1])
    assert s.average == pytest.approx(92.856, abs=1e-3)  # printed 92.85 (the paper truncates here)
    assert s.average_pcr == pytest.approx(5.43, abs=5e-3)


def test_table1_deltas():
    multi = summarise([80.10, 95.21, 90.94, 96.20, 92.24, 97.79, 98.12])
    uni = summarise([91.06, 97.29, 92.46, 97.03, 94.68, 97.46, 98.12])
    d = deltas(multi, uni)
    assert [round(v, 2) for v in d.values] == [-10.96, -2.08, -1.52, -0.83, -2.44, 0.33, 0.0]
    assert round(d.pcr[0], 2) == 11.17 and math.isnan(d.pcr[-1])
    assert d.average == pytest.approx(-2.50, abs=0.01) and d.average_pcr == pytest.approx(2.98, abs=0.01)


def test_too_short_column_is_an_error():
    with pytest.raises(ValueError, match="at least one incomplete"):
        summarise([90.0])
