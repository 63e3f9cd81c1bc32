"""What a finished comparison says: per variant the mean score with a 95 % interval, cost per
request and median latency, and B minus A on the requests both variants answered and the judge
scored, as a paired difference (the same requests were replayed to both, so each request's own
difficulty cancels out): the mean of the per-request differences with Student's t interval on
n - 1 degrees of freedom.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from telemetry.evaluation.scores import _t_quantile_975

MIN_PAIRS: Final = 5
"""Fewer scored pairs give no interval."""
_T_975: Final = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
"""Student's t at 97.5 % for 1 to 30 degrees of freedom: the small samples a comparison of a
few dozen requests has, where the expansion the Quality dashboard uses is a little short."""
SIDES: Final = ("a", "b")


@dataclass(frozen=True, slots=True)
class VariantSummary:
    side: str
    answered: int
    scored: int
    mean: float | None
    low: float | None
    high: float | None
    cost_per_request_usd: Decimal | None
    latency_p50_ms: float | None


@dataclass(frozen=True, slots=True)
class PairedDifference:
    pairs: int
    difference: float | None
    """B's mean minus A's over the pairs."""
    low: float | None
    high: float | None
    verdict: str


def t_quantile_975(df: int) -> float:
    if 1 <= df <= len(_T_975):
        return _T_975[df - 1]
    return _t_quantile_975(df)


def _interval(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    mean = sum(values) / len(values)
    if len(values) < MIN_PAIRS:
        return mean, None, None
    margin = t_quantile_975(len(values) - 1) * statistics.stdev(values)
    margin /= math.sqrt(len(values))
    return mean, mean - margin, mean + margin


def _score(result: dict[str, Any], side: str) -> float | None:
    entry = result.get(side)
    if not isinstance(entry, dict):
        return None
    score = entry.get("score")
    return float(score) if isinstance(score, int | float) else None


def summarise_variant(results: Sequence[dict[str, Any]], side: str) -> VariantSummary:
    entries = [r[side] for r in results if isinstance(r.get(side), dict)]
    answered = [e for e in entries if e.get("status") == "ok"]
    scores = [s for r in results if (s := _score(r, side)) is not None]
    mean, low, high = _interval(scores)
    costs = [Decimal(e["cost_usd"]) for e in answered if e.get("cost_usd") is not None]
    per_request = sum(costs, Decimal(0)) / len(costs) if costs else None
    latencies = [float(e["latency_ms"]) for e in answered if e.get("latency_ms") is not None]
    return VariantSummary(
        side=side,
        answered=len(answered),
        scored=len(scores),
        mean=mean,
        low=low,
        high=high,
        cost_per_request_usd=per_request,
        latency_p50_ms=statistics.median(latencies) if latencies else None,
    )


def paired_difference(results: Sequence[dict[str, Any]]) -> PairedDifference:
    differences = [
        b - a
        for r in results
        if (a := _score(r, "a")) is not None and (b := _score(r, "b")) is not None
    ]
    if len(differences) < MIN_PAIRS:
        return PairedDifference(
            len(differences),
            None,
            None,
            None,
            f"Not enough pairs: at least {MIN_PAIRS} requests need both answers scored "
            f"({len(differences)} have).",
        )
    mean, low, high = _interval(differences)
    assert mean is not None and low is not None and high is not None
    if low <= 0 <= high:
        verdict = (
            f"No clear difference: B minus A is {mean:+.1f} points, and the true difference "
            f"could lie anywhere from {low:+.1f} to {high:+.1f} points (95 % confidence, paired)."
        )
    else:
        better, worse = ("B", "A") if mean > 0 else ("A", "B")
        verdict = (
            f"{better} scores higher than {worse} by {abs(mean):.1f} points "
            f"(95 % confidence, paired: {min(abs(low), abs(high)):.1f} to "
            f"{max(abs(low), abs(high)):.1f} points)."
        )
    return PairedDifference(len(differences), mean, low, high, verdict)
