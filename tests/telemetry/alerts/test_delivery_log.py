"""A channel's delivery log and the alerts list's severity filter, on SQLite and Postgres: the
rows `record_deliveries` writes, read back for one channel newest first a page at a time, only
within the channel's workspace; each channel's newest delivery; alerts of one severity."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts import AlertRule
from telemetry.alerts.delivery import DeliveryResult
from telemetry.alerts.delivery_log import channel_deliveries, last_deliveries
from telemetry.alerts.instance_history import InstanceFilter, list_instances
from telemetry.alerts.instance_store import record_deliveries
from telemetry.alerts.rule_store import create_rule
from telemetry.ids import uuid7_hex
from telemetry.schema import DEFAULT_WORKSPACE_ID, alert_instances
from tests.telemetry.alerts.alert_history import OTHER_WORKSPACE, T0, add_workspace, minutes


async def _instance(engine: AsyncEngine, rule_id: str, workspace_id: str, severity: str) -> str:
    instance_id = uuid7_hex()
    async with engine.begin() as connection:
        await connection.execute(
            alert_instances.insert().values(
                instance_id=instance_id,
                rule_id=rule_id,
                workspace_id=workspace_id,
                fingerprint=uuid7_hex(),
                labels={"model": "gpt-4o-mini"},
                state="firing",
                severity=severity,
                value=12.0,
                threshold=10.0,
                started_at=T0,
                fired_at=T0,
                last_evaluated_at=T0,
            )
        )
    return instance_id


def _result(channel_id: str, at_minute: int, status: str, http_status: int) -> DeliveryResult:
    return DeliveryResult(
        channel_id=channel_id,
        channel_name="hook",
        kind="webhook",
        status=status,  # type: ignore[arg-type]
        attempts=1 if status == "sent" else 4,
        started_at=T0 + minutes(at_minute),
        duration_ms=12.5,
        fingerprint="f" * 32,
        http_status=http_status,
        error=None if status == "sent" else f"HTTP {http_status}: busy (attempt 4 of 4)",
    )


async def test_a_channels_log_pages_newest_first_within_its_workspace(engine: AsyncEngine) -> None:
    await add_workspace(engine)
    rule = await create_rule(engine, AlertRule(name="Spend", metric="cost", critical=10.0))
    other_rule = await create_rule(
        engine,
        AlertRule(name="Spend", metric="cost", critical=10.0, workspace_id=OTHER_WORKSPACE),
    )
    hook, quiet, elsewhere = uuid7_hex(), uuid7_hex(), uuid7_hex()
    instance = await _instance(engine, rule.id, DEFAULT_WORKSPACE_ID, "critical")
    for minute, status, code in ((0, "sent", 200), (5, "failed", 503), (9, "sent", 202)):
        await record_deliveries(
            engine,
            instance,
            DEFAULT_WORKSPACE_ID,
            "firing",
            [_result(hook, minute, status, code)],
            T0 + minutes(minute),
        )
        await asyncio.sleep(0.002)  # delivery ids order by their millisecond, randomly within one
    other = await _instance(engine, other_rule.id, OTHER_WORKSPACE, "critical")
    await record_deliveries(
        engine, other, OTHER_WORKSPACE, "firing", [_result(elsewhere, 1, "sent", 204)], T0
    )

    first = await channel_deliveries(engine, hook, DEFAULT_WORKSPACE_ID, limit=2)
    assert [row["http_status"] for row in first.rows] == [202, 503] and first.has_more
    assert first.rows[1]["error"] == "HTTP 503: busy (attempt 4 of 4)"
    assert first.rows[1]["attempts"] == 4
    assert first.rows[0]["at"] == T0 + timedelta(minutes=9)
    assert first.rows[0]["instance_id"] == instance
    rest = await channel_deliveries(
        engine, hook, DEFAULT_WORKSPACE_ID, cursor=first.rows[-1]["delivery_id"], limit=2
    )
    assert [row["http_status"] for row in rest.rows] == [200] and not rest.has_more
    # another workspace's channel is not read under this one's
    assert (await channel_deliveries(engine, elsewhere, DEFAULT_WORKSPACE_ID)).rows == []
    assert (await channel_deliveries(engine, quiet, DEFAULT_WORKSPACE_ID)).rows == []

    last = await last_deliveries(engine, [hook, quiet, elsewhere])
    assert set(last) == {hook, elsewhere}
    assert last[hook]["http_status"] == 202 and last[elsewhere]["http_status"] == 204
    assert await last_deliveries(engine, []) == {}


async def test_alerts_are_listed_by_severity(engine: AsyncEngine) -> None:
    rule = await create_rule(
        engine, AlertRule(name="Spend", metric="cost", warning=5.0, critical=10.0)
    )
    critical = await _instance(engine, rule.id, DEFAULT_WORKSPACE_ID, "critical")
    warning = await _instance(engine, rule.id, DEFAULT_WORKSPACE_ID, "warning")
    everyone = frozenset({DEFAULT_WORKSPACE_ID})
    for severity, expected in (
        ("critical", [critical]),
        ("warning", [warning]),
        (None, [warning, critical]),
    ):
        found, more = await list_instances(
            engine, InstanceFilter(workspace_ids=everyone, severity=severity)
        )
        assert [row["instance_id"] for row in found] == expected and not more
