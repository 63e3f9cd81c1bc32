"""The scoring gives the very same scores as it did when first written
(`tests.telemetry.anomalies_reference`): every hour's value, baseline, scale and score, to the
bit, on series of every kind, size and gappiness, with the default options and others."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.anomalies import KINDS, HourScore, Options, score_series
from tests.telemetry import anomalies_reference

START = datetime(2026, 3, 4, 5, tzinfo=UTC)  # a Wednesday, 05:00
OPTIONS = (
    Options(),
    Options(weeks=2, days=3, full_weeks=1),
    Options(weeks=6, days=10, full_weeks=5, min_samples=3),
    Options(weeks=1, days=15, full_weeks=1),
    Options(weeks=1, days=10, full_weeks=2, min_samples=1),
    Options(level_floor=0, absolute_floor=0, relative_floor=0),
)


def series(rng: random.Random, hours: int) -> list[tuple[datetime, float]]:
    """A daily and weekly rhythm at some scale, with noise, zeros and unobserved hours."""
    scale = rng.choice([0.001, 0.5, 3.0, 300.0, 5000.0])
    noise = rng.choice([0.05, 0.15, 0.5])
    zeros = rng.choice([0.0, 0.3, 0.95])
    gaps = rng.choice([0.0, 0.1, 0.5, 0.9])
    digits = rng.choice([0, 2, 6])
    points = []
    for hour in range(hours):
        at = START + timedelta(hours=hour)
        expected = scale * (1.5 + math.sin(hour / 24 * 2 * math.pi))
        expected *= 0.6 if at.weekday() >= 5 else 1.0
        value = 0.0 if rng.random() < zeros else max(0.0, rng.gauss(expected, expected * noise))
        if rng.random() >= gaps:
            points.append((at, round(value, digits)))
    return points


def exact(hours: list[HourScore]) -> list[str]:
    return [repr(hour) for hour in hours]


@pytest.mark.parametrize("seed", range(6))
def test_the_scores_are_those_of_the_first_scoring(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        kind = rng.choice(sorted(KINDS))
        hours = rng.choice([10, 200, 700, 1500])
        points = series(rng, hours)
        options = rng.choice(OPTIONS)
        span = rng.choice(
            [{}, {"start": START - timedelta(hours=30), "end": START + timedelta(hours=hours + 5)}]
        )
        expected = anomalies_reference.score_series(points, kind, options=options, **span)
        assert exact(score_series(points, kind, options=options, **span)) == exact(expected)
