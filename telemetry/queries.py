"""Read what the recorder wrote: one trace with its spans, decisions and AI interactions.

Shared by the admin API and the console. Values keep their Python types (UTC-aware datetimes,
Decimal money); rendering them is the caller's job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.db import as_utc
from telemetry.schema import (
    ai_interactions,
    api_keys,
    decisions,
    guardrail_violations,
    spans,
    traces,
)

Row = dict[str, Any]


class TraceDetail(msgspec.Struct, frozen=True, kw_only=True):
    trace: Row
    spans: list[Row]  # by start time
    decisions: list[Row]  # by sequence
    interactions: list[Row]  # by attempt
    violations: list[Row] = msgspec.field(default_factory=list)  # guardrail findings, in order


def _plain(row: sa.Row[Any]) -> Row:
    return {
        key: as_utc(value) if isinstance(value, datetime) else value
        for key, value in row._mapping.items()
    }


async def _rows(conn: AsyncConnection, query: sa.Select[Any]) -> list[Row]:
    return [_plain(row) for row in (await conn.execute(query)).all()]


async def trace_detail(
    engine: AsyncEngine, trace_id: str, *, workspace_id: str | None = None
) -> TraceDetail | None:
    """The trace and everything recorded under it, or None when there is no such trace.

    With `workspace_id`, a trace of another workspace is treated as unknown. Rows under the
    trace are read by trace id and the trace's workspace together, so a row of another
    workspace that carries the same trace id is never shown.
    """
    trace_query = sa.select(traces).where(traces.c.trace_id == trace_id)
    if workspace_id is not None:
        trace_query = trace_query.where(traces.c.workspace_id == workspace_id)
    async with engine.connect() as conn:
        found = (await conn.execute(trace_query)).first()
        if found is None:
            return None
        workspace = found.workspace_id
        return TraceDetail(
            trace=_plain(found),
            spans=await _rows(
                conn,
                sa.select(spans)
                .where(spans.c.trace_id == trace_id, spans.c.workspace_id == workspace)
                .order_by(spans.c.started_at, spans.c.ended_at.desc(), spans.c.span_id),
            ),
            decisions=await _rows(
                conn,
                sa.select(decisions)
                .where(decisions.c.trace_id == trace_id, decisions.c.workspace_id == workspace)
                .order_by(decisions.c.sequence, decisions.c.decision_id),
            ),
            interactions=await _rows(
                conn,
                sa.select(ai_interactions)
                .where(
                    ai_interactions.c.trace_id == trace_id,
                    ai_interactions.c.workspace_id == workspace,
                )
                .order_by(
                    ai_interactions.c.attempt,
                    ai_interactions.c.started_at,
                    ai_interactions.c.interaction_id,
                ),
            ),
            violations=await _rows(
                conn,
                sa.select(guardrail_violations)
                .where(
                    guardrail_violations.c.trace_id == trace_id,
                    guardrail_violations.c.workspace_id == workspace,
                )
                .order_by(guardrail_violations.c.created_at, guardrail_violations.c.violation_id),
            ),
        )


# --- recorded requests for rule replay -----------------------------------------------------------

REPLAY_DEFAULT_REQUESTS = 1_000
REPLAY_MAX_REQUESTS = 10_000
REPLAY_ROUTES = ("/v1/chat/completions", "/v1/embeddings")
_DECISION_CHUNK = 1_000


class RequestHistory(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[Row]
    """Newest first."""
    truncated: bool
    """More requests matched than the limit let through."""


async def replay_history(
    engine: AsyncEngine,
    *,
    limit: int = REPLAY_DEFAULT_REQUESTS,
    since: datetime | None = None,
    until: datetime | None = None,
    workspace_id: str | None = None,
    with_prompts: bool = False,
) -> RequestHistory:
    """The newest `limit` chat and embeddings requests (within [since, until] when given), each
    with what rule replay needs. Requests refused before they named a model (no key, a body
    that is not valid) never reached the rules and are left out.

    A row holds the trace's columns (`trace_id`, `workspace_id`, `api_key_id`, `end_user`,
    `route`, `started_at`, `status`, `http_status`, `requested_model`, `provider`,
    `provider_model`, `tags`, `metadata`, `features`); `key_name` from `api_keys`; from the final
    successful AI interaction (None without one): `served_model` (the public model it was served
    as), `served_provider`, `served_provider_model`, `prompt_tokens`, `completion_tokens`,
    `cached_tokens`, `cost_usd` and, with `with_prompts`, `prompt` (None when content was not
    stored); from the recorded rule decisions: `rules_matched` (rule ids; None when no rule
    evaluation was recorded), `rules_route` (where a rule routed it) and `rules_denied`.
    """
    if not 1 <= limit <= REPLAY_MAX_REQUESTS:
        raise ValueError(f"limit must be between 1 and {REPLAY_MAX_REQUESTS}")
    chosen = sa.select(
        traces.c.trace_id,
        traces.c.workspace_id,
        traces.c.api_key_id,
        traces.c.end_user,
        traces.c.route,
        traces.c.started_at,
        traces.c.status,
        traces.c.http_status,
        traces.c.requested_model,
        traces.c.provider,
        traces.c.provider_model,
        traces.c.tags,
        traces.c.metadata,
        traces.c.features,
    ).where(traces.c.route.in_(REPLAY_ROUTES), traces.c.requested_model.is_not(None))
    if since is not None:
        chosen = chosen.where(traces.c.started_at >= _utc_bound(since))
    if until is not None:
        chosen = chosen.where(traces.c.started_at <= _utc_bound(until))
    if workspace_id is not None:
        chosen = chosen.where(traces.c.workspace_id == workspace_id)
    picked = (
        chosen.order_by(traces.c.started_at.desc(), traces.c.trace_id.desc())
        .limit(limit + 1)
        .cte("picked")
    )
    final = (
        sa.select(
            ai_interactions.c.trace_id,
            ai_interactions.c.workspace_id,
            ai_interactions.c.requested_model.label("served_model"),
            ai_interactions.c.provider.label("served_provider"),
            ai_interactions.c.provider_model.label("served_provider_model"),
            ai_interactions.c.prompt_tokens,
            ai_interactions.c.completion_tokens,
            ai_interactions.c.cached_tokens,
            ai_interactions.c.cost_usd,
            *([ai_interactions.c.prompt] if with_prompts else []),
            sa.func.row_number()
            .over(
                partition_by=(ai_interactions.c.trace_id, ai_interactions.c.workspace_id),
                order_by=(
                    ai_interactions.c.attempt.desc(),
                    ai_interactions.c.started_at.desc(),
                    ai_interactions.c.interaction_id.desc(),
                ),
            )
            .label("position"),
        )
        .where(
            ai_interactions.c.status == "ok",
            ai_interactions.c.trace_id.in_(sa.select(picked.c.trace_id)),
        )
        .subquery("final")
    )
    query = (
        sa.select(
            picked,
            api_keys.c.name.label("key_name"),
            *(
                column
                for column in final.c
                if column.key not in ("trace_id", "workspace_id", "position")
            ),
        )
        .select_from(
            picked.outerjoin(
                final,
                sa.and_(
                    final.c.trace_id == picked.c.trace_id,
                    final.c.workspace_id == picked.c.workspace_id,
                    final.c.position == 1,
                ),
            ).outerjoin(api_keys, api_keys.c.key_id == picked.c.api_key_id)
        )
        .order_by(picked.c.started_at.desc(), picked.c.trace_id.desc())
    )
    async with engine.connect() as conn:
        rows = await _rows(conn, query)
        truncated = len(rows) > limit
        rows = rows[:limit]
        evaluations = await _rule_evaluations(
            conn, [(row["trace_id"], row["workspace_id"]) for row in rows]
        )
    for row in rows:
        row.setdefault("prompt", None)
        found = evaluations.get((row["trace_id"], row["workspace_id"]))
        row["rules_matched"] = found[0] if found is not None else None
        summary = found[1] if found is not None else {}
        row["rules_route"] = summary.get("route")
        row["rules_denied"] = "deny" in summary
    return RequestHistory(rows=rows, truncated=truncated)


def _utc_bound(value: datetime) -> datetime:
    """A naive time is UTC; SQLite compares stored UTC text, so the zone must be UTC too."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _rule_evaluations(
    conn: AsyncConnection, traces_read: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[list[str], dict[str, Any]]]:
    """Per (trace id, workspace): the ids of the rules recorded as matching, and the summary
    decision's output. A decision counts only under its own workspace's trace."""
    wanted = set(traces_read)
    found: dict[tuple[str, str], tuple[list[str], dict[str, Any]]] = {}
    for start in range(0, len(traces_read), _DECISION_CHUNK):
        chunk = traces_read[start : start + _DECISION_CHUNK]
        result = await conn.execute(
            sa.select(
                decisions.c.trace_id,
                decisions.c.workspace_id,
                decisions.c.rule_id,
                decisions.c.output,
            )
            .where(
                decisions.c.type == "rule_evaluation",
                decisions.c.trace_id.in_([trace_id for trace_id, _ in chunk]),
                decisions.c.workspace_id.in_(sorted({workspace for _, workspace in chunk})),
            )
            .order_by(decisions.c.trace_id, decisions.c.sequence)
        )
        for trace_id, workspace, rule_id, output in result.all():
            if (trace_id, workspace) not in wanted:
                continue
            matched, summary = found.setdefault((trace_id, workspace), ([], {}))
            if rule_id is not None:
                matched.append(rule_id)
            elif isinstance(output, dict):
                summary.update(output)
    return found
