"""Silences at evaluation, on both backends, with a real webhook receiver checking signatures: a
matching silence holds the notification back while the alert is stepped and recorded; once the
silence ends, the firing is sent at the next evaluation; a resolve whose firing was never sent is
not sent; another workspace's silence and one that does not match change nothing."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts import AlertRule, evaluate_all, evaluate_rule
from telemetry.alerts.rule_store import create_rule
from telemetry.alerts.silence import Silence
from telemetry.alerts.silence_parsing import parse_silence
from telemetry.alerts.silence_store import create_silence, expire_silence
from telemetry.schema import DEFAULT_WORKSPACE_ID, alert_events
from tests.telemetry.alerts.alert_history import (
    DELIVERY,
    OTHER_WORKSPACE,
    T0,
    add_workspace,
    alerts_of,
    instances,
    minutes,
    plant,
    rows,
    webhook_channel,
)
from tests.telemetry.alerts.receivers import Receiver


async def _rule(engine: AsyncEngine, hook: Receiver) -> AlertRule:
    return await create_rule(
        engine,
        AlertRule(
            name="Error rate",
            metric="error_rate",
            critical=0.2,
            window_s=300,
            group_by=["model"],
            labels={"team": "ml"},
            channel_ids=[await webhook_channel(engine, f"{hook.url}/hook")],
        ),
    )


async def _silence(
    engine: AsyncEngine, matchers: list[str], *, workspace_id: str = DEFAULT_WORKSPACE_ID
) -> Silence:
    silence = parse_silence(
        {"matchers": matchers, "duration": "1h", "comment": "provider incident, we know"},
        workspace_id=workspace_id,
        created_by="ana@example.com",
        now=T0 - minutes(1),
    )
    return await create_silence(engine, silence)


async def test_a_silence_holds_the_firing_back_until_it_is_expired(
    engine: AsyncEngine, hook: Receiver
) -> None:
    rule = await _rule(engine, hook)
    await plant(engine, start=T0 - minutes(5), minutes_=10, per_minute=10, errors_per_minute=5)
    await plant(engine, start=T0 - minutes(5), minutes_=10, per_minute=10, model="claude")
    silence = await _silence(engine, ["model=gpt-4o-mini", "alertname=Error rate"])
    await _silence(engine, ["model=claude"])  # matches a group that is not alerting

    outcomes = (await evaluate_all(engine, T0, DELIVERY) or {})[rule.id]
    (outcome,) = [o for o in outcomes if o.labels["model"] == "gpt-4o-mini"]
    assert (outcome.state, outcome.notified) == ("firing", None)
    assert outcome.silenced_by == silence.silence_id
    assert hook.received == []
    (instance,) = await instances(engine)
    assert (instance["state"], instance["silenced_by"]) == ("firing", silence.silence_id)
    assert instance["last_notified_at"] is None

    await evaluate_all(engine, T0 + minutes(1), DELIVERY)  # still silenced: nothing sent
    assert hook.received == []

    await expire_silence(engine, silence.silence_id, T0 + minutes(1))
    outcomes = (await evaluate_all(engine, T0 + minutes(2), DELIVERY) or {})[rule.id]
    assert [(o.state, o.notified, o.silenced_by) for o in outcomes if o.state] == [
        ("firing", "firing", None)
    ]
    (sent,) = alerts_of(hook.received)
    assert (sent["state"], sent["labels"]) == ("firing", {"model": "gpt-4o-mini", "team": "ml"})
    (instance,) = await instances(engine)
    assert instance["silenced_by"] is None and instance["last_notified_at"] is not None

    notes = [row["note"] for row in await rows(engine, alert_events, "event_id")]
    assert notes == [
        f"silenced by {silence.silence_id}",
        f"no longer silenced by {silence.silence_id}",
    ]


async def test_a_resolve_whose_firing_was_never_sent_is_not_sent(
    engine: AsyncEngine, hook: Receiver
) -> None:
    rule = await _rule(engine, hook)
    await plant(engine, start=T0 - minutes(5), minutes_=5, per_minute=10, errors_per_minute=5)
    await plant(engine, start=T0, minutes_=10, per_minute=10)
    silence = await _silence(engine, ["team=ml", "severity=critical"])

    (outcome,) = await evaluate_rule(engine, rule, T0, DELIVERY)
    assert (outcome.state, outcome.silenced_by) == ("firing", silence.silence_id)
    await expire_silence(engine, silence.silence_id, T0 + minutes(1))
    (outcome,) = await evaluate_rule(engine, rule, T0 + minutes(6), DELIVERY)
    assert (outcome.state, outcome.notified) == ("resolved", None)
    assert hook.received == []


async def test_a_silence_of_another_workspace_or_that_does_not_match_changes_nothing(
    engine: AsyncEngine, hook: Receiver
) -> None:
    await add_workspace(engine)
    rule = await _rule(engine, hook)
    await plant(engine, start=T0 - minutes(5), minutes_=5, per_minute=10, errors_per_minute=5)
    await _silence(engine, ["model=gpt-4o-mini"], workspace_id=OTHER_WORKSPACE)
    await _silence(engine, ["model=gpt-4o-mini", "severity=warning"])
    await _silence(engine, ["model=~gpt-4o", "alertname=Error rate"])  # anchored: no match

    (outcome,) = (await evaluate_all(engine, T0, DELIVERY) or {})[rule.id]
    assert (outcome.state, outcome.notified, outcome.silenced_by) == ("firing", "firing", None)
    assert [alert["state"] for alert in alerts_of(hook.received)] == ["firing"]


async def test_a_round_reads_the_silences_once_whatever_the_number_of_rules(
    engine: AsyncEngine, hook: Receiver
) -> None:
    for name in ("Errors a", "Errors b", "Errors c"):
        await create_rule(
            engine,
            AlertRule(
                name=name,
                metric="errors",
                critical=1,
                window_s=300,
                channel_ids=[await webhook_channel(engine, f"{hook.url}/hook")],
            ),
        )
    await plant(engine, start=T0 - minutes(5), minutes_=5, per_minute=4, errors_per_minute=2)
    await _silence(engine, ["alertname=~Errors.*"])
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        rounds = await evaluate_all(engine, T0, DELIVERY)
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert rounds is not None and len(rounds) == 3
    assert all(o.silenced_by and o.state == "firing" for found in rounds.values() for o in found)
    assert hook.received == []
    assert len([s for s in statements if "FROM silences" in s]) == 1
