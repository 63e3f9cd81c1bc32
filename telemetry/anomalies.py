"""Anomalies in an hourly series against a seasonal baseline, with robust statistics.

Each hour is compared with the same hour of the week over the previous `weeks` weeks (4 by
default): the baseline is their median, and the hour's robust z-score is

    score = (value - median) / max(1.4826 x MAD, typical deviation, floors)

1.4826 x the median absolute deviation (MAD) of the samples estimates their standard deviation.
But two to four samples say little about their own spread: by chance they often agree, and any
small change would then score high. So the spread is also read from the series' own recent
past: how far hours of about the same size strayed from their baselines over the lookback (the
typical deviation, `_NoisePool`; how much an hour strays depends mostly on its volume, a quiet
hour's counts and costs jumping more, for their size, than a busy one's). Then three floors:
a share of the median (`relative_floor`, 10 %), a share of the series' level, its mean over the
lookback (`level_floor`, per kind: at night a spend series is mostly a few requests, and one
long answer would otherwise make an anomaly), and an absolute floor in the kind's unit.

While fewer than `full_weeks` (3) earlier weeks are there, the same hour of the previous `days`
days (7) joins the baseline, counting only days of the same kind (Monday to Friday, or the
weekend, in UTC) so that a Saturday is not judged against Fridays: with less than two weeks of
history that is all the baseline has, and with two, a median of two weeks alone is too often
off (measured on the demo history: two Wednesdays that happened to be quiet made an ordinary
Wednesday evening an anomaly). An hour with fewer than two samples to compare with, or too
little history to know its typical deviation, gets no score.

Hours missing from the input mean what the kind says: for a sum (cost, requests) nothing
happened, so the hour counts as zero; for a ratio (error rate, latency) nothing was observed,
so the hour is neither scored nor part of any baseline. Callers building a ratio series should
leave out hours with too few requests to measure it.

An hour is flagged when its score reaches the threshold (4 by default) in a direction that
matters for the kind (up only for cost, error rate and latency; both ways for request rate).
Flagged hours in a row in the same direction make one anomaly (an unobserved hour between them
does not break the row). The scores of every hour are returned too (`score_series`): the score
is a function of a series, for alerts to evaluate as they evaluate any metric.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from statistics import NormalDist

UP = "up"
DOWN = "down"
MAD_TO_SIGMA = 1.4826
HOUR = timedelta(hours=1)
_WEEK_HOURS = 168
_DAY_HOURS = 24
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday is 0


@dataclass(frozen=True, slots=True)
class SeriesKind:
    name: str
    unit: str
    additive: bool  # a sum: a missing hour is zero; else a ratio, and a missing hour unobserved
    directions: frozenset[str]  # the directions flagged by default
    absolute_floor: float  # the least spread, in the series' unit
    level_floor: float  # the least spread as a share of the series' mean over the lookback


COST = SeriesKind("cost", "USD per hour", True, frozenset({UP}), 0.01, 0.3)
REQUESTS = SeriesKind("requests", "requests per hour", True, frozenset({UP, DOWN}), 1.0, 0.1)
ERROR_RATE = SeriesKind("error_rate", "share of requests", False, frozenset({UP}), 0.005, 0.25)
LATENCY = SeriesKind("latency", "ms", False, frozenset({UP}), 50.0, 0.1)
KINDS = {kind.name: kind for kind in (COST, REQUESTS, ERROR_RATE, LATENCY)}


@dataclass(frozen=True, slots=True)
class Options:
    threshold: float = 4.0
    weeks: int = 4  # same hour of the week, this many weeks back
    days: int = 7  # same hour of the day, this many days back, while weeks are few
    full_weeks: int = 3  # from this many earlier weeks on, the same hour of the week alone
    relative_floor: float = 0.1  # of the baseline's median
    level_floor: float | None = None  # of the series' mean over the lookback; None: the kind's
    absolute_floor: float | None = None  # None: the kind's
    directions: frozenset[str] | None = None  # None: the kind's
    min_samples: int = 2


DEFAULT_OPTIONS = Options()


@dataclass(frozen=True, slots=True)
class HourScore:
    at: datetime
    value: float | None  # None: not observed
    expected: float | None  # the baseline's median; None when there is no baseline
    scale: float | None  # what one unit of score is worth, in the series' unit
    score: float | None  # None when the hour or its baseline is missing
    baseline: str | None  # "week" (same hour of earlier weeks), "day", or "week+day" (both)


@dataclass(frozen=True, slots=True)
class Anomaly:
    start: datetime  # the first flagged hour
    end: datetime  # the hour after the last flagged one
    peak_at: datetime  # the hour of the largest score
    score: float  # signed: the largest in absolute value
    expected: float  # at the peak
    actual: float  # at the peak
    direction: str  # "up" or "down"
    hours: int = 1  # flagged hours


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
    baselines = _baselines(values, first, options)
    pool = _NoisePool(max(options.weeks * _WEEK_HOURS, options.days * _DAY_HOURS))
    relative_floor = options.relative_floor
    scores = []
    at = datetime.fromtimestamp(first * 3600, UTC)
    for index, value in enumerate(values):
        baseline = baselines[index]
        if baseline is None:
            scores.append(HourScore(at, value, None, None, None, None))
            at += HOUR
            continue
        kind, lookback, middle, spread = baseline
        level = level_of.mean(max(0, index - lookback), index)
        size = max(abs(middle), level_floor * level)
        share = pool.share(index, size)
        if value is not None and size > 0:
            pool.add(index, size, abs(value - middle) / size)
        if share is None:
            scores.append(HourScore(at, value, middle, None, None, kind))
            at += HOUR
            continue
        scale = max(spread, share * size, relative_floor * abs(middle), level_floor * level, floor)
        score = None if value is None or scale <= 0 else (value - middle) / scale
        scores.append(HourScore(at, value, middle, scale, score, kind))
        at += HOUR
    return scores


def find_anomalies(
    points: Iterable[tuple[datetime, float]],
    kind: SeriesKind | str,
    *,
    options: Options = DEFAULT_OPTIONS,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Anomaly]:
    """The anomalies of a series, oldest first (see the module's description)."""
    series_kind = _kind(kind)
    scores = score_series(points, series_kind, options=options, start=start, end=end)
    return anomalies_in(scores, series_kind, options=options)


def anomalies_in(
    scores: Sequence[HourScore], kind: SeriesKind | str, *, options: Options = DEFAULT_OPTIONS
) -> list[Anomaly]:
    """Flagged hours of `score_series`'s answer merged into anomalies."""
    directions = _kind(kind).directions if options.directions is None else options.directions
    found: list[Anomaly] = []
    current: Anomaly | None = None
    for hour in scores:
        if hour.value is None:
            continue  # unobserved: neither flags nor breaks a run
        score = hour.score
        direction = None
        if score is not None and abs(score) >= options.threshold:
            direction = UP if score > 0 else DOWN
        if direction is None or direction not in directions:
            if current is not None:
                found.append(current)
                current = None
            continue
        assert score is not None and hour.expected is not None
        if current is not None and current.direction != direction:
            found.append(current)
            current = None
        if current is None:
            current = Anomaly(
                hour.at, hour.at + HOUR, hour.at, score, hour.expected, hour.value, direction, 1
            )
            continue
        peak = abs(score) > abs(current.score)
        current = Anomaly(
            start=current.start,
            end=hour.at + HOUR,
            peak_at=hour.at if peak else current.peak_at,
            score=score if peak else current.score,
            expected=hour.expected if peak else current.expected,
            actual=hour.value if peak else current.actual,
            direction=direction,
            hours=current.hours + 1,
        )
    if current is not None:
        found.append(current)
    return found


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


def _weekday_weekend(weekday: int) -> bool:
    """Whether a weekday (Monday 0; any integer, taken modulo 7) is on the weekend."""
    return weekday % 7 >= 5


def _median(samples: list[float]) -> float:
    """`statistics.median`, to the bit, without its checks (the lists here are short)."""
    samples.sort()
    half = len(samples) // 2
    return samples[half] if len(samples) % 2 else (samples[half - 1] + samples[half]) / 2


Baseline = tuple[str, int, float, float]
"""An hour's baseline: its kind ("week", "day" or "week+day"), the hours it looks back, its
median, and its spread (1.4826 x MAD)."""


def _baselines(
    values: Sequence[float | None], first: int, options: Options
) -> list[Baseline | None]:
    """Each hour's baseline: the same hour of the week in earlier weeks, joined by the same hour
    of earlier days of the same kind while fewer than `options.full_weeks` weeks are there;
    None with too few samples.

    An earlier day a whole number of weeks back is one of the weeks (counted there when
    observed, and left out when not), so the days looked at are those of the other weekdays; and
    which of them are of the same kind as an hour's depends only on its weekday."""
    week_backs = [weeks * _WEEK_HOURS for weeks in range(1, options.weeks + 1)]
    day_backs = [
        days * _DAY_HOURS
        for days in range(1, options.days + 1)
        if days * _DAY_HOURS not in week_backs
    ]
    same_kind = [
        [
            back
            for back in day_backs
            if _weekday_weekend(weekday - back // _DAY_HOURS) == _weekday_weekend(weekday)
        ]
        for weekday in range(7)
    ]
    full_weeks = options.full_weeks
    least = max(2, options.min_samples)
    week_lookback = options.weeks * _WEEK_HOURS
    day_lookback = options.days * _DAY_HOURS
    found: list[Baseline | None] = []
    for index in range(len(values)):
        samples = [
            value or 0.0
            for back in week_backs
            if back <= index and (value := values[index - back]) is not None
        ]
        if len(samples) >= full_weeks:
            kind, lookback = "week", week_lookback
        else:
            kind = "week+day" if samples else "day"
            lookback = max(week_lookback if samples else 0, day_lookback)
            weekday = ((first + index) // _DAY_HOURS + _EPOCH_WEEKDAY) % 7
            samples += [
                value or 0.0
                for back in same_kind[weekday]
                if back <= index and (value := values[index - back]) is not None
            ]
        if len(samples) < least:
            found.append(None)
            continue
        middle = _median(samples)
        spread = MAD_TO_SIGMA * _median([abs(sample - middle) for sample in samples])
        found.append((kind, lookback, middle, spread))
    return found


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

    Each bin's deviations are kept sorted as they come and go, so that asking is a few picks
    from sorted lists (merged when several bins are pooled) rather than a sort of hundreds.
    A bin stays known once made, empty or not: the nearest bins to a size of zero are those
    nearest the smallest bin ever made.
    """

    BIN_RATIO = 1.5
    _LOG_RATIO = math.log(BIN_RATIO)

    def __init__(self, window: int, enough: int = 40, least: int = 24) -> None:
        self._window = window
        self._enough = enough
        self._least = least
        self._bins: dict[int, list[float]] = {}
        self._added: deque[tuple[int, list[float], float]] = deque()
        self._lowest = 0
        self._highest = 0
        self._binned = 0.0
        self._bin_of = 0
        """The last size put in a bin, and its bin (an hour's is asked for twice)."""

    def add(self, index: int, size: float, share: float) -> None:
        number = self._bin(size)
        shares = self._bins.get(number)
        if shares is None:
            if not self._bins:
                self._lowest = self._highest = number
            self._lowest = min(self._lowest, number)
            self._highest = max(self._highest, number)
            shares = self._bins[number] = []
        insort(shares, share)
        self._added.append((index, shares, share))

    def share(self, index: int, size: float) -> float | None:
        """1.4826 x the median deviation, as a share of size, of hours of about `size` before
        `index` (or more, see `TAIL_QUANTILE`); None when fewer than `least` are known."""
        oldest = index - self._window
        added = self._added
        while added and added[0][0] < oldest:
            _, shares, share = added.popleft()
            del shares[bisect_left(shares, share)]
        bins = self._bins
        if bins:
            centre = self._bin(size) if size > 0 else self._lowest
            widest = max(centre - self._lowest, self._highest - centre)
        else:
            centre = self._bin(size) if size > 0 else 0
            widest = 0
        pooled: list[list[float]] = []
        count = 0
        reach = 0
        while count < self._enough and reach <= widest:
            for number in (centre,) if reach == 0 else (centre - reach, centre + reach):
                near = bins.get(number)
                if near:
                    pooled.append(near)
                    count += len(near)
            reach += 1
        if count < self._least:
            return None
        found = pooled[0] if len(pooled) == 1 else sorted(chain.from_iterable(pooled))
        middle = found[count // 2] if count % 2 else (found[count // 2 - 1] + found[count // 2]) / 2
        tail = found[min(count - 1, int(TAIL_QUANTILE * count))]
        return max(MAD_TO_SIGMA * middle, tail / TAIL_TO_SIGMA)

    def _bin(self, size: float) -> int:
        if size != self._binned:
            self._binned, self._bin_of = size, math.floor(math.log(size) / self._LOG_RATIO)
        return self._bin_of


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
