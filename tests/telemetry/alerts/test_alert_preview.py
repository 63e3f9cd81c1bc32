"""The 7-day preview of a rule against the live evaluator: traffic planted through the real
writer, the live evaluator run step by step over it (recording instances and events as it does
in production), and the preview's episodes compared with what it recorded. On both backends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts import AlertRule, RuleError, evaluate_rule
from telemetry.alerts.preview import Preview, evaluation_step, preview_range, preview_rule
from telemetry.alerts.rule_store import create_rule
from telemetry.db import as_utc
from telemetry.schema import alert_events
from telemetry.writers import BatchWriter
from tests.telemetry import make_bundle
from tests.telemetry.alerts.alert_history import (
    OTHER_WORKSPACE,
    T0,
    add_workspace,
    instances,
    minutes,
    plant,
    rows,
)

NOW = T0 + timedelta(seconds=20)
"""Mid-minute, as the evaluator's clock usually is."""
Row = tuple[dict[str, str], datetime, datetime | None, datetime | None, str | None]


def episodes_of(preview: Preview) -> list[Row]:
    return sorted(
        (
            (group.labels, episode.started_at, episode.fired_at, episode.ended_at, episode.severity)
            for group in preview.groups
            for episode in group.episodes
        ),
        key=lambda row: (row[1], sorted(row[0].items())),
    )


async def live_episodes(
    engine: AsyncEngine, rule: AlertRule, first: datetime, last: datetime
) -> list[Row]:
    """The live evaluator run at every preview step of [first, last], and its instances read
    back as episodes (the peak severity from the instance and its events)."""
    stored = await create_rule(engine, rule)
    step = timedelta(seconds=evaluation_step(rule))
    start, _ = preview_range(rule, NOW)
    at = start + (first - start) // step * step
    while at <= last:
        await evaluate_rule(engine, stored, at)
        at += step
    events = await rows(engine, alert_events, "event_id")
    rank = {None: 0, "warning": 1, "critical": 2}
    found: list[Row] = []
    for instance in await instances(engine):
        severities = [instance["severity"]] + [
            event["severity"] for event in events if event["instance_id"] == instance["instance_id"]
        ]
        labels = {name: instance["labels"][name] for name in rule.group_by}
        found.append(
            (
                labels,
                as_utc(instance["started_at"]),
                as_utc(instance["fired_at"]),
                as_utc(instance["resolved_at"]),
                max(severities, key=lambda severity: rank[severity]),
            )
        )
    return sorted(found, key=lambda row: (row[1], sorted(row[0].items())))


async def test_error_rate_by_model_with_for_and_min_requests_matches_the_live_evaluator(
    engine: AsyncEngine,
) -> None:
    rule = AlertRule(
        name="Error rate by model",
        metric="error_rate",
        group_by=["model"],
        window_s=600,
        for_s=600,
        min_requests=20,
        warning=0.1,
        critical=0.3,
    )
    base = NOW - timedelta(hours=6)
    await plant(engine, start=base, minutes_=180, per_minute=6, model="alpha")
    await plant(
        engine,
        start=base + minutes(30),
        minutes_=30,
        per_minute=4,
        errors_per_minute=4,
        model="alpha",
    )
    # A breach shorter than `for`: pending, then back to inactive without firing.
    await plant(
        engine,
        start=base + minutes(100),
        minutes_=5,
        per_minute=6,
        errors_per_minute=6,
        model="alpha",
    )
    await plant(engine, start=base, minutes_=120, per_minute=5, errors_per_minute=1, model="beta")
    # Too few requests to count, however many fail.
    await plant(engine, start=base, minutes_=60, per_minute=1, errors_per_minute=1, model="gamma")

    preview = await preview_rule(engine, rule, NOW)
    assert preview.step == 300 and preview.end - preview.start == timedelta(days=7)
    expected = episodes_of(preview)
    assert await live_episodes(engine, rule, base, base + minutes(200)) == expected
    by_model = {labels["model"]: (fired, severity) for labels, _, fired, _, severity in expected}
    assert set(by_model) == {"alpha", "beta"}  # gamma never reaches min_requests
    assert [row[4] for row in expected if row[0] == {"model": "alpha"}] == ["critical", "critical"]
    short = [row for row in expected if row[0] == {"model": "alpha"}][1]
    assert short[2] is None and short[3] is not None  # cleared while pending
    assert preview.fired == 2
    (beta,) = [row for row in expected if row[0] == {"model": "beta"}]
    assert beta[4] == "warning"
    assert preview.hours_firing == pytest.approx(
        sum(((row[3] or preview.end) - row[2]).total_seconds() for row in expected if row[2]) / 3600
    )
    charted = {tuple(group.labels.values()): group.points for group in preview.groups}
    assert len(charted[("alpha",)]) == 2016
    assert max(value for _, value in charted[("alpha",)] if value is not None) == pytest.approx(0.4)


async def test_p95_latency_over_a_short_window_is_replayed_minute_by_minute(
    engine: AsyncEngine,
) -> None:
    rule = AlertRule(
        name="Slow", metric="latency_p95", window_s=180, for_s=120, warning=500.0, critical=2000.0
    )
    base = NOW - timedelta(hours=3)
    await plant(engine, start=base, minutes_=60, per_minute=4, latency_ms=100.0)
    await plant(engine, start=base + minutes(10), minutes_=6, per_minute=3, latency_ms=3000.0)
    await plant(engine, start=base + minutes(30), minutes_=2, per_minute=3, latency_ms=900.0)
    preview = await preview_rule(engine, rule, NOW)
    assert preview.step == 60 and preview.point_step == 300
    expected = episodes_of(preview)
    assert await live_episodes(engine, rule, base, base + minutes(70)) == expected
    assert [row[4] for row in expected] == ["critical", "warning"]
    assert len(preview.groups[0].points) == 2016


async def test_change_pct_and_no_data_alerting(engine: AsyncEngine) -> None:
    rule = AlertRule(
        name="Traffic drop",
        metric="requests",
        condition="change_pct",
        critical=-50.0,
        window_s=600,
    )
    base = NOW - timedelta(hours=2)
    await plant(engine, start=base, minutes_=40, per_minute=4)
    await plant(engine, start=base + minutes(40), minutes_=20, per_minute=1)
    preview = await preview_rule(engine, rule, NOW)
    expected = episodes_of(preview)
    assert await live_episodes(engine, rule, base, base + minutes(90)) == expected
    # The fall to a quarter fires; the fall to nothing after the traffic stops fires again.
    assert [(row[4], row[2] is not None) for row in expected] == [
        ("critical", True),
        ("critical", True),
    ]


async def test_change_pct_against_the_same_hour_last_week_matches_the_live_evaluator(
    engine: AsyncEngine,
) -> None:
    rule = AlertRule(
        name="Slower than last week",
        metric="latency_p95",
        group_by=["model"],
        condition="change_pct",
        compare_to="last_week",
        window_s=3600,
        min_requests=100,
        warning=50.0,
        critical=100.0,
    )
    base = NOW - timedelta(hours=4)
    week = timedelta(days=7)
    for model, per_minute in (("alpha", 4), ("beta", 1)):
        await plant(engine, start=base - week, minutes_=180, per_minute=per_minute, model=model)
        await plant(engine, start=base, minutes_=180, per_minute=per_minute, model=model)
    # Alpha slower for 40 minutes; beta as slow and busy enough now, but last week's hour had
    # too few requests to compare with.
    for model, per_minute in (("alpha", 4), ("beta", 1)):
        await plant(
            engine,
            start=base + minutes(60),
            minutes_=40,
            per_minute=per_minute,
            latency_ms=300.0,
            model=model,
        )
    preview = await preview_rule(engine, rule, NOW)
    expected = episodes_of(preview)
    assert await live_episodes(engine, rule, base, base + minutes(200)) == expected
    assert {row[0]["model"] for row in expected} == {"alpha"}
    assert [row[4] for row in expected] == ["critical"]


async def test_a_gauge_has_no_past_to_preview(engine: AsyncEngine) -> None:
    rule = AlertRule(name="Down", metric="deployment_down", group_by=["deployment"], warning=0.0)
    with pytest.raises(RuleError) as caught:
        await preview_rule(engine, rule, NOW)
    assert caught.value.field == "metric"


async def test_no_data_alerting_fires_from_the_first_step(engine: AsyncEngine) -> None:
    rule = AlertRule(
        name="Ghost",
        metric="error_rate",
        filters={"model": ["ghost"]},
        no_data="alerting",
        warning=0.1,
        window_s=300,
        for_s=600,
    )
    await plant(engine, start=NOW - timedelta(hours=1), minutes_=10, per_minute=2)
    preview = await preview_rule(engine, rule, NOW)
    (episode,) = preview.episodes
    assert episode.started_at == preview.start + timedelta(seconds=300)
    assert episode.fired_at == preview.start + timedelta(seconds=900)
    assert episode.ended_at is None and episode.severity == "warning"
    assert preview.hours_firing == pytest.approx(7 * 24 - 0.25)
    assert preview.by_severity()["warning"] == {"fired": 1, "hours": pytest.approx(167.75)}


def _labels(groups: Sequence[Any]) -> list[dict[str, str]]:
    return [group.labels for group in groups]


async def test_another_workspaces_traffic_and_quiet_weeks_preview_nothing(
    engine: AsyncEngine,
) -> None:
    rule = AlertRule(name="Errors", metric="errors", group_by=["model"], critical=0.0)
    preview = await preview_rule(engine, rule, NOW)
    assert preview.groups == [] and preview.fired == 0 and preview.hours_firing == 0
    await add_workspace(engine)
    await BatchWriter(engine).write(
        [
            make_bundle(
                started_at=(NOW - minutes(30)).timestamp(),
                status="error",
                workspace_id=OTHER_WORKSPACE,
            )
        ]
    )
    assert _labels((await preview_rule(engine, rule, NOW)).groups) == []


async def test_a_rule_read_by_the_hour_matches_the_live_evaluator(engine: AsyncEngine) -> None:
    """A 2-day window is read from hour rows (on Postgres, the hours not folded yet from minute
    rows), and the rule evaluated every hour."""
    rule = AlertRule(
        name="Errors over two days",
        metric="errors",
        window_s=2 * 86400,
        warning=100.0,
        critical=200.0,
        for_s=3 * 3600,
    )
    base = NOW - timedelta(days=4)
    for hour in range(0, 30, 3):  # 5 errors a minute for 10 minutes every 3 hours: 50 a burst
        await plant(
            engine,
            start=base + timedelta(hours=hour),
            minutes_=10,
            per_minute=5,
            errors_per_minute=5,
        )
    preview = await preview_rule(engine, rule, NOW)
    assert preview.step == 3600 and len(preview.groups[0].points) == 168
    expected = episodes_of(preview)
    assert await live_episodes(engine, rule, base, NOW) == expected
    assert [(row[4], row[2] is not None) for row in expected] == [("critical", True)]
