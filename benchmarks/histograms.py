"""A Prometheus histogram read from `/metrics` text: its cumulative buckets and what they bound.

A bucket `le=B` counts observations <= B, so "the share at or under B" is exact at a bucket bound,
and so is "p50 <= B" (it holds when that share is at least one half). Between bounds only the
bucket that holds a quantile can be named, not the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from benchmarks.stores import SAMPLE, parse_labels


@dataclass(frozen=True)
class Histogram:
    buckets: tuple[tuple[float, float], ...]
    """(upper bound, cumulative count), ascending; the last bound is +Inf."""

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def share_within(self, bound: float) -> float | None:
        """The share of observations <= `bound`, which must be a bucket bound; None if empty."""
        if not self.count:
            return None
        for upper, cumulative in self.buckets:
            if upper == bound:
                return cumulative / self.count
        raise ValueError(f"{bound:g} is not a bucket bound")

    def quantile_bucket(self, q: float) -> tuple[float, float] | None:
        """(lower, upper]: the bucket holding the q-quantile (0 < q <= 1); None if empty."""
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], got {q}")
        if not self.count:
            return None
        wanted = q * self.count
        lower = 0.0
        for upper, cumulative in self.buckets:
            if cumulative >= wanted:
                return lower, upper
            lower = upper
        return lower, math.inf


def read_histogram(exposition: str, name: str) -> Histogram | None:
    """The histogram `name` (summed over label sets other than `le`), or None when absent."""
    counts: dict[float, float] = {}
    for line in exposition.splitlines():
        match = SAMPLE.match(line)
        if match is None or match.group(1) != f"{name}_bucket":
            continue
        bound = parse_labels(match.group(3) or "").get("le")
        if bound is None:
            continue
        try:
            upper = float(bound)
        except ValueError:
            continue
        counts[upper] = counts.get(upper, 0.0) + float(match.group(4))
    if not counts:
        return None
    return Histogram(tuple(sorted(counts.items())))
