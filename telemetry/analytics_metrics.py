"""What the analytics can measure: each metric's unit, the sums it is made from, and how.

A metric is computed from sums, never from rows: the roll-up columns it needs are summed per
time step and group, and `value` turns those sums into the number shown. Because sums add, a
group folded into "other", a step made of several buckets, or a whole range's total is computed
the same way as one bucket, percentiles included (their histogram buckets add too).

Percentiles come from histogram buckets (`telemetry.schema.ROLLUP_LATENCY_BOUNDS_MS`): the
rank's bucket is found and the value interpolated linearly inside it. An answer is within that
bucket's width of the exact percentile; above the last bound it is reported as the last bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from telemetry.schema import (
    ROLLUP_BUCKET_COLUMNS,
    ROLLUP_LATENCY_BOUNDS_MS,
    ROLLUP_TTFT_BUCKET_COLUMNS,
)

Sums = Sequence[float | Decimal]
"""Sums of a metric's `columns`, in their order."""


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    title: str
    unit: str  # count | usd | ms | tokens | percent (a ratio, 0..1)
    columns: tuple[str, ...]
    value: Callable[[Sums], float | Decimal | None]
    description: str
    table: str = "rollups"  # rollups | breakdowns
    kind: str | None = None  # the breakdown kind the metric reads, when it reads one kind
    higher_is_better: bool = False

    @property
    def additive(self) -> bool:
        """True when the metric of a union is the sum of the metrics (counts, tokens, money)."""
        return self.unit in ("count", "usd", "tokens") and len(self.columns) == 1


def percentile_of(buckets: Sequence[float | Decimal], fraction: float) -> float | None:
    """The `fraction` quantile (0..1) of a histogram with `ROLLUP_LATENCY_BOUNDS_MS` bounds:
    linear inside the bucket the rank falls in; None for an empty histogram."""
    total = float(sum(buckets))
    if total <= 0:
        return None
    rank = fraction * total
    seen = 0.0
    lower = 0.0
    for position, count in enumerate(buckets):
        count = float(count)
        if position == len(ROLLUP_LATENCY_BOUNDS_MS):
            return float(ROLLUP_LATENCY_BOUNDS_MS[-1])
        upper = float(ROLLUP_LATENCY_BOUNDS_MS[position])
        if count > 0 and seen + count >= rank:
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
        lower = upper
    return float(ROLLUP_LATENCY_BOUNDS_MS[-1])


def _total(sums: Sums) -> float | Decimal:
    return sums[0]


def _ratio(sums: Sums) -> float | None:
    return None if not sums[1] else float(sums[0]) / float(sums[1])


def _percentile(fraction: float) -> Callable[[Sums], float | None]:
    def value(sums: Sums) -> float | None:
        return percentile_of(sums, fraction)

    return value


def _sum_of_all(sums: Sums) -> float | Decimal:
    return sum(sums, start=type(sums[0])(0)) if sums else 0


def _count(name: str, title: str, column: str, description: str, **extra: object) -> Metric:
    return Metric(name, title, "count", (column,), _total, description, **extra)  # type: ignore[arg-type]


_PERCENTILES: Final = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def _percentiles(prefix: str, title: str, columns: tuple[str, ...], what: str) -> list[Metric]:
    return [
        Metric(
            f"{prefix}_{name}",
            f"{title} {name}",
            "ms",
            columns,
            _percentile(fraction),
            f"The {name[1:]}th percentile of {what}, from the roll-ups' histogram buckets.",
        )
        for name, fraction in _PERCENTILES.items()
    ]


METRICS: Final[dict[str, Metric]] = {
    metric.name: metric
    for metric in (
        _count("requests", "Requests", "requests", "Requests the gateway answered, any outcome."),
        _count(
            "errors",
            "Errors",
            "errors",
            "Requests that ended in an error (a provider's or the gateway's), not refusals.",
        ),
        Metric(
            "error_rate",
            "Error rate",
            "percent",
            ("errors", "requests"),
            _ratio,
            "Errors divided by requests.",
        ),
        *_percentiles("latency", "Latency", ROLLUP_BUCKET_COLUMNS, "the requests' whole duration"),
        Metric(
            "latency_mean",
            "Mean latency",
            "ms",
            ("latency_ms_sum", "requests"),
            _ratio,
            "The requests' mean duration.",
        ),
        *_percentiles(
            "ttft",
            "Time to first token",
            ROLLUP_TTFT_BUCKET_COLUMNS,
            "the time to the first token of the attempt that answered (streamed requests)",
        ),
        Metric(
            "ttft_mean",
            "Mean time to first token",
            "ms",
            ("ttft_ms_sum", "ttft_count"),
            _ratio,
            "The mean time to the first token, over requests that report one.",
        ),
        Metric(
            "overhead_mean",
            "Gateway overhead",
            "ms",
            ("overhead_ms_sum", "overhead_count"),
            _ratio,
            "The mean time the gateway itself added to a request (its duration less the "
            "provider's).",
        ),
        Metric(
            "input_tokens",
            "Input tokens",
            "tokens",
            ("prompt_tokens",),
            _total,
            "Prompt tokens, over every attempt.",
        ),
        Metric(
            "output_tokens",
            "Output tokens",
            "tokens",
            ("completion_tokens",),
            _total,
            "Completion tokens, over every attempt.",
        ),
        Metric(
            "cached_tokens",
            "Cached tokens",
            "tokens",
            ("cached_tokens",),
            _total,
            "Prompt tokens the provider served from its own prompt cache.",
        ),
        Metric(
            "total_tokens",
            "Tokens",
            "tokens",
            ("prompt_tokens", "completion_tokens"),
            _sum_of_all,
            "Input and output tokens.",
        ),
        Metric(
            "cost",
            "Cost",
            "usd",
            ("cost_usd",),
            _total,
            "What the providers charge for the requests (known prices only; see unpriced).",
        ),
        Metric(
            "cost_saved",
            "Cost saved by the cache",
            "usd",
            ("cost_saved_usd",),
            _total,
            "What the requests the cache answered would have cost.",
            higher_is_better=True,
        ),
        _count("cache_hits", "Cache hits", "cache_hits", "Requests the gateway's cache answered."),
        Metric(
            "cache_hit_rate",
            "Cache hit rate",
            "percent",
            ("cache_hits", "requests"),
            _ratio,
            "Cache hits divided by requests.",
            higher_is_better=True,
        ),
        _count("attempts", "Provider attempts", "attempts", "Calls made to providers."),
        _count("retries", "Retries", "retries", "Attempts repeated on the same deployment."),
        _count("fallbacks", "Fallbacks", "fallbacks", "Moves to another deployment or model."),
        _count(
            "unpriced",
            "Unpriced requests",
            "unpriced",
            "Requests whose cost is unknown (no price for their model); not in cost.",
        ),
        _count(
            "guardrail_verdicts",
            "Guardrail verdicts",
            "events",
            "Guardrail findings, by guardrail and action (block, mask, log).",
            table="breakdowns",
            kind="guardrail",
        ),
        _count(
            "guardrail_entities",
            "Entities found",
            "events",
            "Entities the guardrails found, by guardrail and entity type.",
            table="breakdowns",
            kind="entity",
        ),
        _count(
            "rule_matches",
            "Rule matches",
            "events",
            "Requests each steering rule matched.",
            table="breakdowns",
            kind="rule",
        ),
    )
}

BREAKDOWN_METRICS: Final = {
    "requests": ("events",),
    "errors": ("errors",),
    "error_rate": ("errors", "events"),
    "cost": ("cost_usd",),
    "total_tokens": ("tokens",),
}
"""Metrics that can also be read by tag or end user (from `usage_breakdowns`), and the
breakdown columns each is made from."""
