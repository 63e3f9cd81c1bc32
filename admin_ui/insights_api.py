"""`GET /admin/api/analytics/forecast`, `/anomalies` and `/anomaly_score`: spend forecasts and
anomalies, read from the roll-ups (`telemetry.analytics_forecast`,
`telemetry.analytics_anomalies`), answered as `admin_ui.insight_answers` writes them.

Scoping is the analytics API's: a workspace's admin key or user reads that workspace only, and
naming a workspace the caller cannot see is a 404. Parameters: `admin_ui.insight_params`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from litestar import Controller, Request, get
from litestar.response import Stream

from admin_ui.analytics_answer import Labels
from admin_ui.analytics_api import _key_ids, _visible_keys
from admin_ui.auth import workspace_scope
from admin_ui.insight_answers import (
    SCORE_UNIT,
    anomalies_answer,
    forecast_answer,
    score_csv_chunks,
    score_csv_filename,
    score_json_chunks,
    shown_labels,
)
from admin_ui.insight_params import (
    ANOMALY_QUERY,
    FORECAST_QUERY,
    SCORE_QUERY,
    AnomalyRequest,
    parse_anomaly_request,
    parse_forecast_request,
    parse_score_request,
)
from admin_ui.openapi import JsonSchema, described, object_schema, strings
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspace, visible_workspaces
from telemetry.analytics_anomalies import AnomalyReport
from telemetry.analytics_anomaly_cache import cached_anomalies
from telemetry.analytics_forecast import forecast_spend
from telemetry.anomalies import Options

AnyRequest = Request[Any, Any, Any]

JSON: Final = "application/json"
CSV: Final = "text/csv"
_MONEY: JsonSchema = {"type": "string"}
_RANGE: JsonSchema = object_schema(
    {"expected": _MONEY, "lower": _MONEY, "upper": _MONEY},
    required=("expected", "lower", "upper"),
)
_GROUP: JsonSchema = {"type": "object", "additionalProperties": {"type": "string"}}
_GROUP_FORECAST: JsonSchema = object_schema(
    {
        "group": _GROUP,
        "spent_today": _MONEY,
        "spent_this_month": _MONEY,
        "month_end": _RANGE,
        "next_30_days": _RANGE,
        "method": {"type": "string"},
        "backtest": {"type": "object"},
        "history": {"type": "array", "items": {"type": "array"}},
        "forecast": {"type": "array", "items": {"type": "array"}},
    },
    required=("group", "spent_this_month", "month_end", "next_30_days", "method", "backtest"),
)
FORECAST_SCHEMA: Final = object_schema(
    {
        "object": {"const": "forecast"},
        "now": {"type": "string", "format": "date-time"},
        "group_by": strings(),
        "labels": {"type": "object"},
        "total": _GROUP_FORECAST,
        "groups": {"type": "array", "items": _GROUP_FORECAST},
    },
    required=("object", "now", "group_by", "total", "groups"),
)
_MEASURED: JsonSchema = {"type": ["number", "string", "null"]}
ANOMALIES_SCHEMA: Final = object_schema(
    {
        "object": {"const": "anomalies"},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "kinds": strings(),
        "group_by": strings(),
        "threshold": {"type": "number"},
        "labels": {"type": "object"},
        "anomalies": {
            "type": "array",
            "items": object_schema(
                {
                    "kind": {"type": "string"},
                    "unit": {"type": "string"},
                    "group": _GROUP,
                    "start": {"type": "string", "format": "date-time"},
                    "end": {"type": "string", "format": "date-time"},
                    "hours": {"type": "integer"},
                    "peak_at": {"type": "string", "format": "date-time"},
                    "score": {"type": "number"},
                    "direction": {"enum": ["up", "down"]},
                    "expected": _MEASURED,
                    "actual": _MEASURED,
                },
                required=("kind", "group", "start", "end", "score", "expected", "actual"),
            ),
        },
        "scores": {"type": "array", "items": {"type": "object"}},
    },
    required=("object", "from", "to", "anomalies", "scores"),
)
SCORE_SCHEMA: Final = object_schema(
    {
        "object": {"const": "analytics"},
        "metric": {"const": "anomaly_score"},
        "kind": {"type": "string"},
        "unit": {"const": SCORE_UNIT},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "step": {"type": "integer"},
        "grain": {"const": "hour"},
        "group_by": strings(),
        "series": {"type": "array", "items": {"type": "object"}},
    },
    required=("object", "metric", "kind", "unit", "from", "to", "step", "series"),
)
_NO_STORE: Final = {"Cache-Control": "no-store"}


async def _scope(request: AnyRequest, workspace: str | None) -> str | None:
    if workspace is None:
        return workspace_scope(request)
    return (await visible_workspace(request, workspace)).workspace_id


async def _with_key_ids(
    request: AnyRequest, scope: str | None, filters: dict[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    if "key" not in filters:
        return filters
    return {**filters, "key": tuple(await _key_ids(request, scope, filters["key"]))}


async def _labels(request: AnyRequest, scope: str | None, dimensions: set[str]) -> Labels:
    labels: dict[str, dict[str, str]] = {}
    if "key" in dimensions:
        labels["key"] = await _visible_keys(request, scope)
    if "workspace" in dimensions:
        labels["workspace"] = {w.workspace_id: w.name for w in await visible_workspaces(request)}
    return labels


async def _report(request: AnyRequest, asked: AnomalyRequest) -> tuple[AnomalyReport, str | None]:
    scope = await _scope(request, asked.workspace)
    report = await cached_anomalies(
        gateway_of(request).engine,
        start=asked.start,
        end=asked.end,
        now=datetime.now(UTC),
        kinds=asked.kinds,
        dimensions=asked.dimensions,
        top=asked.top,
        filters=await _with_key_ids(request, scope, asked.filters),
        scope=scope,
        options=Options(threshold=asked.threshold),
    )
    return report, scope


class InsightsController(Controller):
    path = "/analytics"

    @get(
        "/forecast",
        operation_class=described(
            query=FORECAST_QUERY,
            success=({JSON: FORECAST_SCHEMA}, "Month-end and 30-day spend, per group."),
            more_errors={"404": "A workspace the caller cannot see."},
        ),
    )
    async def forecast(self, request: AnyRequest) -> dict[str, Any]:
        """Spend forecasts: this month's end and the next 30 days, per workspace, key or model,
        with the method and its backtest error."""
        asked = parse_forecast_request(request.query_params.multi_items())
        scope = await _scope(request, asked.workspace)
        found = await forecast_spend(
            gateway_of(request).engine,
            dimension=asked.dimension,
            now=datetime.now(UTC),
            top=asked.top,
            filters=await _with_key_ids(request, scope, asked.filters),
            scope=scope,
        )
        groups = [{found.dimension: group.group} for group in found.groups if found.dimension]
        labels = shown_labels(
            await _labels(request, scope, {found.dimension} if found.dimension else set()), groups
        )
        return forecast_answer(found, labels)

    @get(
        "/anomalies",
        operation_class=described(
            query=ANOMALY_QUERY,
            success=({JSON: ANOMALIES_SCHEMA}, "The anomalies, newest first, and latest scores."),
            more_errors={"404": "A workspace the caller cannot see."},
        ),
    )
    async def anomalies(self, request: AnyRequest) -> dict[str, Any]:
        """Anomalies of cost, requests, error rate and latency per workspace and model, and each
        group's latest score."""
        asked = parse_anomaly_request(request.query_params.multi_items(), now=datetime.now(UTC))
        report, scope = await _report(request, asked)
        dimensions = {d for d in report.dimensions if d is not None}
        groups = [{s.dimension: s.group} for s in report.series if s.dimension is not None]
        labels = shown_labels(await _labels(request, scope, dimensions), groups)
        return anomalies_answer(report, labels)

    @get(
        "/anomaly_score",
        operation_class=described(
            query=SCORE_QUERY,
            success=(
                {JSON: SCORE_SCHEMA, CSV: {"type": "string"}},
                "Every hour's anomaly score per group, shaped like a metric's answer.",
            ),
            more_errors={"404": "A workspace the caller cannot see."},
        ),
    )
    async def anomaly_score(self, request: AnyRequest) -> Stream:
        """The anomaly score of one kind per hour, per workspace or model or overall: a metric
        alerts can watch."""
        asked = parse_score_request(
            request.query_params.multi_items(),
            now=datetime.now(UTC),
            accept=request.headers.get("accept"),
        )
        report, scope = await _report(request, asked)
        (kind,) = asked.kinds
        headers = {"Vary": "Accept", **_NO_STORE}
        if asked.format == "csv":
            headers["Content-Disposition"] = (
                f'attachment; filename="{score_csv_filename(report, kind)}"'
            )
            return Stream(score_csv_chunks(report), media_type=CSV, headers=headers)
        dimensions = {d for d in report.dimensions if d is not None}
        groups = [{s.dimension: s.group} for s in report.series if s.dimension is not None]
        labels = shown_labels(await _labels(request, scope, dimensions), groups)
        return Stream(score_json_chunks(report, kind, labels), media_type=JSON, headers=headers)
