"""The anomaly detector on synthetic hourly traffic: an office-hours rhythm, quiet weekends,
noise from a fixed seed, and what is planted in it."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.anomalies import (
    DOWN,
    UP,
    Options,
    anomalies_in,
    find_anomalies,
    score_series,
)

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
HOURLY = (
    0.10, 0.07, 0.05, 0.05, 0.06, 0.09, 0.18, 0.36, 0.62, 0.86, 0.97, 1.00,
    0.88, 0.94, 1.00, 0.97, 0.90, 0.74, 0.55, 0.43, 0.36, 0.30, 0.22, 0.15,
)  # fmt: skip


def traffic(
    weeks: int, seed: int, *, peak: float = 200.0, changes: dict[datetime, float] | None = None
) -> list[tuple[datetime, float]]:
    """Requests per hour: the rhythm times 10 % noise from hour to hour, counted (Poisson-like);
    `changes` multiplies the expected count of some hours."""
    rng = random.Random(seed)
    changes = changes or {}
    points = []
    for offset in range(weeks * 168):
        at = START + offset * HOUR
        expected = peak * HOURLY[at.hour] * (0.32 if at.weekday() >= 5 else 1.0)
        expected *= math.exp(rng.gauss(0, 0.1)) * changes.get(at, 1.0)
        points.append((at, float(max(0, round(rng.gauss(expected, math.sqrt(expected)))))))
    return points


def hours(first: datetime, count: int, factor: float) -> dict[datetime, float]:
    return {first + n * HOUR: factor for n in range(count)}


SPIKE = datetime(2026, 3, 31, 14, tzinfo=UTC)  # Tuesday of the fifth week, 2 hours
DROP = datetime(2026, 4, 2, 10, tzinfo=UTC)  # Thursday of the fifth week, 3 hours


def test_a_planted_spike_and_drop_are_found_and_nothing_else() -> None:
    changes = {**hours(SPIKE, 2, 2.5), **hours(DROP, 3, 0.2)}
    found = find_anomalies(traffic(5, seed=7, changes=changes), "requests")
    assert [(a.direction, a.start, a.end, a.hours) for a in found] == [
        (UP, SPIKE, SPIKE + 2 * HOUR, 2),
        (DOWN, DROP, DROP + 3 * HOUR, 3),
    ]
    spike, drop = found
    assert drop.score < -4 and spike.score > 4
    assert drop.actual < 0.4 * drop.expected
    assert spike.actual > 2 * spike.expected
    assert DROP <= drop.peak_at < DROP + 3 * HOUR


@pytest.mark.parametrize("seed", range(7, 12))
def test_the_same_changes_are_found_whatever_the_noise(seed: int) -> None:
    changes = {**hours(SPIKE, 2, 2.5), **hours(DROP, 3, 0.2)}
    found = find_anomalies(traffic(5, seed=seed, changes=changes), "requests")
    windows = {(a.direction, a.start) for a in found}
    assert {(DOWN, DROP), (UP, SPIKE)} <= windows
    assert len(found) <= 3


def test_noise_alone_raises_hardly_anything() -> None:
    """Twenty series of five weeks (3,360 hours each) of noise: at most one anomaly in any, at
    most three in all (measured: two in thirty series)."""
    counts = [len(find_anomalies(traffic(5, seed), "requests")) for seed in range(20)]
    assert max(counts) <= 1
    assert sum(counts) <= 3


def test_scores_are_calibrated_on_noise() -> None:
    """On noise the scores behave like standard scores: their spread about one, and an hour in
    a hundred at most beyond three."""
    scores = [
        s.score
        for seed in range(5)
        for s in score_series(traffic(5, seed), "requests")
        if s.score is not None
    ]
    spread = math.sqrt(sum(s * s for s in scores) / len(scores))
    assert 0.8 < spread < 1.2
    assert sum(abs(s) >= 3 for s in scores) / len(scores) < 0.01


def test_a_short_history_compares_with_earlier_days() -> None:
    """Ten days: each hour is compared with the same hour of earlier days of the same kind (the
    weekend with the weekend), and from the second week on with the same hour a week earlier
    too."""
    spike = datetime(2026, 3, 11, 15, tzinfo=UTC)  # Wednesday of the second week
    points = traffic(2, seed=3, changes=hours(spike, 1, 3.0))[: 10 * 24]
    scores = score_series(points, "requests")
    assert len(scores) == 240
    assert all(s.score is None for s in scores[:48])  # two days in: too few samples yet
    weekdays = [s for s in scores[72:] if s.at.weekday() < 5]
    assert {s.baseline for s in weekdays if s.at.day < 9} == {"day"}
    assert {s.baseline for s in weekdays if s.at.day >= 9} == {"week+day"}
    found = find_anomalies(points, "requests")
    assert [(a.start, a.direction) for a in found] == [(spike, UP)]
    saturday = [s for s in scores if s.at.weekday() == 5 and s.at.hour == 12]
    assert saturday[0].score is None  # no weekend day before the first Saturday


def test_three_weeks_on_the_same_hour_of_the_week_alone() -> None:
    scores = score_series(traffic(5, seed=1), "requests")
    assert {s.baseline for s in scores[21 * 24 :]} == {"week"}
    assert {s.baseline for s in scores[15 * 24 : 21 * 24]} == {"week+day"}


def test_up_only_kinds_ignore_drops_unless_asked() -> None:
    base = [(at, v / 10 + 300.0) for at, v in traffic(4, seed=5)]
    slow = datetime(2026, 3, 24, 11, tzinfo=UTC)
    fast = datetime(2026, 3, 25, 11, tzinfo=UTC)
    latency = [(at, v * 3 if at == slow else v / 3 if at == fast else v) for at, v in base]
    found = find_anomalies(latency, "latency")
    assert [(a.start, a.direction) for a in found] == [(slow, UP)]
    both = find_anomalies(latency, "latency", options=Options(directions=frozenset({UP, DOWN})))
    assert [(a.start, a.direction) for a in both] == [(slow, UP), (fast, DOWN)]


def test_missing_hours_are_zero_for_sums_and_unobserved_for_ratios() -> None:
    points = [(at, 5.0) for at, _ in traffic(4, seed=1)]
    gap = points[400][0]
    holed = points[:400] + points[401:]
    cost = {s.at: s for s in score_series(holed, "cost")}
    assert cost[gap].value == 0.0 and cost[gap].score is not None
    rate = {s.at: s for s in score_series(holed, "error_rate")}
    assert rate[gap].value is None and rate[gap].score is None
    # The hour a week later has one sample fewer in its baseline but still a score.
    assert rate[gap + 168 * HOUR].score is not None
    assert find_anomalies(holed, "error_rate") == []


def test_a_constant_series_is_not_divided_by_zero() -> None:
    """Two samples that agree exactly: the floors keep the score finite, and a change of a few
    per cent is no anomaly while a doubling is."""
    flat = [(START + n * HOUR, 100.0) for n in range(3 * 168)]
    assert find_anomalies(flat, "requests") == []
    nudged = [(at, 105.0 if n == 400 else v) for n, (at, v) in enumerate(flat)]
    assert find_anomalies(nudged, "requests") == []
    doubled = [(at, 200.0 if n == 400 else v) for n, (at, v) in enumerate(flat)]
    found = find_anomalies(doubled, "requests")
    assert [(a.start, a.hours, a.score) for a in found] == [(flat[400][0], 1, pytest.approx(10.0))]


def test_flagged_hours_in_a_row_make_one_anomaly_with_its_peak() -> None:
    first = datetime(2026, 3, 25, 9, tzinfo=UTC)
    changes = {first: 2.0, first + HOUR: 4.0, first + 2 * HOUR: 2.5}
    scores = score_series(traffic(4, seed=2, changes=changes), "requests")
    found = anomalies_in(scores, "requests")
    assert len(found) == 1
    anomaly = found[0]
    assert (anomaly.start, anomaly.end, anomaly.hours) == (first, first + 3 * HOUR, 3)
    assert anomaly.peak_at == first + HOUR
    peak = next(s for s in scores if s.at == anomaly.peak_at)
    assert anomaly.score == peak.score and anomaly.actual == peak.value
    assert anomaly.expected == peak.expected


def test_the_threshold_is_an_option() -> None:
    points = traffic(5, seed=4, changes=hours(SPIKE, 1, 1.4))
    scored = next(s for s in score_series(points, "requests") if s.at == SPIKE)
    assert scored.score is not None and 3 < scored.score < 4
    assert find_anomalies(points, "requests") == []
    found = find_anomalies(points, "requests", options=Options(threshold=3))
    assert SPIKE in {a.start for a in found}


def test_bad_input_is_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="on the hour"):
        score_series([(START + timedelta(minutes=5), 1.0)], "cost")
    with pytest.raises(ValueError, match="two values"):
        score_series([(START, 1.0), (START, 2.0)], "cost")
    with pytest.raises(ValueError, match="unknown series kind"):
        score_series([(START, 1.0)], "throughput")
    assert score_series([], "cost") == []
    assert find_anomalies([(START, 3.0)], "cost") == []
    naive = score_series([(START.replace(tzinfo=None), 1.0)], "cost")
    assert naive[0].at == START
