"""`deliver_report` keeps every recipient's outcome on the report's instance (SQLite and
Postgres): what was sent, what failed and why, with no secret in what is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.reports.definition import ReportDefinition
from telemetry.reports.delivery import deliver_report
from telemetry.reports.store import ReportInstance, add_instance, create_definition, get_instance
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.report_document_sample import END, START, sample_document
from tests.telemetry.alerts.receivers import Receiver, slack_check, webhook_check
from tests.telemetry.reports.report_recipients import (
    CONSOLE,
    MASTER_KEY,
    SECRET,
    report_files,
    slack_channel,
    webhook_channel,
)


async def _instance(engine: AsyncEngine, name: str) -> ReportInstance:
    definition = await create_definition(
        engine,
        ReportDefinition(
            id=uuid7_hex(),
            workspace_id=DEFAULT_WORKSPACE_ID,
            name=name,
            sections=("summary",),
            range="previous_week",
            schedule="0 7 * * 1",
            time_zone="Europe/Berlin",
        ),
    )
    return await add_instance(
        engine,
        ReportInstance(
            id=uuid7_hex(),
            definition_id=definition.id,
            workspace_id=DEFAULT_WORKSPACE_ID,
            range_start=START,
            range_end=END,
            trigger="manual",
            status="done",
            error=None,
            made_at=END + timedelta(hours=7),
        ),
    )


async def test_each_recipients_outcome_is_kept_on_the_instance(engine: AsyncEngine) -> None:
    instance = await _instance(engine, "Weekly summary for finance")
    untouched = await _instance(engine, "Weekly summary for nobody")
    hook = await Receiver(webhook_check(SECRET), problem_status=401).start()
    slack = await Receiver(slack_check).start()
    refusing = await Receiver(webhook_check("not-the-channels-secret"), problem_status=401).start()
    try:
        results = await deliver_report(
            engine,
            instance_id=instance.id,
            document=sample_document(),
            files=report_files(),
            channels=[
                webhook_channel(hook.url),
                slack_channel(slack.url),
                webhook_channel(refusing.url, max_attempts=1),
            ],
            console_url=CONSOLE,
            master_key=MASTER_KEY,
        )
    finally:
        for receiver in (hook, slack, refusing):
            await receiver.close()
    assert [r.status for r in results] == ["sent", "sent", "failed"]
    never = await get_instance(engine, untouched.id)
    assert never is not None and never.deliveries is None, "never delivered"
    delivered = await get_instance(engine, instance.id)
    assert delivered is not None
    outcomes = delivered.deliveries
    assert outcomes is not None
    assert [(o.kind, o.channel_name, o.status) for o in outcomes] == [
        ("webhook", "finance hook", "sent"),
        ("slack", "finance slack", "sent"),
        ("webhook", "finance hook", "failed"),
    ]
    assert outcomes[0].http_status == 200
    assert outcomes[2].http_status == 401
    assert outcomes[2].error == "HTTP 401: bad signature (not retried)"
    assert all(o.started_at.tzinfo is not None for o in outcomes)
    assert all(o.started_at <= datetime.now(UTC) for o in outcomes)
    stored_text = msgspec.json.encode(outcomes).decode()
    assert SECRET not in stored_text and "secret-token" not in stored_text
