"""Alert rules evaluated on roll-ups planted through the real writer, on both backends, with
notifications to a real webhook receiver that checks their signatures. Time is driven by
passing `now`."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from telemetry.alerts import (
    AlertRule,
    Outcome,
    RuleError,
    evaluate_all,
    evaluate_rule,
    evaluation,
    fingerprint_of,
)
from telemetry.alerts.instance_history import resolve_by_hand
from telemetry.alerts.instance_store import Stored
from telemetry.alerts.round_lock import round_lock
from telemetry.alerts.rule_store import create_rule
from telemetry.db import as_utc, create_engine
from telemetry.schema import DEFAULT_WORKSPACE_ID, alert_rules
from tests.telemetry.alerts.alert_history import (
    DELIVERY,
    OTHER_WORKSPACE,
    T0,
    add_workspace,
    alerts_of,
    deliveries,
    events,
    instances,
    minutes,
    plant,
    webhook_channel,
)
from tests.telemetry.alerts.receivers import Receiver


async def _rule(engine: AsyncEngine, hook: Receiver, **fields: object) -> AlertRule:
    given: dict[str, object] = {
        "name": "Error rate",
        "metric": "error_rate",
        "critical": 0.05,
        "window_s": 300,
        "channel_ids": [await webhook_channel(engine, f"{hook.url}/hook")],
    }
    return await create_rule(engine, AlertRule(**(given | fields)))  # type: ignore[arg-type]


async def test_an_error_rate_rule_goes_pending_fires_after_for_renotifies_and_resolves(
    engine: AsyncEngine, hook: Receiver
) -> None:
    rule = await _rule(
        engine, hook, for_s=120, min_requests=20, renotify_s=600, warning=0.02, critical=0.2
    )
    # 10 requests a minute, 3 of them errors (30 %), for 20 minutes; then 10 healthy a minute.
    await plant(engine, start=T0 - minutes(5), minutes_=20, per_minute=10, errors_per_minute=3)
    await plant(engine, start=T0 + minutes(15), minutes_=20, per_minute=10)

    (outcome,) = await evaluate_rule(engine, rule, T0, DELIVERY)
    assert (outcome.state, outcome.notified) == ("pending", None)
    assert outcome.value == pytest.approx(0.3)
    (outcome,) = await evaluate_rule(engine, rule, T0 + minutes(1), DELIVERY)
    assert (outcome.state, outcome.notified) == ("pending", None)
    assert hook.received == []

    (outcome,) = await evaluate_rule(engine, rule, T0 + minutes(2), DELIVERY)
    assert (outcome.state, outcome.notified) == ("firing", "firing")
    assert [result.status for result in outcome.deliveries] == ["sent"]
    (fired,) = alerts_of(hook.received)
    assert fired["state"] == "firing" and fired["severity"] == "critical"
    assert fired["fingerprint"] == fingerprint_of(rule.id, {})
    assert fired["value"] == pytest.approx(30.0) and fired["unit"] == "%"
    assert fired["threshold"] == pytest.approx(20.0)
    assert fired["started_at"] == "2026-03-02T12:00:00Z"
    assert fired["summary"] == "Error rate: Error rate 30 % over 5 min (threshold 20 %)"
    (instance,) = await instances(engine)
    assert (
        fired["console_url"] == f"https://steerway.example/admin/alerts/{instance['instance_id']}"
    )

    for later in (3, 6, 11):  # re-notified 10 minutes after the firing, not before
        await evaluate_rule(engine, rule, T0 + minutes(later), DELIVERY)
    assert len(hook.received) == 1
    (outcome,) = await evaluate_rule(engine, rule, T0 + minutes(12), DELIVERY)
    assert outcome.notified == "firing"
    assert len(hook.received) == 2

    # From T0 + 20 min the window holds only healthy minutes.
    (outcome,) = await evaluate_rule(engine, rule, T0 + minutes(20), DELIVERY)
    assert (outcome.state, outcome.notified) == ("resolved", "resolved")
    resolved = alerts_of(hook.received)[-1]
    assert resolved["state"] == "resolved" and resolved["ended_at"] == "2026-03-02T12:20:00Z"
    assert resolved["fingerprint"] == fired["fingerprint"]

    (instance,) = await instances(engine)
    assert instance["state"] == "resolved" and instance["workspace_id"] == DEFAULT_WORKSPACE_ID
    assert await events(engine) == [
        ("inactive", "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
    ]
    logged = await deliveries(engine)
    assert [(row["event"], row["status"], row["http_status"]) for row in logged] == [
        ("firing", "sent", 200),
        ("firing", "sent", 200),
        ("resolved", "sent", 200),
    ]
    assert await evaluate_rule(engine, rule, T0 + minutes(21), DELIVERY) == [
        Outcome(fired["fingerprint"], {}, None, 0.0)
    ]


async def test_an_alert_resolved_by_hand_during_a_round_is_not_reopened_by_it(
    engine: AsyncEngine, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = await _rule(engine, hook, min_requests=20, critical=0.2)
    await plant(engine, start=T0 - minutes(5), minutes_=20, per_minute=10, errors_per_minute=3)
    (outcome,) = await evaluate_rule(engine, rule, T0, DELIVERY)
    assert (outcome.state, outcome.notified) == ("firing", "firing")
    (fired,) = await instances(engine)

    read = evaluation.open_instances

    async def read_then_resolved_by_hand(engine: AsyncEngine, rule_id: str) -> dict[str, Stored]:
        stored = await read(engine, rule_id)
        await resolve_by_hand(engine, fired, "operator@example.com")
        return stored

    monkeypatch.setattr(evaluation, "open_instances", read_then_resolved_by_hand)
    (outcome,) = await evaluate_rule(engine, rule, T0 + minutes(1), DELIVERY)
    assert (outcome.state, outcome.notified) == (None, None)
    (instance,) = await instances(engine)
    assert instance["state"] == "resolved"
    assert await events(engine) == [("inactive", "firing"), ("firing", "resolved")]
    assert len(hook.received) == 1

    monkeypatch.setattr(evaluation, "open_instances", read)
    (outcome,) = await evaluate_rule(engine, rule, T0 + minutes(2), DELIVERY)
    assert (outcome.state, outcome.notified) == ("firing", "firing")  # a new instance
    assert sorted(row["state"] for row in await instances(engine)) == ["firing", "resolved"]


async def test_a_condition_that_clears_while_pending_goes_back_without_a_notification(
    engine: AsyncEngine, hook: Receiver
) -> None:
    rule = await _rule(engine, hook, for_s=300)
    await plant(engine, start=T0 - minutes(5), minutes_=5, per_minute=10, errors_per_minute=5)
    await plant(engine, start=T0, minutes_=10, per_minute=10)
    assert (await evaluate_rule(engine, rule, T0, DELIVERY))[0].state == "pending"
    assert (await evaluate_rule(engine, rule, T0 + minutes(5), DELIVERY))[0].state == "inactive"
    assert hook.received == []
    assert await events(engine) == [("inactive", "pending"), ("pending", "inactive")]
    assert [row["state"] for row in await instances(engine)] == ["inactive"]


async def test_a_group_with_fewer_requests_than_the_minimum_does_not_fire(
    engine: AsyncEngine, hook: Receiver
) -> None:
    rule = await _rule(engine, hook, group_by=["model"], min_requests=20)
    await plant(engine, start=T0 - minutes(5), minutes_=5, per_minute=6, errors_per_minute=2)
    await plant(
        engine, start=T0 - minutes(5), minutes_=1, per_minute=5, errors_per_minute=5, model="quiet"
    )
    outcomes = await evaluate_rule(engine, rule, T0, DELIVERY)
    assert sorted((o.labels["model"], o.state) for o in outcomes) == [
        ("gpt-4o-mini", "firing"),
        ("quiet", None),
    ]
    assert [alert["labels"] for alert in alerts_of(hook.received)] == [{"model": "gpt-4o-mini"}]


async def test_group_by_model_gives_one_instance_per_model(
    engine: AsyncEngine, hook: Receiver
) -> None:
    rule = await _rule(engine, hook, group_by=["model"], labels={"team": "platform"})
    for model in ("gpt-4o", "claude-3-5"):
        await plant(
            engine,
            start=T0 - minutes(3),
            minutes_=3,
            per_minute=4,
            errors_per_minute=1,
            model=model,
        )
    await plant(engine, start=T0 - minutes(3), minutes_=3, per_minute=4, model="healthy")
    await evaluate_rule(engine, rule, T0, DELIVERY)
    stored = await instances(engine)
    assert sorted(row["labels"]["model"] for row in stored) == ["claude-3-5", "gpt-4o"]
    assert {row["fingerprint"] for row in stored} == {
        fingerprint_of(rule.id, {"model": "gpt-4o"}),
        fingerprint_of(rule.id, {"model": "claude-3-5"}),
    }
    sent = alerts_of(hook.received)
    assert sorted(alert["labels"]["model"] for alert in sent) == ["claude-3-5", "gpt-4o"]
    assert all(alert["labels"]["team"] == "platform" for alert in sent)
    assert len({alert["fingerprint"] for alert in sent}) == 2
    assert {alert["summary"] for alert in sent} == {
        "Error rate: Error rate 25 % over 5 min (model=gpt-4o) (threshold 5 %)",
        "Error rate: Error rate 25 % over 5 min (model=claude-3-5) (threshold 5 %)",
    }
    # Once one model recovers, only its instance resolves.
    await plant(engine, start=T0, minutes_=6, per_minute=4, model="gpt-4o")
    await plant(engine, start=T0, minutes_=6, per_minute=4, errors_per_minute=1, model="claude-3-5")
    outcomes = await evaluate_rule(engine, rule, T0 + minutes(6), DELIVERY)
    assert sorted((o.labels["model"], o.state) for o in outcomes if o.state) == [
        ("claude-3-5", "firing"),
        ("gpt-4o", "resolved"),
    ]


async def test_no_data_policies(engine: AsyncEngine, hook: Receiver) -> None:
    quiet = {"filters": {"model": ["ghost"]}, "critical": 0.05, "warning": 0.01}
    alerting = await _rule(engine, hook, name="alerting", no_data="alerting", **quiet)
    ok = await _rule(engine, hook, name="ok", no_data="ok", **quiet)
    keep = await _rule(engine, hook, name="keep", no_data="keep")
    resolving = await _rule(engine, hook, name="resolving", no_data="ok")
    await plant(engine, start=T0 - minutes(5), minutes_=5, per_minute=4, errors_per_minute=2)

    (outcome,) = await evaluate_rule(engine, alerting, T0, DELIVERY)
    assert (outcome.state, outcome.value) == ("firing", None)
    (alert,) = alerts_of(hook.received)
    assert alert["severity"] == "critical" and alert["value"] is None
    assert (await evaluate_rule(engine, ok, T0, DELIVERY))[0].state is None

    for rule in (keep, resolving):
        assert (await evaluate_rule(engine, rule, T0, DELIVERY))[0].state == "firing"
    # An hour later nothing has been sent for 55 minutes: no data.
    later = T0 + minutes(60)
    assert (await evaluate_rule(engine, keep, later, DELIVERY))[0].state == "firing"
    assert (await evaluate_rule(engine, resolving, later, DELIVERY))[0].state == "resolved"
    by_rule = {row["rule_id"]: row for row in await instances(engine)}
    assert {rule: row["state"] for rule, row in by_rule.items()} == {
        alerting.id: "firing",
        keep.id: "firing",
        resolving.id: "resolved",
    }
    kept = by_rule[keep.id]  # as last measured
    assert (kept["value"], kept["threshold"]) == (0.5, 0.05)
    assert as_utc(kept["last_evaluated_at"]) == later


async def test_change_pct_compares_with_the_window_before(
    engine: AsyncEngine, hook: Receiver
) -> None:
    rule = await _rule(
        engine,
        hook,
        name="Traffic spike",
        metric="requests",
        condition="change_pct",
        warning=50.0,
        critical=200.0,
        window_s=600,
        message="{rule}: {value} ({severity})",
    )
    await plant(engine, start=T0 - minutes(20), minutes_=10, per_minute=2)
    await plant(engine, start=T0 - minutes(10), minutes_=10, per_minute=4)
    (outcome,) = await evaluate_rule(engine, rule, T0, DELIVERY)
    assert (outcome.state, outcome.value) == ("firing", pytest.approx(100.0))
    (alert,) = alerts_of(hook.received)
    assert (alert["severity"], alert["unit"], alert["threshold"]) == ("warning", "%", 50.0)
    assert alert["summary"] == "Traffic spike: 100 % (warning)"

    await plant(engine, start=T0, minutes_=10, per_minute=13)
    (outcome,) = await evaluate_rule(engine, rule, T0 + minutes(10), DELIVERY)
    assert outcome.value == pytest.approx(225.0) and outcome.notified == "firing"
    assert alerts_of(hook.received)[-1]["severity"] == "critical"
    assert await events(engine) == [("inactive", "firing"), ("firing", "firing")]

    falling = await _rule(
        engine, hook, name="Traffic drop", metric="requests", condition="change_pct",
        critical=-50.0, window_s=600,
    )  # fmt: skip
    (outcome,) = await evaluate_rule(engine, falling, T0 + minutes(10), DELIVERY)
    assert (outcome.state, outcome.value) == (None, pytest.approx(225.0))
    # Nothing at all in the next window is a fall by 100 %, not a lack of data.
    (outcome,) = await evaluate_rule(engine, falling, T0 + minutes(20), DELIVERY)
    assert (outcome.state, outcome.value) == ("firing", pytest.approx(-100.0))
    # And with nothing in either window there is no change to measure.
    (outcome,) = await evaluate_rule(engine, falling, T0 + minutes(40), DELIVERY)
    assert outcome.state == "resolved"


async def test_a_muted_rule_records_but_never_delivers(engine: AsyncEngine, hook: Receiver) -> None:
    rule = await _rule(engine, hook, muted=True)
    await plant(engine, start=T0 - minutes(5), minutes_=10, per_minute=4, errors_per_minute=2)
    (outcome,) = await evaluate_rule(engine, rule, T0, DELIVERY)
    assert (outcome.state, outcome.notified) == ("firing", None)
    assert (await evaluate_rule(engine, rule, T0 + minutes(10), DELIVERY))[0].state == "resolved"
    assert await events(engine) == [("inactive", "firing"), ("firing", "resolved")]
    assert hook.received == [] and await deliveries(engine) == []


async def test_another_workspaces_traffic_never_counts(engine: AsyncEngine, hook: Receiver) -> None:
    await add_workspace(engine)
    mine = await _rule(engine, hook, min_requests=10)
    theirs = await create_rule(
        engine,
        msgspec.structs.replace(mine, id="", workspace_id=OTHER_WORKSPACE, channel_ids=[]),
    )
    await plant(engine, start=T0 - minutes(5), minutes_=5, per_minute=4)
    await plant(
        engine,
        start=T0 - minutes(5),
        minutes_=5,
        per_minute=40,
        errors_per_minute=40,
        workspace_id=OTHER_WORKSPACE,
    )
    (outcome,) = await evaluate_rule(engine, mine, T0, DELIVERY)
    assert (outcome.state, outcome.value) == (None, 0.0)
    (outcome,) = await evaluate_rule(engine, theirs, T0, DELIVERY)
    assert (outcome.state, outcome.value) == ("firing", 1.0)
    assert hook.received == []
    (instance,) = await instances(engine)
    assert instance["workspace_id"] == OTHER_WORKSPACE


async def test_a_channel_of_another_workspace_is_never_used(
    engine: AsyncEngine, hook: Receiver
) -> None:
    await add_workspace(engine)
    foreign = await webhook_channel(engine, f"{hook.url}/foreign", workspace_id=OTHER_WORKSPACE)
    with pytest.raises(RuleError, match=f"channels: no channel {foreign} in this workspace"):
        await _rule(engine, hook, channel_ids=[foreign])
    rule = await _rule(engine, hook, channel_ids=[])
    with pytest.raises(RuleError, match="name: a rule named 'Error rate' exists"):
        await _rule(engine, hook, channel_ids=[])
    # A row written some other way (an import, an older version) is still checked on sending.
    async with engine.begin() as connection:
        await connection.execute(
            sa.update(alert_rules)
            .where(alert_rules.c.rule_id == rule.id)
            .values(channel_ids=[foreign])
        )
    rule = msgspec.structs.replace(rule, channel_ids=[foreign])
    await plant(engine, start=T0 - minutes(5), minutes_=5, per_minute=4, errors_per_minute=1)
    (outcome,) = await evaluate_rule(engine, rule, T0, DELIVERY)
    assert outcome.notified == "firing" and hook.received == []
    (row,) = await deliveries(engine)
    assert (row["status"], row["channel_id"]) == ("failed", foreign)
    assert row["error"] == "no such channel in this workspace"


async def test_a_failing_rule_is_logged_and_the_others_are_evaluated(
    engine: AsyncEngine, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    broken = await _rule(engine, hook, name="broken")
    working = await _rule(engine, hook, name="working")
    async with engine.begin() as connection:  # as if written by an older, laxer version
        await connection.execute(
            sa.update(alert_rules)
            .where(alert_rules.c.rule_id == broken.id)
            .values(metric="no_such_metric")
        )
    await plant(engine, start=T0 - minutes(5), minutes_=5, per_minute=4, errors_per_minute=1)
    with caplog.at_level(logging.WARNING, "steerway.telemetry.alerts.evaluator"):
        outcomes = await evaluate_all(engine, T0, DELIVERY)
    assert outcomes is not None and set(outcomes) == {working.id}
    assert "alert rule 'broken'" in caplog.text and "no_such_metric" in caplog.text
    assert [alert["rule_name"] for alert in alerts_of(hook.received)] == ["working"]


async def test_two_evaluators_sharing_one_database_send_one_notification(
    database_url: str, hook: Receiver
) -> None:
    """Two replicas on Postgres (two engines), or two workers of one `steerway serve` on one
    SQLite file, evaluating at the same moments."""
    await asyncio.to_thread(migrations.upgrade, database_url)
    first, second = create_engine(database_url), create_engine(database_url)
    try:
        await _rule(first, hook, for_s=60)
        await plant(first, start=T0 - minutes(5), minutes_=10, per_minute=4, errors_per_minute=2)
        for now in (T0, T0 + minutes(1), T0 + minutes(1.5), T0 + minutes(2)):
            rounds = await asyncio.gather(
                evaluate_all(first, now, DELIVERY), evaluate_all(second, now, DELIVERY)
            )
            # One of them may skip its round (the lock taken) or both run one after the other
            # (the first done before the second asks): either way the states carry over.
            assert any(found is not None for found in rounds)
        assert len(hook.received) == 1
        assert alerts_of(hook.received)[0]["state"] == "firing"
        assert len(await instances(first)) == 1
        assert len(await deliveries(second)) == 1
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_round_is_skipped_while_another_process_holds_the_lock(
    database_url: str, hook: Receiver
) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url)
    first, second = create_engine(database_url), create_engine(database_url)
    try:
        await _rule(first, hook, for_s=0)
        await plant(first, start=T0 - minutes(5), minutes_=10, per_minute=4, errors_per_minute=2)
        async with round_lock(first) as locked:
            assert locked
            assert await evaluate_all(second, T0, DELIVERY) is None
        assert hook.received == []
        assert await evaluate_all(second, T0, DELIVERY) is not None
        assert len(hook.received) == 1
    finally:
        await first.dispose()
        await second.dispose()
