"""Each section a report may hold (`document.SECTION_NAMES`), made from the analytics of one
scope (a workspace, or every workspace) over the report's range."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

import sqlalchemy as sa

from telemetry.analytics_anomalies import KIND_TITLES, KIND_UNITS, detect_anomalies, shown_range
from telemetry.analytics_forecast import forecast_spend
from telemetry.analytics_metrics import METRICS
from telemetry.reports.document import Chart, Column, Figure, Point, Section, Series, Table, Value
from telemetry.reports.queries import Number, Reader, change_pct, unit_of
from telemetry.reports.section_insights import insights
from telemetry.reports.tables import Col, group_table, metric_col, ratio
from telemetry.schema import alert_instances, alert_rules

TOP: Final = 10
KEYS_SHOWN: Final = 25
"""Keys in the cost table; the rest are summed into `(other)`."""
CHART_TOP: Final = 5
SUMMARY_METRICS: Final = (
    "requests",
    "errors",
    "error_rate",
    "cost",
    "total_tokens",
    "latency_p95",
    "cache_hit_rate",
    "cost_saved",
)
PERCENTILES: Final = ("latency_p50", "latency_p90", "latency_p95", "latency_p99", "latency_mean")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: float) -> Decimal:
    """An estimate in dollars (a forecast), to the cent."""
    return Decimal(f"{value:.2f}")


async def _figure(
    reader: Reader, metric: str, previous: tuple[datetime, datetime] | None
) -> Figure:
    value = await reader.total(metric)
    before: Number = None
    if previous is not None:
        before = await reader.total(metric, start=previous[0], end=previous[1])
    return Figure(
        name=metric,
        title=METRICS[metric].title,
        value=value,
        unit=unit_of(metric),
        previous=before,
        change_pct=change_pct(value, before) if previous is not None else None,
    )


async def summary(reader: Reader) -> Section:
    length = reader.end - reader.start
    previous = (reader.start - length, reader.start)
    figures = await asyncio.gather(*(_figure(reader, m, previous) for m in SUMMARY_METRICS))
    requests, cost = await asyncio.gather(reader.series("requests"), reader.series("cost"))
    return Section(
        name="summary",
        title="Summary",
        figures=tuple(figures),
        charts=(
            Chart(name="requests", title="Requests", unit="requests", series=requests),
            Chart(name="cost", title="Cost", unit="USD", series=cost),
        ),
        notes=(
            f"Compared with the {_length_text(length)} before: {iso(previous[0])} to "
            f"{iso(previous[1])}.",
        ),
    )


def _length_text(length: timedelta) -> str:
    hours = length.total_seconds() / 3600
    if hours % 24 == 0:
        days = int(hours // 24)
        return "day" if days == 1 else f"{days} days"
    return f"{hours:g} hours"


def _share_of(total: Number) -> Callable[[dict[str, Number]], Number]:
    def share(row: dict[str, Number]) -> Number:
        value = row.get("cost")
        if value is None or not total:
            return None
        return float(value) / float(total)

    return share


async def cost(reader: Reader) -> Section:
    total = await reader.total("cost")
    columns = (
        metric_col("cost"),
        Col("share", "Share of cost", derive=_share_of(total), unit="ratio"),
        metric_col("requests"),
        metric_col("total_tokens"),
    )
    tables: list[Awaitable[Table]] = []
    if reader.scope is None:
        tables.append(
            group_table(
                reader,
                name="by_workspace",
                title="Cost by workspace",
                dimension="workspace",
                dimension_title="Workspace",
                columns=columns,
                top=None,
                labels=await reader.workspace_names(),
            )
        )
    tables.append(
        group_table(
            reader,
            name="by_model",
            title="Cost by model",
            dimension="model",
            dimension_title="Model",
            columns=columns,
            top=None,
        )
    )
    tables.append(
        group_table(
            reader,
            name="by_key",
            title="Cost by key",
            dimension="key",
            dimension_title="Key",
            columns=columns,
            top=KEYS_SHOWN,
            labels=await reader.key_names(),
        )
    )
    made = await asyncio.gather(*tables)
    by_model = await reader.series("cost", group_by="model", top=CHART_TOP)
    return Section(
        name="cost",
        title="Cost",
        figures=(Figure(name="cost", title="Cost", value=total, unit="USD"),),
        charts=(Chart(name="cost_by_model", title="Cost by model", unit="USD", series=by_model),),
        tables=tuple(made),
    )


_USAGE_COLUMNS: Final = (
    metric_col("requests"),
    metric_col("errors"),
    Col("error_rate", "Error rate", derive=ratio("errors", "requests"), unit="ratio"),
    metric_col("total_tokens"),
    metric_col("cost"),
)


async def top_keys(reader: Reader) -> Section:
    table = await group_table(
        reader,
        name="top_keys",
        title=f"Top {TOP} keys by requests",
        dimension="key",
        dimension_title="Key",
        columns=_USAGE_COLUMNS,
        top=TOP,
        labels=await reader.key_names(),
    )
    return Section(name="top_keys", title="Top keys", tables=(table,))


async def top_end_users(reader: Reader) -> Section:
    table = await group_table(
        reader,
        name="top_end_users",
        title=f"Top {TOP} end users by requests",
        dimension="end_user",
        dimension_title="End user",
        columns=_USAGE_COLUMNS,
        top=TOP,
    )
    notes = ("End users are the `user` field of requests; requests without one are not listed.",)
    return Section(name="top_end_users", title="Top end users", tables=(table,), notes=notes)


async def latency_errors(reader: Reader) -> Section:
    names = (*PERCENTILES, "error_rate", "errors")
    figures = await asyncio.gather(*(_figure(reader, name, None) for name in names))
    errors = group_table(
        reader,
        name="errors_by_type",
        title="Errors by type",
        dimension="error_type",
        dimension_title="Error type",
        columns=(metric_col("errors"),),
        top=None,
        keep=lambda row: bool(row.get("errors")),
    )
    providers = group_table(
        reader,
        name="by_provider",
        title="Latency and errors by provider",
        dimension="provider",
        dimension_title="Provider",
        columns=(
            metric_col("requests"),
            metric_col("errors"),
            Col("error_rate", "Error rate", derive=ratio("errors", "requests"), unit="ratio"),
            metric_col("latency_p50"),
            metric_col("latency_p95"),
            metric_col("latency_p99"),
        ),
        top=None,
    )
    tables = await asyncio.gather(errors, providers)
    p50, p95, rate = await asyncio.gather(
        reader.series("latency_p50"), reader.series("latency_p95"), reader.series("error_rate")
    )
    return Section(
        name="latency_errors",
        title="Latency and errors",
        figures=tuple(figures),
        charts=(
            Chart(name="latency", title="Latency", unit="ms", series=(*p50, *p95)),
            Chart(name="error_rate", title="Error rate", unit="ratio", series=rate),
        ),
        tables=tuple(tables),
        notes=(
            "Percentiles come from the roll-ups' histogram buckets: each is within its "
            "bucket's width of the exact value.",
        ),
    )


async def cache_roi(reader: Reader) -> Section:
    hits, rate, saved, spent = await asyncio.gather(
        reader.total("cache_hits"),
        reader.total("cache_hit_rate"),
        reader.total("cost_saved"),
        reader.total("cost"),
    )
    saved_vs_spent = None if saved is None or not spent else float(saved) / float(spent)
    table = await group_table(
        reader,
        name="by_model",
        title="Cache by model",
        dimension="model",
        dimension_title="Model",
        columns=(
            metric_col("cache_hits"),
            metric_col("requests"),
            Col(
                "cache_hit_rate",
                "Cache hit rate",
                derive=ratio("cache_hits", "requests"),
                unit="ratio",
            ),
            metric_col("cost_saved"),
            metric_col("cost"),
        ),
        top=None,
    )
    return Section(
        name="cache_roi",
        title="Cache ROI",
        figures=(
            Figure(name="cache_hits", title="Cache hits", value=hits, unit="requests"),
            Figure(name="cache_hit_rate", title="Cache hit rate", value=rate, unit="ratio"),
            Figure(name="cost_saved", title="Cost saved by the cache", value=saved, unit="USD"),
            Figure(name="cost", title="Cost spent", value=spent, unit="USD"),
            Figure(
                name="saved_vs_spent",
                title="Saved for every dollar spent",
                value=saved_vs_spent,
                unit="ratio",
            ),
        ),
        charts=(
            Chart(
                name="saved_vs_spent",
                title="Saved vs spent",
                unit="USD",
                kind="bars",
                series=(
                    Series(name="Saved", points=(Point(reader.start, _decimal(saved)),)),
                    Series(name="Spent", points=(Point(reader.start, _decimal(spent)),)),
                ),
            ),
        ),
        tables=(table,),
    )


def _decimal(value: Number) -> Decimal | float | None:
    if value is None or isinstance(value, Decimal):
        return value
    return float(value)


async def guardrails(reader: Reader) -> Section:
    total, blocked = await asyncio.gather(
        reader.total("guardrail_verdicts"),
        reader.total("guardrail_verdicts", filters={"action": ("block",)}),
    )
    by_guardrail = group_table(
        reader,
        name="by_guardrail",
        title="Verdicts by guardrail",
        dimension="guardrail",
        dimension_title="Guardrail",
        columns=(metric_col("guardrail_verdicts", "Verdicts"),),
        top=None,
        keep=lambda row: bool(row.get("guardrail_verdicts")),
    )
    by_action = group_table(
        reader,
        name="by_action",
        title="Verdicts by action",
        dimension="action",
        dimension_title="Action",
        columns=(metric_col("guardrail_verdicts", "Verdicts"),),
        top=None,
        keep=lambda row: bool(row.get("guardrail_verdicts")),
    )
    entities = group_table(
        reader,
        name="by_entity_type",
        title="Entities found by type",
        dimension="entity_type",
        dimension_title="Entity type",
        columns=(metric_col("guardrail_entities", "Entities"),),
        top=None,
        keep=lambda row: bool(row.get("guardrail_entities")),
    )
    tables = await asyncio.gather(by_guardrail, by_action, entities)
    actions = tables[1]
    notes = () if total else ("No guardrail found anything in this period.",)
    return Section(
        name="guardrails",
        title="Guardrail activity",
        figures=(
            Figure(name="verdicts", title="Guardrail verdicts", value=total, unit=""),
            Figure(name="blocked", title="Requests blocked", value=blocked, unit=""),
        ),
        charts=(
            Chart(
                name="by_action",
                title="Verdicts by action",
                kind="bars",
                series=tuple(
                    Series(
                        name=str(row[0]), points=(Point(reader.start, _decimal(_number(row[1]))),)
                    )
                    for row in actions.rows
                ),
            ),
        ),
        tables=tuple(tables),
        notes=notes,
    )


def _number(value: Value) -> Number:
    return value if isinstance(value, (Decimal, float, int)) or value is None else None


async def anomalies_alerts(reader: Reader, now: datetime) -> Section:
    first, last = shown_range(reader.start, reader.end, now)
    anomaly_rows: list[tuple[Value, ...]] = []
    if first < last:
        found = await detect_anomalies(
            reader.engine,
            start=reader.start,
            end=reader.end,
            now=now,
            dimensions=("workspace", "model") if reader.scope is None else (None, "model"),
            scope=reader.scope,
        )
        labels = await reader.workspace_names() if reader.scope is None else {}
        for item in found.anomalies:
            anomaly = item.anomaly
            group = (
                labels.get(item.group, item.group) if item.dimension == "workspace" else item.group
            )
            anomaly_rows.append(
                (
                    KIND_TITLES[item.kind],
                    item.dimension or "everything",
                    group or "(all)",
                    iso(anomaly.start),
                    iso(anomaly.end),
                    anomaly.hours,
                    anomaly.direction,
                    anomaly.expected,
                    anomaly.actual,
                    KIND_UNITS[item.kind],
                    round(anomaly.score, 2),
                )
            )
    alerts = await _alerts(reader)
    notes = []
    if not anomaly_rows:
        notes.append("No anomaly in this period.")
    if not alerts.rows:
        notes.append("No alert fired in this period.")
    return Section(
        name="anomalies_alerts",
        title="Anomalies and alerts",
        figures=(
            Figure(name="anomalies", title="Anomalies", value=len(anomaly_rows)),
            Figure(name="alerts", title="Alerts fired", value=len(alerts.rows)),
        ),
        tables=(
            Table(
                name="anomalies",
                title="Anomalies",
                columns=(
                    Column(name="kind", title="Kind"),
                    Column(name="dimension", title="By"),
                    Column(name="group", title="Group"),
                    Column(name="start", title="From"),
                    Column(name="end", title="To"),
                    Column(name="hours", title="Hours"),
                    Column(name="direction", title="Direction"),
                    Column(name="expected", title="Expected at peak"),
                    Column(name="actual", title="Actual at peak"),
                    Column(name="unit", title="Unit"),
                    Column(name="score", title="Score"),
                ),
                rows=tuple(anomaly_rows),
            ),
            alerts,
        ),
        notes=tuple(notes),
    )


async def _alerts(reader: Reader) -> Table:
    """Alerts that were firing at some time in the range."""
    instances, rules = alert_instances, alert_rules
    select = (
        sa.select(
            rules.c.name,
            instances.c.severity,
            instances.c.state,
            instances.c.labels,
            instances.c.fired_at,
            instances.c.resolved_at,
            instances.c.value,
            instances.c.threshold,
        )
        .join(rules, rules.c.rule_id == instances.c.rule_id)
        .where(
            instances.c.fired_at.is_not(None),
            instances.c.fired_at < reader.end,
            sa.or_(instances.c.resolved_at.is_(None), instances.c.resolved_at >= reader.start),
        )
        .order_by(instances.c.fired_at, instances.c.instance_id)
    )
    if reader.scope is not None:
        select = select.where(instances.c.workspace_id == reader.scope)
    async with reader.engine.connect() as connection:
        rows = (await connection.execute(select)).all()
    return Table(
        name="alerts",
        title="Alerts",
        columns=(
            Column(name="rule", title="Rule"),
            Column(name="severity", title="Severity"),
            Column(name="state", title="State now"),
            Column(name="labels", title="Labels"),
            Column(name="fired_at", title="Fired"),
            Column(name="resolved_at", title="Resolved"),
            Column(name="value", title="Value"),
            Column(name="threshold", title="Threshold"),
        ),
        rows=tuple(
            (
                row.name,
                row.severity,
                row.state,
                ", ".join(f"{k}={v}" for k, v in sorted(dict(row.labels or {}).items())),
                iso(_aware(row.fired_at)),
                iso(_aware(row.resolved_at)) if row.resolved_at else None,
                row.value,
                row.threshold,
            )
            for row in rows
        ),
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def forecast(reader: Reader, now: datetime) -> Section:
    found = await forecast_spend(
        reader.engine, dimension="model", now=now, top=CHART_TOP, scope=reader.scope
    )
    total = found.total
    rows = tuple(
        (
            group.group or "(none)",
            money(group.spent_this_month),
            money(group.month_end.expected),
            money(group.month_end.lower),
            money(group.month_end.upper),
            group.method,
        )
        for group in found.groups
    )
    history = tuple(Point(at, money(value)) for at, value in total.history[-30:])
    ahead = tuple(
        Point(found.day(step), money(value)) for step, value in enumerate(total.daily.values[:30])
    )
    return Section(
        name="forecast",
        title="Spend forecast",
        figures=(
            Figure(
                name="spent_this_month",
                title="Spent this month",
                value=money(total.spent_this_month),
                unit="USD",
            ),
            Figure(
                name="month_end",
                title="Expected at month end",
                value=money(total.month_end.expected),
                unit="USD",
            ),
            Figure(
                name="month_end_lower",
                title="Month end, low",
                value=money(total.month_end.lower),
                unit="USD",
            ),
            Figure(
                name="month_end_upper",
                title="Month end, high",
                value=money(total.month_end.upper),
                unit="USD",
            ),
            Figure(
                name="next_30_days",
                title="Expected over the next 30 days",
                value=money(total.next_days.expected),
                unit="USD",
            ),
        ),
        charts=(
            Chart(
                name="daily_spend",
                title="Daily spend and forecast",
                unit="USD",
                series=(
                    Series(name="Spent", points=history),
                    Series(name="Forecast", points=ahead),
                ),
            ),
        ),
        tables=(
            Table(
                name="by_model",
                title="Month-end spend by model",
                columns=(
                    Column(name="model", title="Model"),
                    Column(name="spent_this_month", title="Spent this month", unit="USD"),
                    Column(name="month_end", title="Expected at month end", unit="USD"),
                    Column(name="month_end_lower", title="Low", unit="USD"),
                    Column(name="month_end_upper", title="High", unit="USD"),
                    Column(name="method", title="Method"),
                ),
                rows=rows,
            ),
        ),
        notes=(
            f"As of {iso(now)}, from daily spend (UTC days), whatever the report's range; "
            f"method {total.method}. Estimates, to the cent.",
        ),
    )


SectionMaker = Callable[[Reader, datetime], Awaitable[Section]]


def _plain(maker: Callable[[Reader], Awaitable[Section]]) -> SectionMaker:
    async def make(reader: Reader, now: datetime) -> Section:
        return await maker(reader)

    return make


SECTIONS: Final[Mapping[str, SectionMaker]] = {
    "summary": _plain(summary),
    "cost": _plain(cost),
    "top_keys": _plain(top_keys),
    "top_end_users": _plain(top_end_users),
    "latency_errors": _plain(latency_errors),
    "cache_roi": _plain(cache_roi),
    "guardrails": _plain(guardrails),
    "anomalies_alerts": anomalies_alerts,
    "forecast": forecast,
    "insights": _plain(insights),
}
"""How each of `document.SECTION_NAMES` is made."""
