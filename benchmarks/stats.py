"""Medians and pairwise comparisons of per-run measurements.

Runs are aligned by index: run i of every target happened in the same round, one target after
the other, so a ratio or a difference is computed within a round and only then summarised.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(finite) if finite else None


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float | None:
    """Median over rounds of numerator/denominator, skipping rounds missing either side."""
    ratios = [a / b for a, b in zip(numerators, denominators, strict=False) if b and b > 0]
    return median(ratios)


def paired_difference(values: Sequence[float], baselines: Sequence[float]) -> float | None:
    """Median over rounds of value - baseline."""
    return median([a - b for a, b in zip(values, baselines, strict=False)])
