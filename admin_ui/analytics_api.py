"""`GET /admin/api/analytics`: the metrics and the dimensions they can be split by;
`GET /admin/api/analytics/{metric}`: one metric over a time range, per step, by up to two
dimensions, as JSON or CSV (`admin_ui.analytics_answer`), read from the roll-ups
(`telemetry.analytics`).

Scoping is the admin API's: an admin key of one workspace, or a user, reads its workspace's
numbers only, and naming another workspace is a 404. A `key` filter takes ids or names; with
`group_by=key` (or `workspace`) the JSON answer's `labels` names the ids it shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from litestar import Controller, Request, get
from litestar.response import Stream

from admin_ui.analytics_answer import Labels, csv_chunks, csv_filename, json_chunks
from admin_ui.analytics_params import CSV, QUERY, AnalyticsRequest, parse_analytics_request
from admin_ui.auth import workspace_scope
from admin_ui.openapi import JsonSchema, Query, described, object_schema, strings
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import key_store_of, visible_workspace, visible_workspaces
from gateway.entry.auth import MASTER_KEY_INFO
from gateway.errors import GatewayError
from telemetry.analytics import AnalyticsQuery, run_query
from telemetry.analytics_dimensions import (
    DIMENSIONS,
    HOUR,
    HOURLY_DIMENSIONS,
    MINUTE,
    dimensions_of,
    finest_step,
)
from telemetry.analytics_metrics import METRICS, Metric

AnyRequest = Request[Any, Any, Any]

JSON: Final = "application/json"
_VALUE: JsonSchema = {"type": ["number", "string", "null"]}
ANSWER_SCHEMA: Final = object_schema(
    {
        "object": {"const": "analytics"},
        "metric": {"type": "string"},
        "unit": {"enum": ["count", "usd", "ms", "tokens", "percent"]},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "step": {"type": "integer"},
        "grain": {"enum": ["minute", "hour", "day"]},
        "group_by": strings(),
        "total": _VALUE,
        "labels": {"type": "object"},
        "series": {
            "type": "array",
            "items": object_schema(
                {
                    "group": {"type": "object", "additionalProperties": {"type": "string"}},
                    "total": _VALUE,
                    "points": {"type": "array", "items": {"type": "array", "maxItems": 2}},
                },
                required=("group", "total", "points"),
            ),
        },
    },
    required=("object", "metric", "unit", "from", "to", "step", "grain", "group_by", "total"),
)
ANSWER_DESCRIPTION: Final = (
    "The metric per step and group: JSON (money as decimal strings, null where nothing was "
    "measured), or CSV with a header `time,<group_by...>,<metric>` and a row per point."
)


def unknown_metric(name: str) -> GatewayError:
    return GatewayError(
        404,
        f"No metric '{name[:64]}'; GET /admin/api/analytics lists them.",
        code="unknown_metric",
        param="metric",
    )


def metric_item(metric: Metric) -> dict[str, Any]:
    return {
        "object": "analytics_metric",
        "name": metric.name,
        "title": metric.title,
        "unit": metric.unit,
        "description": metric.description,
        "dimensions": list(dimensions_of(metric)),
        "finest_step": finest_step(metric),
        "higher_is_better": metric.higher_is_better,
    }


def dimension_item(name: str) -> dict[str, Any]:
    return {
        "object": "analytics_dimension",
        "name": name,
        "description": DIMENSIONS[name],
        "finest_step": HOUR if name in HOURLY_DIMENSIONS else MINUTE,
    }


async def _visible_keys(request: AnyRequest, scope: str | None) -> dict[str, str]:
    """Key id → name, for the keys of `scope` (every key, and the master key, for None)."""
    keys = await key_store_of(request).list(workspace_id=scope, include_revoked=True)
    found = {key.key_id: key.name for key in keys}
    if scope is None:
        found[MASTER_KEY_INFO.key_id] = MASTER_KEY_INFO.name
    return found


async def _key_ids(request: AnyRequest, scope: str | None, wanted: Iterable[str]) -> list[str]:
    """The ids of the keys `wanted` names (by id or name), within `scope`; a value naming none
    stays as it is, so it matches nothing rather than everything."""
    names = await _visible_keys(request, scope)
    by_name: dict[str, list[str]] = {}
    for key_id, name in names.items():
        by_name.setdefault(name, []).append(key_id)
    found: list[str] = []
    for value in wanted:
        found.extend([value] if value in names else by_name.get(value, [value]))
    return list(dict.fromkeys(found))


async def _labels(request: AnyRequest, scope: str | None, query: AnalyticsQuery) -> Labels:
    labels: dict[str, dict[str, str]] = {}
    if "key" in query.group_by:
        labels["key"] = await _visible_keys(request, scope)
    if "workspace" in query.group_by:
        labels["workspace"] = {w.workspace_id: w.name for w in await visible_workspaces(request)}
    return labels


def _shown(labels: Labels, result_groups: Iterable[dict[str, str]]) -> Labels:
    """Only the labels of values the answer holds."""
    present: dict[str, set[str]] = {}
    for group in result_groups:
        for name, value in group.items():
            present.setdefault(name, set()).add(value)
    return {
        name: {value: text for value, text in values.items() if value in present.get(name, ())}
        for name, values in labels.items()
    }


async def _scope(request: AnyRequest, asked: AnalyticsRequest) -> str | None:
    if asked.workspace is None:
        return workspace_scope(request)
    return (await visible_workspace(request, asked.workspace)).workspace_id


class AnalyticsController(Controller):
    path = "/analytics"

    @get("/", operation_class=described())
    async def catalogue(self) -> dict[str, Any]:
        """The metrics, each with its unit and the dimensions it can be split by."""
        return {
            "object": "analytics_catalog",
            "metrics": [metric_item(metric) for metric in METRICS.values()],
            "dimensions": [dimension_item(name) for name in DIMENSIONS],
        }

    @get(
        "/{metric:str}",
        operation_class=described(
            query=QUERY,
            path=(Query("metric", "The metric's name.", {"enum": list(METRICS)}),),
            success=({JSON: ANSWER_SCHEMA, CSV: {"type": "string"}}, ANSWER_DESCRIPTION),
            more_errors={"404": "No such metric, or a workspace the caller cannot see."},
        ),
    )
    async def metric(self, request: AnyRequest, metric: str) -> Stream:
        """A metric over a time range, per step, by up to two dimensions, filtered."""
        found = METRICS.get(metric)
        if found is None:
            raise unknown_metric(metric)
        asked = parse_analytics_request(
            found,
            request.query_params.multi_items(),
            now=datetime.now(UTC),
            accept=request.headers.get("accept"),
        )
        scope = await _scope(request, asked)
        query = asked.query
        if "key" in query.filters:
            key_ids = tuple(await _key_ids(request, scope, query.filters["key"]))
            query = replace(query, filters={**query.filters, "key": key_ids})
        result = await run_query(gateway_of(request).engine, query, scope=scope)
        headers = {"Vary": "Accept", "Cache-Control": "no-store"}
        if asked.format == "csv":
            headers["Content-Disposition"] = f'attachment; filename="{csv_filename(result)}"'
            return Stream(csv_chunks(result), media_type=CSV, headers=headers)
        labels = _shown(await _labels(request, scope, query), (s.group for s in result.series))
        return Stream(json_chunks(result, labels), media_type=JSON, headers=headers)
