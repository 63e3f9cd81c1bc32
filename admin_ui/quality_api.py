"""`/admin/api/quality/...`: the Quality dashboard's numbers as JSON, read through the same
functions (`telemetry.evaluation.scores`).

    GET /admin/api/quality/summary                 evaluations by status and judge spend
    GET /admin/api/quality/scores                  mean score per step, by model or evaluator
    GET /admin/api/quality/models                  models ranked by score, with cost per point
    GET /admin/api/quality/compare                 an A/B comparison (compare, a, b)
    GET /admin/api/quality/traces/{trace_id}       the evaluations of one trace

The range is the console's (`last`, or `from` and `to`; `step` for scores), the filters the
page's (`admin_ui.quality_params`). Scoping is the analytics API's: a workspace's admin key or
user reads that workspace only, and naming a workspace the caller cannot see is a 404. Money is
a decimal string, times ISO 8601 UTC.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from litestar import Controller, Request, get

from admin_ui.analytics_range import InvalidRange, PageRange, read_page_range
from admin_ui.auth import workspace_scope
from admin_ui.openapi import Query, described
from admin_ui.quality_params import (
    FILTER_QUERY,
    RANGE_QUERY,
    QualityFilters,
    read_quality_filters,
)
from admin_ui.state import gateway_of
from admin_ui.traces import visible_trace
from admin_ui.workspace_operations import visible_workspace
from gateway.errors import GatewayError
from telemetry.evaluation import scores
from telemetry.evaluation.scores import InvalidScoreQuery

AnyRequest = Request[Any, Any, Any]

_TEXT = {"type": "string", "maxLength": 256}
SCORES_QUERY = (
    *RANGE_QUERY,
    *FILTER_QUERY,
    Query("step", "The step: 1m, 5m, 1h, 1d ... (default: chosen from the range).", _TEXT),
    Query("by", "model (default) or evaluator: one series per each.", _TEXT),
    Query("model", "Only this judged model's scores.", _TEXT),
)
MODELS_QUERY = (
    *RANGE_QUERY,
    *FILTER_QUERY,
    Query("rank", "score (default: best first) or cost_per_point (cheapest first).", _TEXT),
)
COMPARE_QUERY = (
    *RANGE_QUERY,
    *FILTER_QUERY,
    Query("compare", "model, tag or rule: what the two sides are.", _TEXT),
    Query("a", "Side A: a model, a tag, or a rule's id.", _TEXT),
    Query(
        "b", "Side B: a model or a tag; for a rule, empty means the traces it did not match.", _TEXT
    ),
)


def _bad(parameter: str, message: str) -> GatewayError:
    return GatewayError(400, f"{parameter}: {message}", code="invalid_parameter", param=parameter)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _Asked:
    def __init__(self, scope: str | None, page_range: PageRange, filters: QualityFilters) -> None:
        self.scope = scope
        self.range = page_range
        self.filters = filters

    @property
    def window(self) -> dict[str, Any]:
        return {"scope": self.scope, "since": self.range.start, "until": self.range.end}

    def head(self, kind: str) -> dict[str, Any]:
        return {
            "object": kind,
            "from": self.range.start.isoformat(),
            "to": self.range.end.isoformat(),
            "workspace_id": self.scope,
        }


async def _asked(request: AnyRequest) -> _Asked:
    parameters = [(n, str(v)) for n, v in request.query_params.multi_items()]
    try:
        page_range = read_page_range(parameters)
        filters = read_quality_filters(parameters)
    except (InvalidRange, InvalidScoreQuery) as error:
        raise _bad(error.parameter, str(error)) from error
    scope = workspace_scope(request)
    asked = request.query_params.get("workspace") or None
    if asked is not None:
        chosen = await visible_workspace(request, asked)
        if scope is None:
            scope = chosen.workspace_id
    return _Asked(scope, page_range, filters)


async def _answer(work: Any) -> Any:
    try:
        return await work
    except InvalidScoreQuery as error:
        raise _bad(error.parameter, str(error)) from error


class QualityController(Controller):
    path = "/quality"

    @get("/summary", operation_class=described(query=(*RANGE_QUERY, *FILTER_QUERY[:1])))
    async def summary(self, request: AnyRequest) -> dict[str, Any]:
        """Evaluations by evaluator and status (ok, failed, no_content, over_cap), with what
        the judges' own calls cost."""
        asked = await _asked(request)
        found = await _answer(
            scores.status_summary(
                gateway_of(request).engine, **asked.window, evaluator=asked.filters.evaluator
            )
        )
        return {
            **asked.head("quality.summary"),
            "evaluators": [
                {
                    "evaluator": s.evaluator,
                    "counts": s.counts,
                    "total": s.total,
                    "judge_spend_usd": str(s.spend_usd),
                    "judge_prompt_tokens": s.prompt_tokens,
                    "judge_completion_tokens": s.completion_tokens,
                }
                for s in found
            ],
        }

    @get("/scores", operation_class=described(query=SCORES_QUERY))
    async def scores_over_time(self, request: AnyRequest) -> dict[str, Any]:
        """The mean score (0-100) per step, one series per model or evaluator (the busiest 8);
        null where nothing was scored."""
        asked = await _asked(request)
        f = asked.filters
        starts, series = await _answer(
            scores.score_series(
                gateway_of(request).engine,
                **asked.window,
                step=asked.range.step,
                by=f.by,
                evaluator=f.evaluator,
                model=f.model,
                criterion=f.criterion,
            )
        )
        return {
            **asked.head("quality.scores"),
            "step": asked.range.step,
            "by": f.by,
            "criterion": f.criterion,
            "series": [
                {
                    "name": line.name,
                    "total": line.total,
                    "points": [
                        [start.isoformat(), mean, count]
                        for start, mean, count in zip(starts, line.means, line.counts, strict=True)
                    ],
                }
                for line in series
            ],
        }

    @get("/models", operation_class=described(query=MODELS_QUERY))
    async def models(self, request: AnyRequest) -> dict[str, Any]:
        """Judged models by mean score, with the mean cost of a judged request and the cost of
        1,000 such requests per point of mean score (`cost_per_point_usd`)."""
        asked = await _asked(request)
        ranked = await _answer(
            scores.model_ranking(
                gateway_of(request).engine,
                **asked.window,
                evaluator=asked.filters.evaluator,
                criterion=asked.filters.criterion,
                order=asked.filters.rank,
            )
        )
        return {
            **asked.head("quality.models"),
            "rank": asked.filters.rank,
            "models": [_plain(asdict(rank)) for rank in ranked],
        }

    @get("/compare", operation_class=described(query=COMPARE_QUERY))
    async def compare(self, request: AnyRequest) -> dict[str, Any]:
        """Side A against side B: counts, means, A minus B with a 95 % confidence interval
        (Welch), and a verdict in words; no difference below 10 scores a side."""
        asked = await _asked(request)
        sides = asked.filters.sides()
        if sides is None:
            raise _bad("a", "name side A (and B) to compare, with compare=model, tag or rule")
        result = await _answer(
            scores.compare(
                gateway_of(request).engine,
                **asked.window,
                a=sides[0],
                b=sides[1],
                evaluator=asked.filters.evaluator,
                criterion=asked.filters.criterion,
            )
        )
        return {**asked.head("quality.comparison"), **_plain(asdict(result))}

    @get("/traces/{trace_id:str}", operation_class=described())
    async def trace(self, request: AnyRequest, trace_id: str) -> dict[str, Any]:
        """Every evaluation of the trace's interactions (404 for a trace the caller cannot
        see)."""
        detail = await visible_trace(request, trace_id)
        rows = await scores.trace_evaluations(
            gateway_of(request).engine, trace_id, scope=detail.trace["workspace_id"]
        )
        return {
            "object": "list",
            "trace_id": trace_id,
            "data": [_plain(asdict(row)) for row in rows],
        }
