"""`max_tokens` set far above what answers use.

A request's `max_tokens` (or `max_completion_tokens`) is kept in its trace's routing features,
and its answer's completion tokens in the trace. Per requested model and key, over the requests
that set one, this compares the usual `max_tokens` (the median) with how long answers were: the
99th percentile of completion tokens, read from a histogram the database counts (each bound
within a factor of 1.5 of the exact value, given as the bucket's upper bound: at most that), and
the longest answer, exact. A group is flagged when the median `max_tokens` is at least `RATIO`
times the 99th percentile.

Why it matters: the gateway reserves a request's largest possible cost against its budgets and
its tokens against tokens-per-minute limits from `max_tokens` before the answer exists, so an
inflated value holds budget and rate-limit room that is never used (and providers do the same
with their own limits); some providers also schedule or batch by the requested output length,
so a needlessly large value can add latency.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import Row

from telemetry.insights.scope import InsightScope
from telemetry.schema import traces

RATIO: Final = 4.0
MIN_REQUESTS: Final = 20
"""Requests with `max_tokens` a group needs before it is judged."""
MAX_GROUPS: Final = 200
HISTOGRAM_ROWS: Final = 20_000
ASKED_ROWS: Final = 20_000
BOUNDS: Final = tuple(sorted({2**k for k in range(0, 18)} | {3 * 2**k for k in range(3, 17)}))
"""Upper bounds of the completion-token buckets: 1, 2, 4, 8, 16, 24, 32, 48 ... 196608."""


@dataclass(frozen=True, slots=True)
class MaxTokensGroup:
    requested_model: str
    api_key_id: str | None
    requests: int
    """Answered requests in the range that set `max_tokens`."""
    typical_max_tokens: int
    """The median `max_tokens` asked for."""
    largest_max_tokens: int
    completion_p50: int
    """At most this many completion tokens (a bucket's upper bound)."""
    completion_p99: int
    completion_max: int
    flagged: bool

    @property
    def ratio(self) -> float:
        return self.typical_max_tokens / max(self.completion_p99, 1)

    @property
    def suggested_max_tokens(self) -> int:
        """Room for twice the longest answer seen, and never below the 99th percentile's bound."""
        return max(2 * self.completion_max, self.completion_p99)


@dataclass(frozen=True, slots=True)
class MaxTokens:
    groups: tuple[MaxTokensGroup, ...]
    """Every group judged, flagged ones first."""
    without_max_tokens: int
    """Answered requests that set no `max_tokens` (reserved at the gateway's default)."""
    ratio: float = RATIO
    min_requests: int = MIN_REQUESTS
    cut: bool = False
    """More models and keys set max_tokens than were read: those past the limit are left out."""

    @property
    def flagged(self) -> tuple[MaxTokensGroup, ...]:
        return tuple(group for group in self.groups if group.flagged)


def _max_tokens(dialect: str) -> sa.ColumnElement[float]:
    """The request's `max_completion_tokens`, else `max_tokens`, when it is a number."""
    features = traces.c.features
    if dialect == "postgresql":
        values = [
            sa.case(
                (
                    sa.func.jsonb_typeof(features[name]) == "number",
                    sa.cast(features[name].as_string(), sa.Numeric),
                ),
                else_=None,
            )
            for name in ("max_completion_tokens", "max_tokens")
        ]
    else:
        values = [
            sa.case(
                (
                    sa.func.json_type(features, f"$.{name}").in_(("integer", "real")),
                    sa.func.json_extract(features, f"$.{name}"),
                ),
                else_=None,
            )
            for name in ("max_completion_tokens", "max_tokens")
        ]
    return sa.func.coalesce(*values)


def _bucket() -> sa.ColumnElement[int]:
    tokens = traces.c.completion_tokens
    return sa.case(*((tokens <= bound, bound) for bound in BOUNDS), else_=BOUNDS[-1] * 2)


def _complete(rows: Sequence[Row[Any]], limit: int) -> tuple[list[tuple[Any, ...]], bool]:
    """Rows ordered by group, less the last group's when `limit` cut it short (a histogram
    missing some of its buckets would give wrong percentiles), and whether any were cut."""
    found = [tuple(row) for row in rows]
    if len(found) < limit:
        return found, False
    last = found[-1][:2]
    return [row for row in found if row[:2] != last], True


def _quantile(histogram: dict[int, int], share: float) -> int:
    total = sum(histogram.values())
    seen = 0
    for bound in sorted(histogram):
        seen += histogram[bound]
        if seen >= share * total:
            return bound
    return max(histogram)


def _median(counts: dict[int, int]) -> int:
    return _quantile(counts, 0.5)


async def find_max_tokens(scope: InsightScope) -> MaxTokens:
    t = traces.c
    asked = _max_tokens(scope.engine.dialect.name).label("max_tokens")
    base = [*scope.traces_where(), t.status == "ok", t.completion_tokens.is_not(None)]
    group = (t.requested_model, t.api_key_id)
    histogram = (
        sa.select(
            *group, _bucket().label("bucket"), sa.func.count(), sa.func.max(t.completion_tokens)
        )
        .where(*base, asked.is_not(None), t.requested_model.is_not(None))
        .group_by(*group, sa.literal_column("bucket"))
        .order_by(*group)
        .limit(HISTOGRAM_ROWS)
    )
    maxima = (
        sa.select(*group, asked, sa.func.count())
        .where(*base, asked.is_not(None), t.requested_model.is_not(None))
        .group_by(*group, sa.literal_column("max_tokens"))
        .order_by(*group)
        .limit(ASKED_ROWS)
    )
    unset = sa.select(sa.func.count()).where(*base, asked.is_(None))
    async with scope.engine.connect() as connection:
        buckets, cut = _complete((await connection.execute(histogram)).all(), HISTOGRAM_ROWS)
        asks, cut_too = _complete((await connection.execute(maxima)).all(), ASKED_ROWS)
        without = int((await connection.execute(unset)).scalar_one())
    completions: dict[tuple[str, str | None], dict[int, int]] = defaultdict(dict)
    longest: dict[tuple[str, str | None], int] = defaultdict(int)
    for model, key, bucket, count, most in buckets:
        completions[(model, key)][int(bucket)] = int(count)
        longest[(model, key)] = max(longest[(model, key)], int(most or 0))
    requested: dict[tuple[str, str | None], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for model, key, value, count in asks:
        requested[(model, key)][int(value)] += int(count)
    groups = []
    for name, histogram_of in completions.items():
        counts = requested.get(name)
        total = sum(histogram_of.values())
        if not counts or total < MIN_REQUESTS:
            continue
        p99 = _quantile(histogram_of, 0.99)
        typical = _median(counts)
        groups.append(
            MaxTokensGroup(
                requested_model=name[0],
                api_key_id=name[1],
                requests=total,
                typical_max_tokens=typical,
                largest_max_tokens=max(counts),
                completion_p50=_quantile(histogram_of, 0.5),
                completion_p99=p99,
                completion_max=longest[name],
                flagged=typical >= RATIO * p99,
            )
        )
    groups.sort(key=lambda g: (not g.flagged, -g.ratio, -g.requests, g.requested_model))
    return MaxTokens(
        groups=tuple(groups[:MAX_GROUPS]),
        without_max_tokens=without,
        cut=cut or cut_too or len(groups) > MAX_GROUPS,
    )
