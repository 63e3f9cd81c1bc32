"""Lists of what the recorder wrote: requests (traces), provider attempts (AI interactions),
decisions and guardrail findings, filtered, sorted and paged. The admin API and the console's
pages both read through these functions, so the two never disagree.

Every function takes `scope`, the one workspace the reader may see (None: every workspace, for
the operator). It is keyword-only without a default, so no caller can leave it out; a filter
naming another workspace then finds nothing.

Pages are cut by keyset, never by offset: newest first (by time, then id, so rows with the same
time keep one order across pages), or for traces and interactions by duration or by cost, most
first (then by id). Sorting by cost lists the rows whose cost is known. A page's `next_cursor`
continues after its last row; it is bound to the list, sort and filters it came from.

Rows keep Python types (UTC-aware datetimes, Decimal money); rendering them is the caller's job.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Generic, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from telemetry.db import as_utc
from telemetry.evaluation.score_filters import evaluation_conditions
from telemetry.records import OWN_CALL_SOURCES
from telemetry.schema import ai_interactions, api_keys, decisions, guardrail_violations, traces
from telemetry.search_cursor import Cursor, InvalidCursor, digest_of
from telemetry.search_json import (
    array_holds_all,
    array_holds_any,
    object_has_key,
    object_value_is,
)
from telemetry.summary import TRACE_STATUSES

__all__ = [
    "DECISION_SORTS",
    "INTERACTION_SORTS",
    "INTERACTION_STATUSES",
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "TRACE_SORTS",
    "TRACE_STATUSES",
    "VIOLATION_SORTS",
    "CommonFilter",
    "Cursor",
    "DecisionFilter",
    "DecisionRow",
    "InteractionFilter",
    "InteractionRow",
    "InvalidCursor",
    "Page",
    "TraceFilter",
    "TraceRow",
    "ViolationFilter",
    "ViolationRow",
    "decision_conditions",
    "interaction_conditions",
    "search_decisions",
    "search_interactions",
    "search_traces",
    "search_violations",
    "trace_conditions",
    "traces_statement",
    "violation_conditions",
]

PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 200
TRACE_SORTS: Final = ("newest", "duration", "cost")
INTERACTION_SORTS: Final = ("newest", "duration", "cost")
DECISION_SORTS: Final = ("newest",)
VIOLATION_SORTS: Final = ("newest",)
INTERACTION_STATUSES: Final = ("ok", "error", "cancelled")
OPERATION_ROUTES: Final = {
    "chat": "/v1/chat/completions",
    "embeddings": "/v1/embeddings",
    "messages": "/v1/messages",
    "completions": "/v1/completions",
    "responses": "/v1/responses",
}
"""The API a request called, as interactions name it, and the route its trace records."""
TRACE_ID_LENGTH: Final = 32

Condition = ColumnElement[bool]


# --- filters ------------------------------------------------------------------------------------
# Each tuple means "any of these"; an empty tuple or None leaves the field out. Times are UTC.


@dataclass(frozen=True, slots=True, kw_only=True)
class CommonFilter:
    since: datetime | None = None
    """From this time on (inclusive)."""
    until: datetime | None = None
    """Before this time (exclusive)."""
    as_of: datetime | None = None
    """When a relative range (`last=15m`) was measured from; every page of a listing keeps it."""
    workspace_ids: tuple[str, ...] = ()
    api_key_ids: tuple[str, ...] = ()
    trace_id_prefix: str | None = None
    """Lowercase hex: the traces whose id starts with it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceFilter(CommonFilter):
    end_users: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    """The model the client asked for."""
    served_models: tuple[str, ...] = ()
    """The provider's model that answered."""
    providers: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    """Of `TRACE_STATUSES`: ok, error, cancelled, denied."""
    error_types: tuple[str, ...] = ()
    http_statuses: tuple[int, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    """(key, value) pairs, all of which must match a top-level metadata entry; the value
    matches a string, or the number, boolean or null it spells."""
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    min_cost_usd: Decimal | None = None
    max_cost_usd: Decimal | None = None
    cache_hit: bool | None = None
    guardrail_triggered: bool | None = None
    guardrails: tuple[str, ...] = ()
    """Requests on which any of these guardrails found something."""
    guardrail_actions: tuple[str, ...] = ()
    """The strongest action taken: block, mask or log."""
    rules: tuple[str, ...] = ()
    """Requests any of these rules (by id) matched."""
    request_ids: tuple[str, ...] = ()
    stream: bool | None = None
    operations: tuple[str, ...] = ()
    """The API called (of `OPERATION_ROUTES`), read from the trace's route."""
    sources: tuple[str, ...] = ()
    """proxy, otlp, evaluation; left empty, every source but `evaluation` (a judge's calls)."""
    evaluated: bool | None = None
    """An evaluator judged the request (whatever the evaluation's status), or none did."""
    evaluators: tuple[str, ...] = ()
    min_score: float | None = None
    max_score: float | None = None
    eval_flags: tuple[str, ...] = ()
    """The evaluation filters hold of one evaluation (telemetry.evaluation.score_filters)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InteractionFilter(CommonFilter):
    end_users: tuple[str, ...] = ()
    """These and the tag and metadata filters read the attempt's trace."""
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    models: tuple[str, ...] = ()
    served_models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    """Of `INTERACTION_STATUSES`."""
    error_types: tuple[str, ...] = ()
    http_statuses: tuple[int, ...] = ()
    min_duration_ms: float | None = None
    """Bounds on the attempt's latency."""
    max_duration_ms: float | None = None
    min_cost_usd: Decimal | None = None
    max_cost_usd: Decimal | None = None
    min_ttft_ms: float | None = None
    max_ttft_ms: float | None = None
    cache_hit: bool | None = None
    stream: bool | None = None
    operations: tuple[str, ...] = ()
    finish_reasons: tuple[str, ...] = ()
    attempts: tuple[int, ...] = ()
    usage_estimated: bool | None = None
    evaluated: bool | None = None
    """An evaluator judged this attempt (whatever the evaluation's status), or none did."""
    evaluators: tuple[str, ...] = ()
    min_score: float | None = None
    max_score: float | None = None
    eval_flags: tuple[str, ...] = ()
    """As the traces' evaluation filters, on the evaluations of this interaction."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionFilter(CommonFilter):
    """`api_key_ids` reads the decision's trace."""

    types: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    components: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ViolationFilter(CommonFilter):
    guardrails: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    entity_types: tuple[str, ...] = ()
    """Findings that counted any of these entity types (`EMAIL_ADDRESS`...)."""
    actions: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()


# --- rows ---------------------------------------------------------------------------------------


class TraceRow(msgspec.Struct, frozen=True, kw_only=True):
    trace_id: str
    request_id: str
    started_at: datetime
    workspace_id: str
    api_key_id: str | None
    key_name: str | None
    end_user: str | None
    route: str
    requested_model: str | None
    provider: str | None
    provider_model: str | None
    """The served model."""
    deployment: str | None
    status: str
    http_status: int
    error_type: str | None
    stream: bool
    duration_ms: float
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost_usd: Decimal | None
    cache_hit: bool
    rules_matched: list[str]
    guardrail_action: str | None
    """The guardrail verdict: the strongest action taken (block > mask > log), None if none."""
    guardrails_triggered: list[str]
    tags: list[str]


class InteractionRow(msgspec.Struct, frozen=True, kw_only=True):
    interaction_id: str
    trace_id: str
    workspace_id: str
    api_key_id: str | None
    key_name: str | None
    started_at: datetime
    provider: str
    requested_model: str
    provider_model: str
    deployment: str
    attempt: int
    operation: str
    stream: bool
    status: str
    http_status: int | None
    error_type: str | None
    finish_reason: str | None
    latency_ms: float
    ttft_ms: float | None
    tokens_per_second: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    total_tokens: int | None
    usage_estimated: bool
    cost_usd: Decimal | None
    cost_saved_usd: Decimal | None
    cache_hit: bool


class DecisionRow(msgspec.Struct, frozen=True, kw_only=True):
    decision_id: str
    trace_id: str
    workspace_id: str
    created_at: datetime
    sequence: int
    type: str
    component: str
    outcome: str | None
    rule_id: str | None
    rule_name: str | None
    reasoning: str
    evaluation_us: float
    input: dict[str, Any]
    output: dict[str, Any]


class ViolationRow(msgspec.Struct, frozen=True, kw_only=True):
    violation_id: str
    trace_id: str
    workspace_id: str
    api_key_id: str | None
    key_name: str | None
    created_at: datetime
    guardrail: str
    kind: str
    direction: str
    action: str
    entities: dict[str, int]
    score: float
    latency_us: float


R = TypeVar("R", TraceRow, InteractionRow, DecisionRow, ViolationRow)


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    rows: list[R]
    next_cursor: str | None
    """None on the last page."""


# --- what each list reads -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Listing:
    name: str
    table: sa.Table
    id: sa.Column[Any]
    time: sa.Column[Any]
    sorts: dict[str, sa.Column[Any]] = field(default_factory=dict)
    keyed: bool = True
    """Rows carry an api_key_id: the key's name is joined in and the key filter reads it."""


_TRACES = _Listing(
    "traces",
    traces,
    traces.c.trace_id,
    traces.c.started_at,
    {"newest": traces.c.started_at, "duration": traces.c.duration_ms, "cost": traces.c.cost_usd},
)
_INTERACTIONS = _Listing(
    "interactions",
    ai_interactions,
    ai_interactions.c.interaction_id,
    ai_interactions.c.started_at,
    {
        "newest": ai_interactions.c.started_at,
        "duration": ai_interactions.c.latency_ms,
        "cost": ai_interactions.c.cost_usd,
    },
)
_DECISIONS = _Listing(
    "decisions",
    decisions,
    decisions.c.decision_id,
    decisions.c.created_at,
    {"newest": decisions.c.created_at},
    keyed=False,
)
_VIOLATIONS = _Listing(
    "violations",
    guardrail_violations,
    guardrail_violations.c.violation_id,
    guardrail_violations.c.created_at,
    {"newest": guardrail_violations.c.created_at},
)

_TRACE_COLUMNS = [c for c in traces.c if c.key in TraceRow.__struct_fields__]
_INTERACTION_COLUMNS = [c for c in ai_interactions.c if c.key in InteractionRow.__struct_fields__]
_DECISION_COLUMNS = [c for c in decisions.c if c.key in DecisionRow.__struct_fields__]
_VIOLATION_COLUMNS = [c for c in guardrail_violations.c if c.key in ViolationRow.__struct_fields__]


# --- conditions ---------------------------------------------------------------------------------
# `*_conditions` are each list's WHERE clause; the counts beside the lists (telemetry.list_counts,
# telemetry.decision_paths) read through them too, so a count and its list agree.


def _utc(value: datetime) -> datetime:
    """A naive time is UTC; SQLite compares stored UTC text, so the zone must be UTC too."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _any_of(column: sa.ColumnElement[Any], values: Sequence[Any]) -> list[Condition]:
    if not values:
        return []
    if len(values) == 1:
        return [column == values[0]]
    return [column.in_(values)]


def _between(column: sa.ColumnElement[Any], low: Any | None, high: Any | None) -> list[Condition]:
    found = []
    if low is not None:
        found.append(column >= low)
    if high is not None:
        found.append(column <= high)
    return found


def _flag(column: sa.ColumnElement[Any], wanted: bool | None) -> list[Condition]:
    if wanted is None:
        return []
    return [column.is_(sa.true()) if wanted else column.is_(sa.false())]


def _trace_id_prefix(column: sa.ColumnElement[Any], prefix: str | None) -> list[Condition]:
    """Trace ids are 32 lowercase hex digits: those starting with `prefix` lie between the
    prefix padded with 0s and with fs, a range the primary key's index serves."""
    if prefix is None:
        return []
    if len(prefix) >= TRACE_ID_LENGTH:
        return [column == prefix]
    return [column.between(prefix.ljust(TRACE_ID_LENGTH, "0"), prefix.ljust(TRACE_ID_LENGTH, "f"))]


MINTED_SINCE = datetime(2020, 1, 1, tzinfo=UTC)
ID_TIME_SLACK = timedelta(hours=1)
"""How far a row's time may lie from the instant in its trace id: the id is minted when the
request arrives; children are written within the request's life."""


def _id_time_window(listing: _Listing, prefix: str | None) -> list[Condition]:
    """The time a trace-id prefix names, as a bound on the listing's time column.

    Ids the gateway mints begin with 48 bits of Unix milliseconds, so a prefix of 8 or more
    digits names a window of a minute or less. Without the bound, a prefix naming an old
    trace makes the newest-first scan walk the time index back to it. A prefix whose time is
    implausible (an id chosen by a client before every request had its own) gets no bound.
    """
    if prefix is None or len(prefix) < 8:
        return []
    earliest = int(prefix[:12].ljust(12, "0"), 16) / 1000
    latest = int(prefix[:12].ljust(12, "f"), 16) / 1000
    if earliest < MINTED_SINCE.timestamp() or latest > time.time() + 86_400:
        return []
    start = datetime.fromtimestamp(earliest, UTC)
    end = datetime.fromtimestamp(latest, UTC)
    return [listing.time.between(start - ID_TIME_SLACK, end + ID_TIME_SLACK)]


def _tags(
    column: sa.ColumnElement[Any], any_of: Sequence[str], all_of: Sequence[str], dialect: str
) -> list[Condition]:
    found = []
    if any_of:
        found.append(array_holds_any(column, any_of, dialect))
    if all_of:
        found.append(array_holds_all(column, all_of, dialect))
    return found


def _metadata(
    column: sa.ColumnElement[Any], pairs: Sequence[tuple[str, str]], dialect: str
) -> list[Condition]:
    return [object_value_is(column, key, value, dialect) for key, value in pairs]


def _through_trace(child: sa.Table, conditions: list[Condition]) -> list[Condition]:
    """`conditions` on the trace a child row belongs to (same id, same workspace)."""
    if not conditions:
        return []
    return [
        sa.exists().where(
            traces.c.trace_id == child.c.trace_id,
            traces.c.workspace_id == child.c.workspace_id,
            *conditions,
        )
    ]


def _evaluated(
    subject: sa.Column[Any], f: TraceFilter | InteractionFilter, dialect: str
) -> list[Condition]:
    return evaluation_conditions(
        subject,
        evaluated=f.evaluated,
        evaluators=f.evaluators,
        min_score=f.min_score,
        max_score=f.max_score,
        flags=f.eval_flags,
        dialect=dialect,
    )


def _common(listing: _Listing, f: CommonFilter, scope: str | None) -> list[Condition]:
    table = listing.table
    found: list[Condition] = []
    if scope is not None:
        found.append(table.c.workspace_id == scope)
    found += _any_of(table.c.workspace_id, f.workspace_ids)
    if f.since is not None:
        found.append(listing.time >= _utc(f.since))
    if f.until is not None:
        found.append(listing.time < _utc(f.until))
    if listing.keyed:
        found += _any_of(table.c.api_key_id, f.api_key_ids)
    else:
        found += _through_trace(table, _any_of(traces.c.api_key_id, f.api_key_ids))
    found += _trace_id_prefix(table.c.trace_id, f.trace_id_prefix)
    found += _id_time_window(listing, f.trace_id_prefix)
    return found


def trace_conditions(f: TraceFilter, scope: str | None, dialect: str) -> list[Condition]:
    t = traces.c
    found = _common(_TRACES, f, scope)
    found += _any_of(t.end_user, f.end_users)
    found += _any_of(t.requested_model, f.models)
    found += _any_of(t.provider_model, f.served_models)
    found += _any_of(t.provider, f.providers)
    found += _any_of(t.deployment, f.deployments)
    found += _any_of(t.status, f.statuses)
    if f.statuses and "ok" not in f.statuses:
        found.append(t.status != "ok")  # lets SQLite use the index of requests not ok too
    found += _any_of(t.error_type, f.error_types)
    found += _any_of(t.http_status, f.http_statuses)
    found += _any_of(t.request_id, f.request_ids)
    found += _any_of(t.guardrail_action, f.guardrail_actions)
    found += _tags(t.tags, f.tags_any, f.tags_all, dialect)
    found += _metadata(t.metadata, f.metadata, dialect)
    found += _between(t.duration_ms, f.min_duration_ms, f.max_duration_ms)
    found += _between(t.cost_usd, f.min_cost_usd, f.max_cost_usd)
    found += _flag(t.cache_hit, f.cache_hit)
    found += _flag(t.stream, f.stream)
    found += _any_of(t.route, tuple(OPERATION_ROUTES[o] for o in f.operations))
    if f.sources:
        found += _any_of(t.source, f.sources)
    else:
        found.append(t.source.not_in(OWN_CALL_SOURCES))
    if f.guardrail_triggered is not None:
        found.append(
            t.guardrail_action.is_not(None)
            if f.guardrail_triggered
            else t.guardrail_action.is_(None)
        )
    if f.guardrails:
        found.append(array_holds_any(t.guardrails_triggered, f.guardrails, dialect))
    if f.rules:
        found.append(array_holds_any(t.rules_matched, f.rules, dialect))
    found += _evaluated(t.trace_id, f, dialect)
    return found


def interaction_conditions(
    f: InteractionFilter, scope: str | None, dialect: str
) -> list[Condition]:
    i = ai_interactions.c
    found = _common(_INTERACTIONS, f, scope)
    found += _through_trace(
        ai_interactions,
        [
            *_any_of(traces.c.end_user, f.end_users),
            *_tags(traces.c.tags, f.tags_any, f.tags_all, dialect),
            *_metadata(traces.c.metadata, f.metadata, dialect),
        ],
    )
    found += _any_of(i.requested_model, f.models)
    found += _any_of(i.provider_model, f.served_models)
    found += _any_of(i.provider, f.providers)
    found += _any_of(i.deployment, f.deployments)
    found += _any_of(i.status, f.statuses)
    found += _any_of(i.error_type, f.error_types)
    found += _any_of(i.http_status, f.http_statuses)
    found += _any_of(i.operation, f.operations)
    found += _any_of(i.finish_reason, f.finish_reasons)
    found += _any_of(i.attempt, f.attempts)
    found += _between(i.latency_ms, f.min_duration_ms, f.max_duration_ms)
    found += _between(i.cost_usd, f.min_cost_usd, f.max_cost_usd)
    found += _between(i.ttft_ms, f.min_ttft_ms, f.max_ttft_ms)
    found += _flag(i.cache_hit, f.cache_hit)
    found += _flag(i.stream, f.stream)
    found += _flag(i.usage_estimated, f.usage_estimated)
    found += _evaluated(i.interaction_id, f, dialect)
    return found


def decision_conditions(f: DecisionFilter, scope: str | None) -> list[Condition]:
    d = decisions.c
    found = _common(_DECISIONS, f, scope)
    found += _any_of(d.type, f.types)
    found += _any_of(d.outcome, f.outcomes)
    found += _any_of(d.rule_id, f.rules)
    found += _any_of(d.component, f.components)
    return found


def violation_conditions(f: ViolationFilter, scope: str | None, dialect: str) -> list[Condition]:
    v = guardrail_violations.c
    found = _common(_VIOLATIONS, f, scope)
    found += _any_of(v.guardrail, f.guardrails)
    found += _any_of(v.kind, f.kinds)
    found += _any_of(v.action, f.actions)
    found += _any_of(v.direction, f.directions)
    if f.entity_types:
        found.append(sa.or_(*(object_has_key(v.entities, t, dialect) for t in f.entity_types)))
    return found


# --- paging -------------------------------------------------------------------------------------


def _check_page(listing: _Listing, sort: str, limit: int) -> None:
    if sort not in listing.sorts:
        raise ValueError(f"{listing.name} sort by one of {', '.join(listing.sorts)}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"a page holds 1 to {MAX_PAGE_SIZE} rows")


def _digest(listing: _Listing, sort: str, filters: CommonFilter) -> str:
    return digest_of(listing.name, sort, filters)


def _cursor_value(sort: str, cursor: Cursor) -> Any:
    """The cursor's sort value as the column compares it; InvalidCursor when it is not one."""
    value = cursor.value
    if sort == "newest" and isinstance(value, str):
        try:
            return _utc(datetime.fromisoformat(value))
        except ValueError:
            pass
    elif sort == "duration" and isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)
    elif sort == "cost" and isinstance(value, str):
        try:
            cost = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if cost.is_finite():
                return cost
    raise InvalidCursor("not a cursor this API gave out")


def _page_statement(
    listing: _Listing,
    columns: Sequence[sa.ColumnElement[Any]],
    conditions: list[Condition],
    *,
    sort: str,
    limit: int,
    cursor: Cursor | None,
    digest: str,
) -> sa.Select[Any]:
    """The page's rows (one more than `limit`, to tell whether another page follows), with the
    key's name joined in after the page is cut."""
    key = listing.sorts[sort]
    where = list(conditions)
    if sort == "cost":
        where.append(key.is_not(None))
    if cursor is not None:
        if cursor.sort != sort or cursor.digest != digest:
            raise InvalidCursor("the cursor belongs to another list, sort or set of filters")
        if not isinstance(cursor.id, str) or not 0 < len(cursor.id) <= 64:
            raise InvalidCursor("not a cursor this API gave out")
        value = _cursor_value(sort, cursor)
        # The first condition alone lets an index on the sort column start at the cursor.
        where += [key <= value, sa.or_(key < value, listing.id < cursor.id)]
    page = (
        sa.select(*columns)
        .where(*where)
        .order_by(key.desc(), listing.id.desc())
        .limit(limit + 1)
        .subquery("page")
    )
    order = (page.c[key.key].desc(), page.c[listing.id.key].desc())
    if not listing.keyed:
        return sa.select(page).order_by(*order)
    return (
        sa.select(page, api_keys.c.name.label("key_name"))
        .select_from(
            page.outerjoin(
                api_keys,
                sa.and_(
                    api_keys.c.key_id == page.c.api_key_id,
                    api_keys.c.workspace_id == page.c.workspace_id,
                ),
            )
        )
        .order_by(*order)
    )


def _sort_value(sort: str, row: Any) -> str | float:
    if sort == "newest":
        time = row.started_at if hasattr(row, "started_at") else row.created_at
        moment = as_utc(time)
        assert moment is not None
        return moment.isoformat(timespec="microseconds")
    if sort == "duration":
        return float(row.duration_ms if hasattr(row, "duration_ms") else row.latency_ms)
    return str(row.cost_usd)


def _values(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        name: as_utc(value) if isinstance(value, datetime) else value
        for name, value in row._mapping.items()
    }


async def _page(
    engine: AsyncEngine,
    statement: sa.Select[Any],
    row_type: type[R],
    *,
    listing: _Listing,
    sort: str,
    limit: int,
    filters: CommonFilter,
    digest: str,
) -> Page[R]:
    async with engine.connect() as conn:
        found = (await conn.execute(statement)).all()
    rows = [row_type(**_values(row)) for row in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last = rows[-1]
        last_id = getattr(last, listing.id.key)
        next_cursor = Cursor(sort, _sort_value(sort, last), last_id, filters.as_of, digest).encode()
    return Page(rows, next_cursor)


# --- the lists ----------------------------------------------------------------------------------


def traces_statement(
    filters: TraceFilter,
    *,
    scope: str | None,
    dialect: str,
    sort: str = "newest",
    limit: int = PAGE_SIZE,
    cursor: Cursor | None = None,
) -> sa.Select[Any]:
    """The statement `search_traces` runs (for `EXPLAIN` and tests)."""
    _check_page(_TRACES, sort, limit)
    return _page_statement(
        _TRACES,
        _TRACE_COLUMNS,
        trace_conditions(filters, scope, dialect),
        sort=sort,
        limit=limit,
        cursor=cursor,
        digest=_digest(_TRACES, sort, filters),
    )


async def search_traces(
    engine: AsyncEngine,
    filters: TraceFilter,
    *,
    scope: str | None,
    sort: str = "newest",
    limit: int = PAGE_SIZE,
    cursor: Cursor | None = None,
) -> Page[TraceRow]:
    """One page of requests. Raises InvalidCursor for a cursor of another query, ValueError for
    a sort or page size out of range."""
    statement = traces_statement(
        filters, scope=scope, dialect=engine.dialect.name, sort=sort, limit=limit, cursor=cursor
    )
    return await _page(
        engine,
        statement,
        TraceRow,
        listing=_TRACES,
        sort=sort,
        limit=limit,
        filters=filters,
        digest=_digest(_TRACES, sort, filters),
    )


async def search_interactions(
    engine: AsyncEngine,
    filters: InteractionFilter,
    *,
    scope: str | None,
    sort: str = "newest",
    limit: int = PAGE_SIZE,
    cursor: Cursor | None = None,
) -> Page[InteractionRow]:
    """One page of provider attempts (cache answers included); `duration` sorts by latency."""
    _check_page(_INTERACTIONS, sort, limit)
    digest = _digest(_INTERACTIONS, sort, filters)
    statement = _page_statement(
        _INTERACTIONS,
        _INTERACTION_COLUMNS,
        interaction_conditions(filters, scope, engine.dialect.name),
        sort=sort,
        limit=limit,
        cursor=cursor,
        digest=digest,
    )
    return await _page(
        engine,
        statement,
        InteractionRow,
        listing=_INTERACTIONS,
        sort=sort,
        limit=limit,
        filters=filters,
        digest=digest,
    )


async def search_decisions(
    engine: AsyncEngine,
    filters: DecisionFilter,
    *,
    scope: str | None,
    sort: str = "newest",
    limit: int = PAGE_SIZE,
    cursor: Cursor | None = None,
) -> Page[DecisionRow]:
    """One page of decisions, newest first."""
    _check_page(_DECISIONS, sort, limit)
    digest = _digest(_DECISIONS, sort, filters)
    statement = _page_statement(
        _DECISIONS,
        _DECISION_COLUMNS,
        decision_conditions(filters, scope),
        sort=sort,
        limit=limit,
        cursor=cursor,
        digest=digest,
    )
    return await _page(
        engine,
        statement,
        DecisionRow,
        listing=_DECISIONS,
        sort=sort,
        limit=limit,
        filters=filters,
        digest=digest,
    )


async def search_violations(
    engine: AsyncEngine,
    filters: ViolationFilter,
    *,
    scope: str | None,
    sort: str = "newest",
    limit: int = PAGE_SIZE,
    cursor: Cursor | None = None,
) -> Page[ViolationRow]:
    """One page of guardrail findings, newest first."""
    _check_page(_VIOLATIONS, sort, limit)
    digest = _digest(_VIOLATIONS, sort, filters)
    statement = _page_statement(
        _VIOLATIONS,
        _VIOLATION_COLUMNS,
        violation_conditions(filters, scope, engine.dialect.name),
        sort=sort,
        limit=limit,
        cursor=cursor,
        digest=digest,
    )
    return await _page(
        engine,
        statement,
        ViolationRow,
        listing=_VIOLATIONS,
        sort=sort,
        limit=limit,
        filters=filters,
        digest=digest,
    )
