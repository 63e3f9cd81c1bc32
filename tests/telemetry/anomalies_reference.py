"""The hourly scoring of `telemetry.anomalies` as first written: each hour's baseline built
from its samples, and the pool of deviations gathered and sorted, hour by hour. Slow (about
15 µs an hour) and plain; kept to check that the faster scoring gives the very same scores."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import NormalDist, median

from telemetry.anomalies import (
    DEFAULT_OPTIONS,
    KINDS,
    MAD_TO_SIGMA,
    HourScore,
    Options,
    SeriesKind,
)

_WEEK_HOURS = 168
_DAY_HOURS = 24
_EPOCH_WEEKDAY = 3


def score_series(
    points: Iterable[tuple[datetime, float]],
    kind: SeriesKind | str,
    *,
    options: Options = DEFAULT_OPTIONS,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[HourScore]:
    """Every hour's score from `start` (default: the first point's hour) to `end` (exclusive;
    default: after the last point's hour). Points are UTC and on the hour; a naive time is
    read as UTC."""
    series_kind = _kind(kind)
    observed = _by_hour(points)
    if start is None and end is None and not observed:
        return []
    first = _hour_of(start) if start is not None else min(observed)
    stop = _hour_of(end) if end is not None else max(observed, default=first - 1) + 1
    missing = 0.0 if series_kind.additive else None
    values: list[float | None] = [observed.get(h, missing) for h in range(first, stop)]
    floor = series_kind.absolute_floor if options.absolute_floor is None else options.absolute_floor
    level_floor = series_kind.level_floor if options.level_floor is None else options.level_floor
    level_of = _Levels(values)
    pool = _NoisePool(max(options.weeks * _WEEK_HOURS, options.days * _DAY_HOURS))
    scores = []
    for index, value in enumerate(values):
        at = datetime.fromtimestamp((first + index) * 3600, UTC)
        baseline = _baseline(values, index, first + index, options)
        if baseline is None:
            scores.append(HourScore(at, value, None, None, None, None))
            continue
        level = level_of.mean(max(0, index - baseline.lookback), index)
        size = max(abs(baseline.median), level_floor * level)
        share = pool.share(index, size)
        if value is not None and size > 0:
            pool.add(index, size, abs(value - baseline.median) / size)
        if share is None:
            scores.append(HourScore(at, value, baseline.median, None, None, baseline.kind))
            continue
        scale = max(
            baseline.spread,
            share * size,
            options.relative_floor * abs(baseline.median),
            level_floor * level,
            floor,
        )
        score = None if value is None or scale <= 0 else (value - baseline.median) / scale
        scores.append(HourScore(at, value, baseline.median, scale, score, baseline.kind))
    return scores


def _kind(kind: SeriesKind | str) -> SeriesKind:
    if isinstance(kind, SeriesKind):
        return kind
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown series kind {kind!r}; one of {', '.join(KINDS)}") from None


def _hour_of(at: datetime) -> int:
    """Hours since the epoch; the time must be on the hour."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    seconds = aware.timestamp()
    if seconds % 3600:
        raise ValueError(f"hourly series are on the hour: {at.isoformat()} is not")
    return int(seconds // 3600)


def _by_hour(points: Iterable[tuple[datetime, float]]) -> dict[int, float]:
    found: dict[int, float] = {}
    for at, value in points:
        hour = _hour_of(at)
        if hour in found:
            raise ValueError(f"the series has two values for {at.isoformat()}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"the value for {at.isoformat()} is not a finite number")
        found[hour] = number
    return found


def _weekend(hour: int) -> bool:
    return (hour // _DAY_HOURS + _EPOCH_WEEKDAY) % 7 >= 5


@dataclass(slots=True)
class _Baseline:
    kind: str  # "week" or "day"
    lookback: int  # hours the baseline looks back
    median: float
    spread: float  # 1.4826 x MAD


def _baseline(
    values: Sequence[float | None], index: int, hour: int, options: Options
) -> _Baseline | None:
    """The hour's baseline: the same hour of the week in earlier weeks, joined by the same hour
    of earlier days of the same kind while fewer than `options.full_weeks` weeks are there;
    None with too few samples."""
    weekly = [
        back
        for back in range(
            index - _WEEK_HOURS, index - _WEEK_HOURS * (options.weeks + 1), -_WEEK_HOURS
        )
        if back >= 0 and values[back] is not None
    ]
    kind, indices, lookback = "week", weekly, options.weeks * _WEEK_HOURS
    if len(weekly) < options.full_weeks:
        weekend = _weekend(hour)
        daily = [
            back
            for back in range(
                index - _DAY_HOURS, index - _DAY_HOURS * (options.days + 1), -_DAY_HOURS
            )
            if back >= 0
            and back not in weekly
            and values[back] is not None
            and _weekend(hour - (index - back)) == weekend
        ]
        kind = "week+day" if weekly else "day"
        indices = weekly + daily
        lookback = max(lookback if weekly else 0, options.days * _DAY_HOURS)
    if len(indices) < max(2, options.min_samples):
        return None
    samples = [values[i] or 0.0 for i in indices]
    middle = median(samples)
    spread = MAD_TO_SIGMA * median(abs(s - middle) for s in samples)
    return _Baseline(kind, lookback, middle, spread)


TAIL_QUANTILE = 0.9
"""Besides the median deviation, the pool's 90th percentile over its normal quantile stands for
the standard deviation: equal for normal noise, larger when big deviations are frequent (costs
at low volume: a few long answers)."""
TAIL_TO_SIGMA = NormalDist().inv_cdf(0.5 + TAIL_QUANTILE / 2)


class _NoisePool:
    """How far hours of about the same size strayed from their baselines.

    A baseline of two to four samples says little about its own spread. How much an hour
    strays depends mostly on its volume (a quiet hour's counts and costs jump more, relative
    to their size, than a busy one's), so the typical deviation of an hour is read from the
    hours of the last `window` whose baselines are about as large: sizes are put in bins a
    factor `BIN_RATIO` wide, and the nearest bins are pooled until `enough` deviations are in.
    Deviations are shares of their hour's size (its median, or the level floor when larger).
    """

    BIN_RATIO = 1.5

    def __init__(self, window: int, enough: int = 40, least: int = 24) -> None:
        self._window = window
        self._enough = enough
        self._least = least
        self._bins: dict[int, tuple[deque[int], deque[float]]] = {}

    def add(self, index: int, size: float, share: float) -> None:
        indices, shares = self._bins.setdefault(self._bin(size), (deque(), deque()))
        indices.append(index)
        shares.append(share)

    def share(self, index: int, size: float) -> float | None:
        """1.4826 x the median deviation, as a share of size, of hours of about `size` before
        `index` (or more, see `TAIL_QUANTILE`); None when fewer than `least` are known."""
        oldest = index - self._window
        for indices, shares in self._bins.values():
            while indices and indices[0] < oldest:
                indices.popleft()
                shares.popleft()
        centre = self._bin(size) if size > 0 else min(self._bins, default=0)
        widest = max((abs(b - centre) for b in self._bins), default=0)
        found: list[float] = []
        reach = 0
        while len(found) < self._enough and reach <= widest:
            for number in {centre - reach, centre + reach}:
                if number in self._bins:
                    found.extend(self._bins[number][1])
            reach += 1
        count = len(found)
        if count < self._least:
            return None
        found.sort()
        middle = found[count // 2] if count % 2 else (found[count // 2 - 1] + found[count // 2]) / 2
        tail = found[min(count - 1, int(TAIL_QUANTILE * count))]
        return max(MAD_TO_SIGMA * middle, tail / TAIL_TO_SIGMA)

    def _bin(self, size: float) -> int:
        return math.floor(math.log(size) / math.log(self.BIN_RATIO))


class _Levels:
    """Means of the observed values over ranges of the series, from running sums."""

    def __init__(self, values: Sequence[float | None]) -> None:
        self._sums = [0.0]
        self._counts = [0]
        for value in values:
            self._sums.append(self._sums[-1] + (value or 0.0))
            self._counts.append(self._counts[-1] + (value is not None))

    def mean(self, first: int, stop: int) -> float:
        count = self._counts[stop] - self._counts[first]
        return (self._sums[stop] - self._sums[first]) / count if count else 0.0
