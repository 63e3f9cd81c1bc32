"""`GET /admin/api/insights` and its four parts: a cheaper model of equal quality per workload
(`/cheaper_models`), identical requests the cache missed (`/repeats`), `max_tokens` far above
the answers (`/max_tokens`) and provider errors grouped by fingerprint (`/errors`), read by
`telemetry.insights` over a range, answered as `admin_ui.findings_answers` writes them.

Scoping is the analytics API's: a workspace's admin key or user reads that workspace only, and
naming a workspace the caller cannot see is a 404. Parameters: `admin_ui.findings_params`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from litestar import Controller, Request, get

from admin_ui.analytics_api import _visible_keys
from admin_ui.auth import workspace_scope
from admin_ui.findings_answers import (
    cheaper_models_answer,
    errors_answer,
    insights_answer,
    max_tokens_answer,
    repeats_answer,
)
from admin_ui.findings_params import FINDINGS_QUERY, FindingsRequest, parse_findings_request
from admin_ui.openapi import JsonSchema, described, object_schema
from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspace
from providers.pricing import PriceTable
from telemetry.insights.cheaper_models import find_cheaper_models
from telemetry.insights.error_summaries import SUMMARIES
from telemetry.insights.errors import find_errors
from telemetry.insights.findings import read_insights
from telemetry.insights.max_tokens import find_max_tokens
from telemetry.insights.repeats import find_repeats
from telemetry.insights.scope import InsightScope

AnyRequest = Request[Any, Any, Any]

JSON: Final = "application/json"
_LIST: JsonSchema = {"type": "array", "items": {"type": "object"}}
_NOTES: JsonSchema = {"type": "array", "items": {"type": "string"}}
_MONEY: JsonSchema = {"type": ["string", "null"]}
CHEAPER_SCHEMA: Final = object_schema(
    {
        "margin": {"type": "number"},
        "min_samples": {"type": "integer"},
        "suggestions": _LIST,
        "workloads": _LIST,
        "notes": _NOTES,
    },
    required=("margin", "min_samples", "suggestions", "workloads", "notes"),
)
REPEATS_SCHEMA: Final = object_schema(
    {
        "compared": {"type": "integer"},
        "skipped": {"type": "integer"},
        "repeats": {"type": "integer"},
        "saving": _MONEY,
        "more_groups": {"type": "integer"},
        "groups": _LIST,
        "notes": _NOTES,
    },
    required=("compared", "skipped", "repeats", "saving", "groups", "notes"),
)
MAX_TOKENS_SCHEMA: Final = object_schema(
    {
        "ratio": {"type": "number"},
        "min_requests": {"type": "integer"},
        "without_max_tokens": {"type": "integer"},
        "groups": _LIST,
        "notes": _NOTES,
    },
    required=("ratio", "groups", "notes"),
)
ERRORS_SCHEMA: Final = object_schema(
    {
        "errors": {"type": "integer"},
        "more_groups": {"type": "integer"},
        "messages_left_out": {"type": "integer"},
        "groups": _LIST,
        "notes": _NOTES,
    },
    required=("errors", "groups", "notes"),
)
INSIGHTS_SCHEMA: Final = object_schema(
    {
        "object": {"const": "insights"},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "cheaper_models": CHEAPER_SCHEMA,
        "repeats": REPEATS_SCHEMA,
        "max_tokens": MAX_TOKENS_SCHEMA,
        "errors": ERRORS_SCHEMA,
    },
    required=("object", "from", "to", "cheaper_models", "repeats", "max_tokens", "errors"),
)
_NOT_FOUND: Final = {"404": "A workspace the caller cannot see."}


async def insight_scope(request: AnyRequest, asked: FindingsRequest) -> InsightScope:
    """The scope the caller asked for, within what it may see."""
    if asked.workspace is None:
        scope = workspace_scope(request)
    else:
        scope = (await visible_workspace(request, asked.workspace)).workspace_id
    return InsightScope(gateway_of(request).engine, scope, asked.start, asked.end)


def prices_of(request: AnyRequest) -> PriceTable:
    """The running config's prices (the shipped table with its overrides)."""
    config = gateway_of(request).config
    return PriceTable.shipped() if config is None else config.price_table()


def _asked(request: AnyRequest) -> FindingsRequest:
    return parse_findings_request(request.query_params.multi_items(), now=datetime.now(UTC))


def _framed(scope: InsightScope, name: str, answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": f"insights.{name}",
        "from": iso_time(scope.start),
        "to": iso_time(scope.end),
        **answer,
    }


def _one(schema: JsonSchema, what: str) -> Any:
    framed = {
        **schema,
        "properties": {
            "object": {"type": "string"},
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            **schema.get("properties", {}),
        },
    }
    return described(query=FINDINGS_QUERY, success=({JSON: framed}, what), more_errors=_NOT_FOUND)


class FindingsController(Controller):
    path = "/insights"

    @get(
        "/",
        operation_class=described(
            query=FINDINGS_QUERY,
            success=({JSON: INSIGHTS_SCHEMA}, "Every insight of the range."),
            more_errors=_NOT_FOUND,
        ),
    )
    async def insights(self, request: AnyRequest) -> dict[str, Any]:
        """Every insight over the range: cheaper models of equal quality, uncached repeats,
        max_tokens far above the answers, errors grouped by fingerprint."""
        asked = _asked(request)
        scope = await insight_scope(request, asked)
        found = await read_insights(
            scope,
            prices_of(request),
            margin=asked.margin,
            min_samples=asked.min_samples,
            summarise_errors=SUMMARIES.summariser(scope.workspace_id),
        )
        return insights_answer(found, await _visible_keys(request, scope.workspace_id))

    @get(
        "/cheaper_models",
        operation_class=_one(CHEAPER_SCHEMA, "Cheaper models of equal quality, per workload."),
    )
    async def cheaper_models(self, request: AnyRequest) -> dict[str, Any]:
        """Per workload (requested model and evaluator), each served model's scores and cost per
        request, and whether a cheaper one is not worse beyond the margin."""
        asked = _asked(request)
        scope = await insight_scope(request, asked)
        found = await find_cheaper_models(
            scope,
            prices_of(request),
            margin=asked.margin,
            min_samples=asked.min_samples,
        )
        return _framed(scope, "cheaper_models", cheaper_models_answer(found))

    @get("/repeats", operation_class=_one(REPEATS_SCHEMA, "Identical requests the cache missed."))
    async def repeats(self, request: AnyRequest) -> dict[str, Any]:
        """Identical requests (model and stored prompt) paid for more than once, and what
        caching them would have saved."""
        scope = await insight_scope(request, _asked(request))
        return _framed(scope, "repeats", repeats_answer(await find_repeats(scope)))

    @get(
        "/max_tokens",
        operation_class=_one(MAX_TOKENS_SCHEMA, "max_tokens against completion tokens."),
    )
    async def max_tokens(self, request: AnyRequest) -> dict[str, Any]:
        """Per model and key, the usual max_tokens against the answers' length; flagged where
        it is far above the 99th percentile."""
        scope = await insight_scope(request, _asked(request))
        keys = await _visible_keys(request, scope.workspace_id)
        return _framed(scope, "max_tokens", max_tokens_answer(await find_max_tokens(scope), keys))

    @get("/errors", operation_class=_one(ERRORS_SCHEMA, "Errors grouped by fingerprint."))
    async def errors(self, request: AnyRequest) -> dict[str, Any]:
        """Failed provider calls grouped by provider, error type and message fingerprint, with
        counts, first and last seen and example traces."""
        scope = await insight_scope(request, _asked(request))
        return _framed(
            scope,
            "errors",
            errors_answer(
                await find_errors(scope, summarise=SUMMARIES.summariser(scope.workspace_id))
            ),
        )
