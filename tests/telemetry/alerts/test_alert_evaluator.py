"""The background evaluator: rounds every interval until closed, on both backends."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts import AlertEvaluator, AlertRule
from telemetry.alerts import evaluator as evaluator_module
from telemetry.alerts.rule_store import create_rule, set_muted
from tests.telemetry.alerts.alert_history import (
    DELIVERY,
    alerts_of,
    instances,
    plant,
    webhook_channel,
)
from tests.telemetry.alerts.receivers import Receiver, Reply


async def test_the_evaluator_fires_a_rule_on_live_traffic_and_stops_when_closed(
    engine: AsyncEngine, hook: Receiver
) -> None:
    channel = await webhook_channel(engine, f"{hook.url}/hook")
    rule = await create_rule(
        engine,
        AlertRule(
            name="Errors",
            metric="errors",
            critical=2,
            window_s=300,
            channel_ids=[channel],
            muted=True,
        ),
    )
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    await plant(engine, start=start, minutes_=2, per_minute=5, errors_per_minute=3)
    evaluator = AlertEvaluator(engine, interval=0.05, delivery=DELIVERY)
    await evaluator.start()
    try:
        for _ in range(200):  # muted: recorded, not sent
            if await instances(engine):
                break
            await asyncio.sleep(0.05)
        assert [row["state"] for row in await instances(engine)] == ["firing"]
        await set_muted(engine, rule.id, False)  # unmuted: told once of what is firing
        async with asyncio.timeout(10):
            await hook.arrived.wait()
        await asyncio.sleep(0.3)
    finally:
        await evaluator.close()
    (alert,) = alerts_of(hook.received)
    assert (alert["state"], alert["value"], alert["threshold"]) == ("firing", 6, 2)
    await evaluator.close()  # twice is harmless


async def test_closing_waits_briefly_for_a_round_held_up_by_a_channel(
    engine: AsyncEngine, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluator_module, "CLOSE_TIMEOUT", 0.3)
    hook.script.append(Reply(delay=30.0))
    channel = await webhook_channel(engine, f"{hook.url}/hook")
    await create_rule(
        engine,
        AlertRule(name="Errors", metric="errors", critical=0, window_s=300, channel_ids=[channel]),
    )
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    await plant(engine, start=start, minutes_=1, per_minute=2, errors_per_minute=1)
    evaluator = AlertEvaluator(engine, interval=0.05, delivery=DELIVERY)
    await evaluator.start()
    async with asyncio.timeout(10):
        await hook.arrived.wait()  # the round now waits on the receiver's answer
    began = time.monotonic()
    await evaluator.close()
    assert time.monotonic() - began < 3
    assert [row["state"] for row in await instances(engine)] == ["firing"]
