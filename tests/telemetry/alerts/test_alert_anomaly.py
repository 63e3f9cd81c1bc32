"""A rule on an anomaly score: the score of the last hour that is over, per model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts import AlertRule, RuleError, evaluate_rule, parse_rule
from telemetry.alerts.rule_store import create_rule
from telemetry.analytics_anomaly_cache import clear
from telemetry.writers import BatchWriter
from tests.telemetry import make_bundle
from tests.telemetry.alerts.alert_history import DELIVERY, alerts_of, webhook_channel
from tests.telemetry.alerts.receivers import Receiver

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
SLOW_HOUR = MONDAY + timedelta(days=3, hours=12)  # Thursday 12:00


@pytest.fixture(autouse=True)
def fresh_reports() -> Iterator[None]:
    """Anomaly reports are kept in the process; each test scores its own history."""
    yield
    clear()


async def _plant_days(engine: AsyncEngine) -> None:
    """Three and a half weekdays of 12 requests an hour per model at about 200 ms; in the
    Thursday noon hour, gpt-4o answers ten times slower."""
    bundles = []
    hour = MONDAY
    while hour <= SLOW_HOUR:
        for model in ("gpt-4o", "claude-3-5"):
            slow = model == "gpt-4o" and hour == SLOW_HOUR
            bundles += [
                make_bundle(
                    started_at=hour.timestamp() + 60 + index * 240,
                    latency_ms=(2000.0 if slow else 190.0) + index * 2,
                    model=model,
                )
                for index in range(12)
            ]
        hour += timedelta(hours=1)
    writer = BatchWriter(engine)
    for start in range(0, len(bundles), 500):
        await writer.write(bundles[start : start + 500])


def test_an_anomaly_rule_is_checked() -> None:
    base = {"name": "Slow", "metric": "anomaly_score", "kind": "latency", "critical": 4}
    assert parse_rule(base | {"window": "1h"}).anomaly_kind == "latency"
    for changes, field in [
        ({"window": "1h", "kind": "weather"}, "kind"),
        ({"window": "5m"}, "window"),
        ({"window": "1h", "group_by": ["provider"]}, "group_by"),
        ({"window": "1h", "condition": "change_pct"}, "condition"),
        ({"metric": "latency_p95"}, "kind"),
    ]:
        with pytest.raises(RuleError) as caught:
            parse_rule(base | changes)
        assert caught.value.field == field


async def test_a_latency_anomaly_fires_for_the_slow_model_only(
    engine: AsyncEngine, hook: Receiver
) -> None:
    await _plant_days(engine)
    rule = await create_rule(
        engine,
        AlertRule(
            name="Latency anomaly",
            metric="anomaly_score",
            anomaly_kind="latency",
            critical=4.0,
            window_s=3600,
            group_by=["model"],
            min_requests=10,
            channel_ids=[await webhook_channel(engine, f"{hook.url}/hook")],
        ),
    )
    before = await evaluate_rule(engine, rule, SLOW_HOUR + timedelta(minutes=5), DELIVERY)
    assert {o.labels["model"]: o.state for o in before} == {"gpt-4o": None, "claude-3-5": None}
    after = await evaluate_rule(engine, rule, SLOW_HOUR + timedelta(minutes=65), DELIVERY)
    by_model = {o.labels["model"]: o for o in after}
    assert by_model["gpt-4o"].state == "firing" and by_model["gpt-4o"].value > 4.0
    assert by_model["claude-3-5"].state is None
    (alert,) = alerts_of(hook.received)
    assert alert["labels"] == {"model": "gpt-4o"} and alert["unit"] == ""
    assert alert["summary"].startswith("Latency anomaly: Anomaly score of latency ")
