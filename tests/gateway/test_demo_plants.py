"""Where demo-data plants its cost spike and latency regression, and how the rhythm and the
simulated providers carry them out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.demo.cast import build_cast, burst_plan
from gateway.demo.plants import (
    COST_SPIKE,
    LATENCY_REGRESSION,
    SLOW_PROVIDER,
    SPIKE_KEY,
    Plant,
    plan_plants,
)
from gateway.demo.rhythm import Rhythm

END = datetime(2026, 11, 29, tzinfo=UTC)


def planted(days: int, seed: int = 1, end: datetime = END) -> tuple[tuple[Plant, ...], datetime]:
    """The plants of a history of `days` days ending at `end`, and its start."""
    start = end - timedelta(days=days)
    cast = build_cast(seed, start.timestamp(), requests_per_day=1000, bursts=burst_plan(1000, days))
    return plan_plants(cast, seed, int(start.timestamp()) // 60, days * 1440), start


def by_kind(plants: tuple[Plant, ...]) -> dict[str, Plant]:
    return {p.kind: p for p in plants}


@pytest.mark.parametrize("days", [17, 21, 30, 90, 366])
def test_a_long_history_gets_both_after_two_weeks(days: int) -> None:
    plants, start = planted(days)
    found = by_kind(plants)
    assert set(found) == {COST_SPIKE, LATENCY_REGRESSION}
    spike, slow = found[COST_SPIKE], found[LATENCY_REGRESSION]
    for plant in (spike, slow):
        assert start + timedelta(days=14) <= plant.start < plant.end <= END
        assert plant.start.minute == 0
    assert spike.end - spike.start == timedelta(hours=3)
    assert slow.end - slow.start == timedelta(hours=6)
    # The spike begins in Globex's morning (UTC+1) on a weekday, the regression in UTC hours
    # when most workspaces are awake, a day or more from the spike when there is room.
    local = spike.start + timedelta(hours=1)
    assert local.weekday() < 5 and 9 <= local.hour <= 12
    assert spike.key == SPIKE_KEY and spike.workspace == "globex"
    assert slow.start.weekday() < 5 and 10 <= slow.start.hour <= 14
    assert slow.provider == SLOW_PROVIDER
    assert slow.end <= spike.start or slow.start >= spike.end
    if days >= 21:
        assert slow.end + timedelta(days=1) <= spike.start or slow.start >= spike.end + timedelta(
            days=1
        )


def test_without_a_weekday_left_they_go_on_the_weekend() -> None:
    """Fifteen days ending on a Sunday leave only a Saturday after the first two weeks."""
    plants, start = planted(15)
    assert len(plants) == 2
    for plant in plants:
        assert start + timedelta(days=14) <= plant.start < plant.end <= END
        assert plant.start.weekday() == 5


@pytest.mark.parametrize("days", [1, 2, 3, 7, 14])
def test_a_short_history_gets_them_in_its_second_half(days: int) -> None:
    plants, start = planted(days)
    found = by_kind(plants)
    assert COST_SPIKE in found
    if days >= 2:
        assert LATENCY_REGRESSION in found
    half = start + timedelta(days=days) / 2
    for plant in found.values():
        assert half <= plant.start < plant.end <= END
    if LATENCY_REGRESSION in found:
        spike, slow = found[COST_SPIKE], found[LATENCY_REGRESSION]
        assert slow.end <= spike.start or slow.start >= spike.end


def test_the_seed_and_the_span_decide_where_they_go() -> None:
    assert planted(21, seed=1) == planted(21, seed=1)
    places = {tuple(p.start for p in planted(28, seed=seed)[0]) for seed in range(8)}
    assert len(places) > 1
    moved, _ = planted(21, end=END - timedelta(days=7))
    assert len(moved) == 2 and all(p.end <= END - timedelta(days=7) for p in moved)


def test_the_rhythm_sends_ten_times_the_keys_traffic_and_slows_the_provider() -> None:
    days = 21
    start = END - timedelta(days=days)
    start_minute = int(start.timestamp()) // 60
    bursts = burst_plan(20_000, days)
    cast = build_cast(1, start.timestamp(), requests_per_day=1000, bursts=bursts)
    plants = plan_plants(cast, 1, start_minute, days * 1440)
    plain = Rhythm(cast, 1, start_minute, days * 1440, 20_000, bursts)
    planted = Rhythm(cast, 1, start_minute, days * 1440, 20_000, bursts, plants)
    spike, slow = by_kind(plants)[COST_SPIKE], by_kind(plants)[LATENCY_REGRESSION]
    key = next(k for k in cast.keys if k.key_id == spike.key_id)
    other = next(k for k in cast.keys if k.key_id != spike.key_id)
    inside, before, after = spike.start_minute + 30, spike.start_minute - 1, spike.end_minute
    assert planted.key_intensity(key, inside) == pytest.approx(
        10 * plain.key_intensity(key, inside)
    )
    for minute in (before, after):
        assert planted.key_intensity(key, minute) == plain.key_intensity(key, minute)
    assert planted.key_intensity(other, inside) == plain.key_intensity(other, inside)
    window = range(spike.start_minute - start_minute, spike.end_minute - start_minute)
    assert sum(planted.counts[m] for m in window) > 1.5 * sum(plain.counts[m] for m in window)
    assert sum(planted.counts) + sum(planted.bursts.values()) == 20_000
    assert planted.slowdown(SLOW_PROVIDER, slow.start_minute) == 3.0
    assert planted.slowdown(SLOW_PROVIDER, slow.end_minute - 1) == 3.0
    assert planted.slowdown(SLOW_PROVIDER, slow.end_minute) == 1.0
    assert planted.slowdown("openai", slow.start_minute) == 1.0
    assert plain.slowdown(SLOW_PROVIDER, slow.start_minute) == 1.0
    # The plants draw from a generator of their own: the rhythm's draws are untouched.
    assert plain.incidents == planted.incidents


def test_plants_describe_themselves() -> None:
    plants, _ = planted(21)
    text = [p.describe() for p in plants]
    assert text[0].startswith("a cost spike, key eval-harness of globex sending 10x its traffic")
    assert text[1].startswith("a latency regression, anthropic 3x slower")
    assert all(" UTC" in t for t in text)
