"""Means with confidence intervals, and the difference of two means (Welch), from the sums a
database hands back (count, sum, sum of squares): no row is read into memory.

Intervals are two-sided at 95 %; the t quantile comes from a series in the normal quantile that
is within 0.01 of the exact value from 5 degrees of freedom up (every comparison here needs at
least `MIN_SAMPLES` per side, far more than that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

Z_975: Final = 1.959963984540054
"""The normal quantile of 0.975: a two-sided 95 % interval."""


def t_quantile(degrees: float) -> float:
    """The 0.975 quantile of Student's t with `degrees` of freedom (Cornish-Fisher series)."""
    if degrees <= 0 or math.isinf(degrees):
        return Z_975
    z = Z_975
    return (
        z
        + (z**3 + z) / (4 * degrees)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * degrees**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * degrees**3)
    )


@dataclass(frozen=True, slots=True)
class Sample:
    """Scores of one group, as sums."""

    count: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    @property
    def variance(self) -> float:
        """The unbiased sample variance (0 for fewer than two scores)."""
        if self.count < 2:
            return 0.0
        spread = self.squares - self.total * self.total / self.count
        return max(spread, 0.0) / (self.count - 1)

    def interval(self) -> tuple[float, float]:
        """The 95 % interval of the mean."""
        if self.count < 2:
            return (math.nan, math.nan)
        half = t_quantile(self.count - 1) * math.sqrt(self.variance / self.count)
        return (self.mean - half, self.mean + half)


@dataclass(frozen=True, slots=True)
class Difference:
    """`candidate` minus `baseline`: the difference of means and its 95 % interval."""

    mean: float
    lower: float
    upper: float


def difference(candidate: Sample, baseline: Sample) -> Difference:
    """Welch's interval of the difference of two means (unequal variances)."""
    mean = candidate.mean - baseline.mean
    a = candidate.variance / candidate.count
    b = baseline.variance / baseline.count
    error = math.sqrt(a + b)
    if error == 0:
        return Difference(mean, mean, mean)
    degrees = (a + b) ** 2 / (
        a * a / max(candidate.count - 1, 1) + b * b / max(baseline.count - 1, 1)
    )
    half = t_quantile(degrees) * error
    return Difference(mean, mean - half, mean + half)
