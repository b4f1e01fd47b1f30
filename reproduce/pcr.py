"""Performance Collapse Rate (Eq. 26) and the table summaries the paper computes from per-subset metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def pcr(full: float, missing: float) -> float:
    """Eq. 26 in percent: ``(A(full) - A(missing)) / A(full) * 100``; NaN when ``A(full)`` is 0 or not finite.

    The paper prints PCR in percent for every metric, including mAP50 that it prints as a fraction.
    """
    if not math.isfinite(full) or full == 0 or not math.isfinite(missing):
        return math.nan
    return (full - missing) / full * 100.0


@dataclass(frozen=True)
class ColumnSummary:
    """One column of a per-subset table, as the paper summarises it.

    values: the metric per subset, paper row order, full set last.
    pcr: PCR per subset (NaN for the full set, printed "/").
    average: the metric averaged over all rows including the full set.
    average_pcr: PCR averaged over the incomplete rows.
    """

    values: tuple[float, ...]
    pcr: tuple[float, ...]
    average: float
    average_pcr: float


def summarise(values: Sequence[float]) -> ColumnSummary:
    """PCR per subset and the Average row of a column whose last value is the full-modality set."""
    values = tuple(float(v) for v in values)
    if len(values) < 2:
        raise ValueError(f"a column needs at least one incomplete subset and the full set, got {len(values)} values")
    full = values[-1]
    rates = (*(pcr(full, v) for v in values[:-1]), math.nan)
    return ColumnSummary(
        values=values,
        pcr=rates,
        average=sum(values) / len(values),
        average_pcr=sum(rates[:-1]) / (len(values) - 1),
    )


def deltas(column: ColumnSummary, reference: ColumnSummary) -> ColumnSummary:
    """Table 1's parenthesised numbers: column minus reference, per subset, for the metric, PCR and averages.

    The full row's PCR delta is NaN (printed "—").
    """
    if len(column.values) != len(reference.values):
        raise ValueError("columns of different length cannot be compared")
    return ColumnSummary(
        values=tuple(a - b for a, b in zip(column.values, reference.values, strict=True)),
        pcr=tuple(a - b for a, b in zip(column.pcr, reference.pcr, strict=True)),
        average=column.average - reference.average,
        average_pcr=column.average_pcr - reference.average_pcr,
    )
