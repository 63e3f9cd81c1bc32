"""`build_report` over a demo history on SQLite and Postgres: a report over every workspace
holds every section, its cost by workspace adds up to its cost, the end users are the
analytics', and an alert that fired in the period is listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.demo.data import DemoOptions, write_demo_data
from telemetry.analytics import AnalyticsQuery, run_query
from telemetry.ids import uuid7_hex
from telemetry.reports.build import EVERY_WORKSPACE, build_report
from telemetry.reports.document import SECTION_NAMES, ReportDocument, Section
from telemetry.schema import DEFAULT_WORKSPACE_ID, alert_instances, alert_rules

END = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday
START = END - timedelta(days=7)
RULE_NAME = "Error burst 5f1e"


async def _plant_alert(engine: AsyncEngine) -> None:
    rule_id, fired = uuid7_hex(), START + timedelta(days=2, hours=3)
    async with engine.begin() as connection:
        await connection.execute(
            alert_rules.insert().values(
                rule_id=rule_id,
                workspace_id=DEFAULT_WORKSPACE_ID,
                name=RULE_NAME,
                metric="error_rate",
                filters={},
                group_by=["model"],
                window_s=300,
                condition="above",
                critical_threshold=0.05,
                for_s=60,
                min_requests=20,
                no_data="ok",
                labels={},
                message="",
                channel_ids=[],
                renotify_s=0,
                notify_on_resolve=True,
                muted=False,
                created_at=START,
                updated_at=START,
            )
        )
        for started, resolved in ((fired, fired + timedelta(minutes=20)), (END, None)):
            await connection.execute(
                alert_instances.insert().values(
                    instance_id=uuid7_hex(),
                    rule_id=rule_id,
                    workspace_id=DEFAULT_WORKSPACE_ID,
                    fingerprint=uuid7_hex(),
                    labels={"model": "gpt-4o"},
                    state="resolved" if resolved else "firing",
                    severity="critical",
                    value=0.31,
                    threshold=0.05,
                    started_at=started,
                    fired_at=started,
                    resolved_at=resolved,
                    last_evaluated_at=started,
                )
            )


def _section(document: ReportDocument, name: str) -> Section:
    return next(section for section in document.sections if section.name == name)


async def test_a_report_over_every_workspace(engine: AsyncEngine) -> None:
    await write_demo_data(engine, DemoOptions(days=15, requests=2500, seed=2, end=END))
    await _plant_alert(engine)
    document = await build_report(
        engine,
        workspace_id=None,
        start=START,
        end=END,
        sections=tuple(reversed(SECTION_NAMES)),
        title="Every workspace",
        time_zone="UTC",
        now=END + timedelta(hours=8),
    )
    assert document.workspace_name == EVERY_WORKSPACE
    assert tuple(section.name for section in document.sections) == SECTION_NAMES

    cost = _section(document, "cost")
    total = cost.figures[0].value
    assert isinstance(total, Decimal) and total > 0
    by_workspace = next(table for table in cost.tables if table.name == "by_workspace")
    assert len(by_workspace.rows) == 5  # the demo's workspaces
    assert sum(row[1] for row in by_workspace.rows if isinstance(row[1], Decimal)) == total

    users = await run_query(
        engine,
        AnalyticsQuery(
            metric="requests",
            start=START,
            end=END,
            step=3600,
            group_by=("end_user",),
            points=False,
        ),
        scope=None,
    )
    ranked = sorted(users.series, key=lambda s: -float(s.total or 0))
    table = _section(document, "top_end_users").tables[0]
    assert len(table.rows) == 11  # the top 10 and (other)
    assert [row[1] for row in table.rows[:10]] == [int(s.total or 0) for s in ranked[:10]]
    assert sum(int(row[1] or 0) for row in table.rows) == int(users.total or 0)

    alerts = next(t for t in _section(document, "anomalies_alerts").tables if t.name == "alerts")
    assert [(row[0], row[2], row[3]) for row in alerts.rows] == [
        (RULE_NAME, "resolved", "model=gpt-4o")
    ]  # the one firing from END on is outside the period

    forecast = {figure.name: figure for figure in _section(document, "forecast").figures}
    month_end = forecast["month_end"].value
    assert isinstance(month_end, Decimal) and month_end >= 0
    assert forecast["month_end"].unit == "USD"
