"""Query parameters of the list endpoints (traces, interactions, decisions, violations) read into
`telemetry.search` filters. Every problem is a 400 in OpenAI's error shape naming the parameter.

One table of parameters per list drives both the reading and the OpenAPI description, so the
document lists exactly what is read. A parameter marked repeatable may be given several times
(`status=error&status=denied`) and matches any of its values; `tag` also takes a comma-separated
list. Times are ISO 8601 (no zone means UTC) or epoch seconds; `last` is a relative range such
as `15m`, `6h`, `7d` or `2w`, measured from the first page's request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Generic, TypeVar

from admin_ui.openapi import JsonSchema, Query, text
from gateway.errors import GatewayError, invalid_request
from telemetry import times
from telemetry.search import (
    DECISION_SORTS,
    INTERACTION_SORTS,
    INTERACTION_STATUSES,
    MAX_PAGE_SIZE,
    OPERATION_ROUTES,
    PAGE_SIZE,
    TRACE_ID_LENGTH,
    TRACE_SORTS,
    TRACE_STATUSES,
    VIOLATION_SORTS,
    CommonFilter,
    Cursor,
    DecisionFilter,
    InteractionFilter,
    InvalidCursor,
    TraceFilter,
    ViolationFilter,
)
from telemetry.summary import DECISION_OUTCOMES, GUARDRAIL_ACTIONS

F = TypeVar("F", bound=CommonFilter)

MAX_TEXT: Final = 256
MAX_VALUES: Final = 50
"""Values one repeatable parameter may take."""
MAX_MONEY: Final = Decimal("1e9")
MAX_MS: Final = 1e12
_LAST: Final = re.compile(r"([0-9]{1,7})([smhdw])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_EPOCH: Final = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
_HEX: Final = re.compile(r"[0-9a-fA-F]{1,32}")
_TRUE: Final = ("true", "1", "yes")
_FALSE: Final = ("false", "0", "no")


def bad(param: str, problem: str, code: str = "invalid_value") -> GatewayError:
    return invalid_request(f"'{param}' {problem}.", param=param, code=code)


# --- reading one value --------------------------------------------------------------------------

Reader = Callable[[str, str], Any]


def read_text(param: str, raw: str) -> str:
    if not raw:
        raise bad(param, "must not be empty")
    if len(raw) > MAX_TEXT:
        raise bad(param, f"must be at most {MAX_TEXT} characters")
    return raw


def read_integer(low: int, high: int) -> Reader:
    def read(param: str, raw: str) -> int:
        if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or not low <= int(raw) <= high:
            raise bad(param, f"must be a whole number from {low} to {high}")
        return int(raw)

    return read


def read_milliseconds(param: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not raw.isascii() or not (math.isfinite(value) and 0 <= value <= MAX_MS):
        raise bad(param, "must be a number of milliseconds, 0 or more")
    return value


def read_money(param: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw) if raw.isascii() and len(raw) <= 32 else Decimal("NaN")
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 <= value <= MAX_MONEY:
        raise bad(param, "must be an amount of US dollars such as 0.05, 0 or more")
    return value


def read_score(param: str, raw: str) -> float:
    try:
        value = float(raw) if raw.isascii() and len(raw) <= 16 else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 100):
        raise bad(param, "must be a score from 0 to 100")
    return value


def read_boolean(param: str, raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise bad(param, "must be true or false")


def read_choice(choices: Iterable[str]) -> Reader:
    allowed = tuple(choices)

    def read(param: str, raw: str) -> str:
        if raw not in allowed:
            raise bad(param, f"must be one of {', '.join(allowed)}")
        return raw

    return read


def read_trace_id_prefix(param: str, raw: str) -> str:
    if not _HEX.fullmatch(raw):
        raise bad(
            param, f"must be 1 to {TRACE_ID_LENGTH} hexadecimal digits (a trace id or its start)"
        )
    return raw.lower()


def read_pair(param: str, raw: str) -> tuple[str, str]:
    name, equals, value = raw.partition("=")
    if not equals or not name:
        raise bad(param, "must be key=value, such as team=search")
    if len(name) > MAX_TEXT or len(value) > MAX_TEXT:
        raise bad(param, f"must have a key and a value of at most {MAX_TEXT} characters each")
    return name, value


def read_duration(param: str, raw: str, example: str = "30s, 15m, 6h, 7d or 2w") -> int:
    """Seconds of a positive amount and a unit (s, m, h, d, w), such as `15m` or `2w`."""
    match = _LAST.fullmatch(raw)
    if match is None or int(match.group(1)) == 0:
        raise bad(param, f"must be a positive amount and a unit: {example}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def relative_start(param: str, raw: str, as_of: datetime) -> datetime:
    """The start of the range `raw` (such as `6h`) reaching back from `as_of`."""
    amount = timedelta(seconds=read_duration(param, raw))
    try:
        return times.within_range(as_of - amount)
    except (times.InvalidTime, OverflowError):
        raise bad(param, f"reaches back too far: the range must fall {times.RANGE_TEXT}") from None


def read_time(param: str, raw: str) -> datetime:
    try:
        if _EPOCH.fullmatch(raw):
            return times.from_epoch(float(raw))
        return times.parse_iso_time(raw)
    except times.InvalidTime as error:
        raise bad(param, f"must be an ISO 8601 time or epoch seconds ({error})") from None


# --- the parameters of each list ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    field: str
    """The filter field it sets."""
    read: Reader
    description: str
    schema: JsonSchema
    many: bool = False


def _texts(name: str, field: str, description: str) -> Param:
    return Param(name, field, read_text, description, text(MAX_TEXT), many=True)


def _flag(name: str, field: str, description: str) -> Param:
    return Param(name, field, read_boolean, description, {"enum": ["true", "false"]})


def _bound(name: str, field: str, description: str, reader: Reader) -> Param:
    schema: JsonSchema = {"type": "number", "minimum": 0}
    if reader is read_score:
        schema = {"type": "number", "minimum": 0, "maximum": 100}
    if reader is read_money:
        schema = text(32, pattern=r"^[0-9]+(\.[0-9]+)?$")
    return Param(name, field, reader, description, schema)


def _choices(name: str, field: str, description: str, values: tuple[str, ...]) -> Param:
    return Param(name, field, read_choice(values), description, {"enum": list(values)}, many=True)


_HTTP_STATUS = Param(
    "http_status",
    "http_statuses",
    read_integer(100, 599),
    "HTTP status answered (repeatable).",
    {"type": "integer", "minimum": 100, "maximum": 599},
    many=True,
)
_TAGS = _texts("tag", "tags", "Tags (repeatable or comma-separated); see `tag_match`.")
_TAG_MATCH = Param(
    "tag_match",
    "",
    read_choice(("all", "any")),
    "`all` (default): requests carrying every tag given; `any`: carrying at least one.",
    {"enum": ["all", "any"]},
)
_METADATA = Param(
    "metadata",
    "metadata",
    read_pair,
    "`key=value` (repeatable, all must match): a top-level metadata entry equal to the value, "
    "as a string or as the number, boolean or null it spells.",
    text(MAX_TEXT * 2, pattern="^[^=]+="),
    many=True,
)
_TRACE_LEVEL = (
    _texts("end_user", "end_users", "The request's end user (`user` in the body; repeatable)."),
    _TAGS,
    _TAG_MATCH,
    _METADATA,
)
_MODELS = (
    _texts("model", "models", "The model the client asked for (repeatable)."),
    _texts("served_model", "served_models", "The provider's model that answered (repeatable)."),
    _texts("provider", "providers", "The provider (repeatable)."),
    _texts("deployment", "deployments", "The deployment (repeatable)."),
)
_TIMING_AND_COST = (
    _bound("min_duration_ms", "min_duration_ms", "At least this long (ms).", read_milliseconds),
    _bound("max_duration_ms", "max_duration_ms", "At most this long (ms).", read_milliseconds),
    _bound("min_cost", "min_cost_usd", "Cost at least this many US dollars.", read_money),
    _bound("max_cost", "max_cost_usd", "Cost at most this many US dollars.", read_money),
)


def _evaluation(judged: str) -> tuple[Param, ...]:
    """Filters on evaluations of `judged` (the request, the attempt), which hold of one and the
    same evaluation (telemetry.evaluation.score_filters)."""
    return (
        _flag("evaluated", "evaluated", f"An evaluator judged {judged} (any status), or none did."),
        _texts("evaluator", "evaluators", "Judged by this evaluator (by name; repeatable)."),
        _bound(
            "min_score",
            "min_score",
            "An evaluation's mean score at least this (0-100).",
            read_score,
        ),
        _bound(
            "max_score", "max_score", "An evaluation's mean score at most this (0-100).", read_score
        ),
        _texts(
            "eval_flag", "eval_flags", "A judge flagged it so, e.g. hallucination (repeatable)."
        ),
    )


TRACE_PARAMS: Final = (
    *_TRACE_LEVEL,
    *_MODELS,
    _choices("status", "statuses", "ok, error, cancelled or denied (repeatable).", TRACE_STATUSES),
    _texts("error_type", "error_types", "The error's type or code (repeatable)."),
    _HTTP_STATUS,
    *_TIMING_AND_COST,
    _flag("cache_hit", "cache_hit", "Answered from the cache, or not."),
    _flag("guardrail_triggered", "guardrail_triggered", "A guardrail found something, or not."),
    _texts("guardrail", "guardrails", "This guardrail (by name) found something (repeatable)."),
    _choices(
        "guardrail_action",
        "guardrail_actions",
        "The strongest guardrail action taken (repeatable).",
        GUARDRAIL_ACTIONS,
    ),
    _texts("rule", "rules", "This steering rule (by id) matched (repeatable)."),
    _texts("request_id", "request_ids", "The request id (`x-request-id`; repeatable)."),
    _flag("stream", "stream", "Streamed, or not."),
    _choices(
        "operation",
        "operations",
        "The API called: chat, embeddings, messages, completions or responses (repeatable).",
        tuple(OPERATION_ROUTES),
    ),
    _choices(
        "source",
        "sources",
        "How the trace reached the gateway: proxy, otlp, evaluation (a judge's call) or "
        "moderation (a moderation judge's calls); the last two are left out unless asked for. "
        "Repeatable.",
        ("proxy", "otlp", "evaluation", "moderation"),
    ),
    *_evaluation("the request"),
)
INTERACTION_PARAMS: Final = (
    *_TRACE_LEVEL,
    *_MODELS,
    _choices("status", "statuses", "ok, error or cancelled (repeatable).", INTERACTION_STATUSES),
    _texts("error_type", "error_types", "The attempt's error type (repeatable)."),
    _HTTP_STATUS,
    *_TIMING_AND_COST,
    _bound("min_ttft_ms", "min_ttft_ms", "Time to first token at least (ms).", read_milliseconds),
    _bound("max_ttft_ms", "max_ttft_ms", "Time to first token at most (ms).", read_milliseconds),
    _flag("cache_hit", "cache_hit", "Answered from the cache, or not."),
    _flag("stream", "stream", "Streamed, or not."),
    _texts(
        "operation",
        "operations",
        "The API called: chat, embeddings, messages, completions, responses (repeatable).",
    ),
    _texts("finish_reason", "finish_reasons", "The finish reason (repeatable)."),
    Param(
        "attempt",
        "attempts",
        read_integer(1, 1000),
        "The attempt's number within its request (repeatable).",
        {"type": "integer", "minimum": 1, "maximum": 1000},
        many=True,
    ),
    _flag("usage_estimated", "usage_estimated", "Tokens estimated by the gateway, or not."),
    *_evaluation("this attempt"),
)
DECISION_PARAMS: Final = (
    _texts("type", "types", "rule_evaluation, model_selection, rate_limit... (repeatable)."),
    _choices("outcome", "outcomes", "What the decision came to (repeatable).", DECISION_OUTCOMES),
    _texts("rule", "rules", "The steering rule's id (repeatable)."),
    _texts("component", "components", "The component that decided (repeatable)."),
)
VIOLATION_PARAMS: Final = (
    _texts("guardrail", "guardrails", "The guardrail's name (repeatable)."),
    _texts("kind", "kinds", "pii, prompt_injection... (repeatable)."),
    _texts("entity_type", "entity_types", "An entity type found, such as EMAIL_ADDRESS."),
    _choices("action", "actions", "block, mask or log (repeatable).", GUARDRAIL_ACTIONS),
    _choices("direction", "directions", "input or output (repeatable).", ("input", "output")),
)


@dataclass(frozen=True, slots=True)
class ListSpec(Generic[F]):
    name: str
    filter_type: type[F]
    params: tuple[Param, ...]
    sorts: tuple[str, ...]

    def common(self) -> tuple[Query, ...]:
        sorts = ", ".join(self.sorts)
        return (
            Query("since", "From this time on: ISO 8601 or epoch seconds.", text(64)),
            Query("until", "Before this time: ISO 8601 or epoch seconds.", text(64)),
            Query(
                "last",
                "A relative range instead: 30s, 15m, 6h, 7d, 2w.",
                text(8, pattern=r"^[0-9]+[smhdw]$"),
            ),
            Query("workspace", "Only this workspace (id or slug).", text()),
            Query("key", "Only this key's (by id; repeatable).", _array(text(MAX_TEXT))),
            Query(
                "trace_id",
                "The trace id, or its first hexadecimal digits.",
                text(TRACE_ID_LENGTH, pattern="^[0-9a-fA-F]+$"),
            ),
            Query(
                "sort", f"Order: {sorts} (most first; default newest).", {"enum": list(self.sorts)}
            ),
            Query(
                "limit",
                f"Rows a page (default {PAGE_SIZE}).",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            ),
            Query("cursor", "`next_cursor` of the previous page.", text(512)),
        )

    def openapi(self) -> tuple[Query, ...]:
        """The query parameters, for `described(query=...)`."""
        return (
            *self.common(),
            *(
                Query(p.name, p.description, _array(p.schema) if p.many else p.schema)
                for p in self.params
            ),
        )


def _array(schema: JsonSchema) -> JsonSchema:
    return {"type": "array", "items": schema, "maxItems": MAX_VALUES}


TRACES: Final = ListSpec("traces", TraceFilter, TRACE_PARAMS, TRACE_SORTS)
INTERACTIONS: Final = ListSpec(
    "interactions", InteractionFilter, INTERACTION_PARAMS, INTERACTION_SORTS
)
DECISIONS: Final = ListSpec("decisions", DecisionFilter, DECISION_PARAMS, DECISION_SORTS)
VIOLATIONS: Final = ListSpec("violations", ViolationFilter, VIOLATION_PARAMS, VIOLATION_SORTS)

_COMMON_NAMES: Final = (
    "since",
    "until",
    "last",
    "workspace",
    "key",
    "trace_id",
    "sort",
    "limit",
    "cursor",
)
_REPEATABLE_COMMON: Final = ("key",)


# --- reading a whole query ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListQuery(Generic[F]):
    filters: F
    sort: str
    limit: int
    cursor: Cursor | None
    workspace: str | None
    """The `workspace` asked for (id or slug), for the caller to resolve within its scope."""

    def with_workspace(self, workspace_id: str) -> ListQuery[F]:
        return replace(self, filters=replace(self.filters, workspace_ids=(workspace_id,)))


def _grouped(
    items: Iterable[tuple[str, str]], spec: ListSpec[Any], ignore: Iterable[str]
) -> dict[str, list[str]]:
    known = {p.name: p for p in spec.params}
    skipped = set(ignore)
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        if name in skipped:
            continue
        if name not in known and name not in _COMMON_NAMES:
            shown = name[:100]
            raise invalid_request(
                f"Unknown parameter '{shown}'; {spec.name} take "
                + ", ".join([*_COMMON_NAMES, *known])
                + ".",
                param=shown,
                code="unknown_parameter",
            )
        grouped.setdefault(name, []).append(value)
    for name, values in grouped.items():
        repeatable = name in _REPEATABLE_COMMON or (name in known and known[name].many)
        if len(values) > 1 and not repeatable:
            raise bad(name, "is given more than once")
        if len(values) > MAX_VALUES:
            raise bad(name, f"takes at most {MAX_VALUES} values")
    return grouped


def _one(grouped: dict[str, list[str]], name: str) -> str | None:
    values = grouped.get(name)
    return values[0] if values else None


def time_range(
    grouped: dict[str, list[str]], as_of: datetime
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """(since, until, as_of): as_of only when `last` was given."""
    since_text, until_text, last = (_one(grouped, n) for n in ("since", "until", "last"))
    if last is not None:
        if since_text is not None or until_text is not None:
            raise bad("last", "cannot be combined with 'since' or 'until'")
        return relative_start("last", last, as_of), None, as_of
    since = None if since_text is None else read_time("since", since_text)
    until = None if until_text is None else read_time("until", until_text)
    if since is not None and until is not None and until <= since:
        raise bad("until", "must be later than 'since'")
    return since, until, None


def _limit(grouped: dict[str, list[str]]) -> int:
    raw = _one(grouped, "limit")
    return PAGE_SIZE if raw is None else read_integer(1, MAX_PAGE_SIZE)("limit", raw)


def parse_list_query(
    spec: ListSpec[F],
    items: Iterable[tuple[str, str]],
    *,
    now: datetime,
    ignore: Iterable[str] = (),
) -> ListQuery[F]:
    """Read `items` (the query string's name/value pairs, repeats included) for the list `spec`.
    `now` anchors a relative range on the first page; later pages keep the cursor's. Names in
    `ignore` (a page's own parameters) are passed over."""
    grouped = _grouped(items, spec, ignore)
    cursor = None
    cursor_text = _one(grouped, "cursor")
    if cursor_text is not None:
        try:
            cursor = Cursor.decode(cursor_text)
        except InvalidCursor as error:
            raise bad("cursor", f"is not valid: {error}", "invalid_cursor") from None
    as_of = cursor.as_of if cursor is not None and cursor.as_of is not None else now
    since, until, as_of_used = time_range(grouped, as_of)
    sort = _one(grouped, "sort") or "newest"
    read_choice(spec.sorts)("sort", sort)
    values: dict[str, Any] = {
        "since": since,
        "until": until,
        "as_of": as_of_used,
        "api_key_ids": tuple(read_text("key", v) for v in grouped.get("key", ())),
    }
    prefix = _one(grouped, "trace_id")
    if prefix is not None:
        values["trace_id_prefix"] = read_trace_id_prefix("trace_id", prefix)
    for param in spec.params:
        raw = grouped.get(param.name)
        if raw is None or not param.field:
            continue
        if param is _TAGS:
            tags = tuple(t.strip() for v in raw for t in v.split(",") if t.strip())
            if not tags:
                raise bad("tag", "must name a tag")
            mode = _one(grouped, "tag_match") or "all"
            read_choice(("all", "any"))("tag_match", mode)
            values["tags_any" if mode == "any" else "tags_all"] = tuple(
                read_text("tag", t) for t in tags
            )
        elif param.many:
            values[param.field] = tuple(param.read(param.name, v) for v in raw)
        else:
            values[param.field] = param.read(param.name, raw[0])
    if "tag_match" in grouped and "tag" not in grouped:
        read_choice(("all", "any"))("tag_match", grouped["tag_match"][0])
    for low, high in (
        ("min_duration_ms", "max_duration_ms"),
        ("min_cost_usd", "max_cost_usd"),
        ("min_ttft_ms", "max_ttft_ms"),
        ("min_score", "max_score"),
    ):
        if (
            values.get(low) is not None
            and values.get(high) is not None
            and values[high] < values[low]
        ):
            name = next(p.name for p in spec.params if p.field == high)
            raise bad(name, "must not be less than its minimum")
    workspace = _one(grouped, "workspace")
    if workspace is not None:
        read_text("workspace", workspace)
    return ListQuery(
        filters=spec.filter_type(**values),
        sort=sort,
        limit=_limit(grouped),
        cursor=cursor,
        workspace=workspace,
    )
