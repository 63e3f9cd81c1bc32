"""Anomalies in the gateway's traffic: cost, request rate, error rate and latency per hour, per
workspace and per model, each hour scored against its seasonal baseline
(`telemetry.anomalies`), from the roll-ups.

    report = await detect_anomalies(engine, start=..., end=..., now=..., scope=workspace_id)
    report.anomalies          # newest first, each with kind, group, hours, peak, score
    report.series             # per kind and group: every hour's score in the range

The hours from `start` to `end` (whole hours; never the hour in progress, whose sums are not
complete) are scored from series that begin `BASELINE` earlier, so even the range's first hour
is compared with the same hour of four earlier weeks. To bound the cost, only the `top` groups
of each dimension by requests over that whole span are read, and the kinds' hourly series of a
dimension are read in one statement per set of filters (`telemetry.analytics_hourly`): requests,
cost and error rate together, latency (answered requests only) apart.

A group's series starts at its first hour with a request: the hours before a key or model was
first used are not "nothing happened", they are before its time, and a baseline of them would
make its first day an anomaly.

Error rate and latency are ratios: an hour with fewer than `MIN_REQUESTS` requests has too few to
measure one and is left out (unobserved), as `telemetry.anomalies` asks.

Errors and requests are counts, and in a quiet hour a few of them are chance more often than the
robust spread says: one error in 25 requests, where the baseline is no errors at all, scores 8
on spread alone, and four requests where one is usual score 4. So an hour's upward score is at
most what its count is worth (`count_score`: how unlikely that many are, or more, as a normal
deviate of the Poisson tail): errors against the requests times the expected error rate (or the
group's own rate over the history, when higher), requests against the expected count plus one
typical deviation (the baseline's own uncertainty). In busy hours the counts are worth far more
than the spread and change nothing.

Latency is the mean duration of the requests a provider answered (`latency_mean`, without
errors or cache hits). Measured on the 21-day demo history (30,000 requests), the mean found the
slowed provider in 5 and 4 of the 6 hours for its two models where the 95th percentile found 1
and 2, and it flagged 17 latency hours-in-a-row in three weeks where the 95th percentile flagged
34: the percentile of a dozen requests is their slowest one, and it moves in histogram buckets.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics_hourly import (
    ALL,
    HOUR,
    Points,
    hour_ceiling,
    hour_floor,
    hourly_series,
    top_groups,
)
from telemetry.analytics_scans import SharedScans
from telemetry.anomalies import (
    DEFAULT_OPTIONS,
    KINDS,
    Anomaly,
    HourScore,
    Options,
    anomalies_in,
    score_series,
)

KIND_METRICS: Final = {
    "cost": "cost",
    "requests": "requests",
    "error_rate": "error_rate",
    "latency": "latency_mean",
}
"""The analytics metric each kind of anomaly is measured with."""
KIND_FILTERS: Final = {"latency": {"status": ("ok",), "cache_hit": ("false",)}}
"""Latency is that of the requests a provider answered: errors (a timeout is slow because it
failed) are the error rate's, and cache hits take no time at all."""
KIND_UNITS: Final = {"cost": "usd", "requests": "count", "error_rate": "percent", "latency": "ms"}
KIND_TITLES: Final = {
    "cost": "Cost",
    "requests": "Requests",
    "error_rate": "Error rate",
    "latency": "Latency",
}
GROUP_DIMENSIONS: Final = ("workspace", "model")
DEFAULT_TOP: Final = 10
MAX_TOP: Final = 25
MIN_REQUESTS: Final = 10
BASELINE: Final = timedelta(hours=DEFAULT_OPTIONS.weeks * 168)
MAX_RANGE: Final = timedelta(days=92)
MAX_COUNT_SCORE: Final = 40.0
SCAN_CONCURRENCY: Final = 2
"""Statements of one dimension's series read at a time (a report reads two dimensions)."""
_NORMAL: Final = NormalDist()
_LOG_SMALLEST: Final = math.log(1e-300)


@dataclass(frozen=True, slots=True)
class GroupAnomaly:
    kind: str
    dimension: str | None
    """`workspace` or `model`; None for everything in scope as one series."""
    group: str
    """The dimension's value (a workspace id, a model name); "" for everything."""
    anomaly: Anomaly

    @property
    def unit(self) -> str:
        return KIND_UNITS[self.kind]


@dataclass(frozen=True, slots=True)
class GroupScores:
    kind: str
    dimension: str | None
    group: str
    hours: list[HourScore]
    """Every hour scored, from the group's first request (at most `BASELINE` before the
    report's range) to the report's end."""

    @property
    def latest(self) -> HourScore | None:
        """The last hour that has a score."""
        return next((hour for hour in reversed(self.hours) if hour.score is not None), None)

    def between(self, first: datetime, last: datetime) -> list[HourScore]:
        """Every hour of [first, last); those the series does not reach are unobserved."""
        known = {hour.at: hour for hour in self.hours}
        found = []
        at = first
        while at < last:
            found.append(known.get(at) or HourScore(at, None, None, None, None, None))
            at += timedelta(seconds=HOUR)
        return found

    @property
    def unit(self) -> str:
        return KIND_UNITS[self.kind]


@dataclass(frozen=True, slots=True)
class AnomalyReport:
    start: datetime
    end: datetime
    """The hours scored and searched: from `start` up to `end` (exclusive), on the hour."""
    kinds: tuple[str, ...]
    dimensions: tuple[str | None, ...]
    options: Options
    anomalies: list[GroupAnomaly]
    """Newest first (by their first hour)."""
    series: list[GroupScores]


def shown_range(start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The whole hours of [start, end) that are over by `now`: [start's hour, end's hour
    rounded up, at most the hour in progress's start)."""
    first = hour_floor(start)
    last = min(hour_ceiling(end), hour_floor(now))
    return first, max(first, last)


def _first_busy_hour(points: Points) -> datetime | None:
    return next((at for at, value in points if value > 0), None)


def _kind_filters(
    kind: str, filters: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]] | None:
    """The filters a kind is read with: the caller's and its own (`KIND_FILTERS`), each
    dimension's values intersected; None when they leave nothing."""
    merged = dict(filters)
    for name, values in KIND_FILTERS.get(kind, {}).items():
        own = merged.get(name)
        kept = values if own is None else tuple(v for v in own if v in values)
        if not kept:
            return None
        merged[name] = kept
    return merged


def _kept(kind: str, points: Points, requests: Mapping[datetime, float]) -> Points:
    """The hours of a series that are measured: a ratio needs `MIN_REQUESTS` requests."""
    if KINDS[kind].additive:
        return points
    return [(at, value) for at, value in points if requests.get(at, 0.0) >= MIN_REQUESTS]


@dataclass(frozen=True, slots=True)
class _Reader:
    """Reads hourly series of the same groups over the same hours, each metric and filter
    set once however many kinds ask for it, and the metrics of one filter set (requests, cost,
    error rate) in one statement."""

    engine: AsyncEngine
    dimension: str | None
    groups: list[str]
    start: datetime
    end: datetime
    scope: str | None
    scans: SharedScans

    async def read_all(
        self, wanted: Sequence[tuple[str, Mapping[str, tuple[str, ...]]]]
    ) -> list[dict[str, Points]]:
        by_filters: dict[tuple[object, ...], tuple[Mapping[str, tuple[str, ...]], list[str]]] = {}
        for metric, filters in wanted:
            by_filters.setdefault(_filters_key(filters), (filters, []))[1].append(metric)
        keys = list(by_filters)
        answers = await asyncio.gather(*(self.read(*by_filters[key]) for key in keys))
        found = dict(zip(keys, answers, strict=True))
        return [found[_filters_key(filters)][metric] for metric, filters in wanted]

    async def read(
        self, filters: Mapping[str, tuple[str, ...]], metrics: Sequence[str]
    ) -> dict[str, dict[str, Points]]:
        return await hourly_series(
            self.engine,
            metrics,
            self.start,
            self.end,
            dimension=self.dimension,
            groups=[] if self.dimension is None else self.groups,
            filters=filters,
            scope=self.scope,
            scans=self.scans,
        )


def _filters_key(filters: Mapping[str, tuple[str, ...]]) -> tuple[object, ...]:
    return tuple(sorted(filters.items()))


def count_score(count: float, expected: float) -> float:
    """How unlikely `count` events (or more) are where `expected` were expected, as the normal
    deviate of the same Poisson tail probability: 0 for no more than expected, up to
    `MAX_COUNT_SCORE`."""
    whole = round(count)
    if whole <= expected:
        return 0.0
    if expected <= 0:
        return MAX_COUNT_SCORE
    # P(X >= whole): the upper tail summed from its first term, which is computed in log space
    # (a tail of 1e-20 is not lost as 1 - 0.99999999999999999999 would be).
    total, term, position = 0.0, 1.0, whole
    while term > 1e-17 * total:
        total += term
        position += 1
        term *= expected / position
    log_tail = -expected + whole * math.log(expected) - math.lgamma(whole + 1) + math.log(total)
    if log_tail < _LOG_SMALLEST:
        return MAX_COUNT_SCORE
    tail = math.exp(log_tail)
    return min(MAX_COUNT_SCORE, max(0.0, -_NORMAL.inv_cdf(min(tail, 0.5))))


_Found = tuple[list[GroupAnomaly], list[GroupScores]]
"""The anomalies and the scores of a dimension's series."""


async def _dimension(
    engine: AsyncEngine,
    dimension: str | None,
    kinds: Sequence[str],
    first: datetime,
    last: datetime,
    top: int,
    wanted: Mapping[str, tuple[str, ...]],
    *,
    scope: str | None,
    options: Options,
) -> Callable[[], _Found]:
    """The hourly series of each kind for the top groups of one dimension, read, and how to
    score them: the anomalies and scores."""
    read_from = first - BASELINE
    groups = [ALL]
    if dimension is not None:
        groups = await top_groups(
            engine, "requests", dimension, read_from, last, top=top, filters=wanted, scope=scope
        )
    if first >= last or not groups:
        return lambda: ([], [])
    scans = SharedScans(engine, concurrency=SCAN_CONCURRENCY)
    reader = _Reader(engine, dimension, groups, read_from, last, scope, scans)
    plans: list[tuple[str, dict[str, tuple[str, ...]]]] = []
    for kind in kinds:
        kind_filters = _kind_filters(kind, wanted)
        if kind_filters is not None:
            plans.append((kind, kind_filters))
    reads: list[tuple[str, Mapping[str, tuple[str, ...]]]] = [("requests", wanted)]
    for kind, kind_filters in plans:
        reads.append((KIND_METRICS[kind], kind_filters))
        reads.append(("requests", kind_filters))
    answers = await reader.read_all(reads)
    everything = answers[0]
    inputs = [(kind, answers[1 + 2 * n], answers[2 + 2 * n]) for n, (kind, _) in enumerate(plans)]

    def score() -> _Found:
        anomalies: list[GroupAnomaly] = []
        series: list[GroupScores] = []
        for kind, values, counts in inputs:
            for group in groups:
                since = _first_busy_hour(everything.get(group, []))
                if since is None:
                    continue
                by_hour = dict(counts.get(group, []))
                points = [p for p in _kept(kind, values.get(group, []), by_hour) if p[0] >= since]
                hours = score_series(points, kind, options=options, start=since, end=last)
                if kind == "error_rate":
                    hours = _errors_limited(hours, by_hour)
                elif kind == "requests":
                    hours = _requests_limited(hours)
                for anomaly in anomalies_in(hours, kind, options=options):
                    if anomaly.end > first:
                        anomalies.append(GroupAnomaly(kind, dimension, group, anomaly))
                series.append(GroupScores(kind, dimension, group, hours))
        return anomalies, series

    return score


def _errors_limited(hours: list[HourScore], requests: Mapping[datetime, float]) -> list[HourScore]:
    """Error-rate scores no larger than their error counts are worth (see the module)."""
    errors = sum((hour.value or 0.0) * requests.get(hour.at, 0.0) for hour in hours)
    total = sum(requests.get(hour.at, 0.0) for hour in hours if hour.value is not None)
    level = errors / total if total else 0.0

    def worth(hour: HourScore, value: float, expected: float) -> float:
        count = requests.get(hour.at, 0.0)
        return count_score(value * count, count * max(expected, level))

    return _limited(hours, worth)


def _requests_limited(hours: list[HourScore]) -> list[HourScore]:
    """Request-count scores no larger than their counts are worth against the expected count
    plus one typical deviation (the baseline's own uncertainty)."""

    def worth(hour: HourScore, value: float, expected: float) -> float:
        return count_score(value, expected + (hour.scale or 0.0))

    return _limited(hours, worth)


def _limited(
    hours: list[HourScore], worth: Callable[[HourScore, float, float], float]
) -> list[HourScore]:
    limited = []
    for hour in hours:
        score = hour.score
        if score is None or score <= 0 or hour.value is None or hour.expected is None:
            limited.append(hour)
            continue
        most = worth(hour, hour.value, hour.expected)
        if most < score:
            hour = HourScore(hour.at, hour.value, hour.expected, hour.scale, most, hour.baseline)
        limited.append(hour)
    return limited


async def detect_anomalies(
    engine: AsyncEngine,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    kinds: Sequence[str] = tuple(KIND_METRICS),
    dimensions: Sequence[str | None] = GROUP_DIMENSIONS,
    top: int = DEFAULT_TOP,
    filters: Mapping[str, tuple[str, ...]] | None = None,
    scope: str | None,
    options: Options = DEFAULT_OPTIONS,
) -> AnomalyReport:
    """Score every hour of [start, end) (see `shown_range`) of each kind, for the `top` groups
    of each dimension (None: everything in scope as one series), and find the anomalies that
    touch the range. `scope` is one workspace id, or None for every workspace."""
    for kind in kinds:
        if kind not in KIND_METRICS:
            raise ValueError(f"unknown anomaly kind {kind!r}; one of {', '.join(KIND_METRICS)}")
    first, last = shown_range(start, end, now)
    wanted = dict(filters or {})
    scorers = await asyncio.gather(
        *(
            _dimension(
                engine, dimension, kinds, first, last, top, wanted, scope=scope, options=options
            )
            for dimension in dimensions
        )
    )
    # Scored once every series is read: a thread scoring while statements still hand over
    # their rows makes each row wait for the interpreter (the scoring holds it).
    found = await asyncio.to_thread(lambda: [score() for score in scorers])
    anomalies = [item for part, _ in found for item in part]
    series = [item for _, part in found for item in part]
    anomalies.sort(key=lambda found: (found.anomaly.start, abs(found.anomaly.score)), reverse=True)
    return AnomalyReport(
        start=first,
        end=last,
        kinds=tuple(kinds),
        dimensions=tuple(dimensions),
        options=options,
        anomalies=anomalies,
        series=series,
    )
