"""The query parameters of `GET /admin/api/live`: filters, and when the stream ends by itself.

Each is read from the query string by hand so a bad value is a 400 in OpenAI's shape naming the
parameter; the same list describes them in the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from litestar import Request

from admin_ui.openapi import Query, text
from gateway.errors import GatewayError, invalid_request
from telemetry.live_filter import STATUSES

MAX_TEXT: Final = 256
MAX_LIMIT: Final = 1_000_000
MAX_SECONDS: Final = 86_400.0
MAX_DURATION_MS: Final = MAX_SECONDS * 1000
_TRUE: Final = ("true", "1", "yes")
_FALSE: Final = ("false", "0", "no")

TEXT_FILTERS: Final = {
    "model": "The requested model, the model it was served as, or the provider's model name.",
    "provider": "The provider that served it.",
    "end_user": "The end user (the body's `user`).",
    "route": "The gateway route, such as /v1/chat/completions.",
    "error_type": "The error type recorded, such as upstream_timeout.",
    "rule": "A steering rule's id among those that matched.",
    "guardrail": "A guardrail's name among those that found something.",
}
BOOLEAN_FILTERS: Final = {
    "cache_hit": "Answered from the cache (true) or not (false).",
    "stream": "Streamed (true) or not (false).",
}

QUERY: Final = (
    Query(
        "workspace",
        "Only this workspace (id or slug); an admin of one workspace sees only its own anyway.",
        text(MAX_TEXT),
    ),
    Query("key", "Only requests made with this key (id or name).", text(MAX_TEXT)),
    *(Query(name, description, text(MAX_TEXT)) for name, description in TEXT_FILTERS.items()),
    Query(
        "status",
        "Only these outcomes, comma-separated: ok, error, cancelled, denied (an error answered "
        "with a 4xx). `error` includes `denied`.",
        text(MAX_TEXT, pattern="^(ok|error|cancelled|denied)(,(ok|error|cancelled|denied))*$"),
    ),
    Query(
        "http_status",
        "Only answers with this HTTP status.",
        {"type": "integer", "minimum": 100, "maximum": 599},
    ),
    Query(
        "min_duration_ms",
        "Only requests that took at least this long.",
        {"type": "number", "minimum": 0, "maximum": MAX_DURATION_MS},
    ),
    *(
        Query(name, description, {"enum": ["true", "false"]})
        for name, description in BOOLEAN_FILTERS.items()
    ),
    Query(
        "limit",
        "End the stream after this many trace events (default: no end).",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    ),
    Query(
        "seconds",
        "End the stream after this many seconds (default: no end; 0 ends it after `hello`).",
        {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
    ),
)
KNOWN: Final = frozenset(query.name for query in QUERY)


@dataclass(frozen=True, slots=True)
class LiveQuery:
    workspace: str | None
    key: str | None
    texts: dict[str, str]
    statuses: frozenset[str]
    http_status: int | None
    min_duration_ms: float | None
    booleans: dict[str, bool]
    limit: int | None
    seconds: float | None

    def echo(self) -> dict[str, Any]:
        """The filters as given, for the stream's `hello` event."""
        shown: dict[str, Any] = {"workspace": self.workspace, "key": self.key, **self.texts}
        shown["status"] = sorted(self.statuses) or None
        shown["http_status"] = self.http_status
        shown["min_duration_ms"] = self.min_duration_ms
        shown.update(self.booleans)
        return {name: value for name, value in shown.items() if value is not None}


def read_live_query(request: Request[Any, Any, Any]) -> LiveQuery:
    params = request.query_params
    for name in params:
        if name not in KNOWN:
            raise invalid_request(
                f"Unknown parameter '{name[:100]}'; expected one of "
                f"{', '.join(query.name for query in QUERY)}.",
                param=name[:100],
                code="unknown_parameter",
            )
    return LiveQuery(
        workspace=_text(params, "workspace"),
        key=_text(params, "key"),
        texts={name: value for name in TEXT_FILTERS if (value := _text(params, name)) is not None},
        statuses=_statuses(_text(params, "status")),
        http_status=_integer(params, "http_status", 100, 599),
        min_duration_ms=_number(params, "min_duration_ms", MAX_DURATION_MS),
        booleans={
            name: flag for name in BOOLEAN_FILTERS if (flag := _boolean(params, name)) is not None
        },
        limit=_integer(params, "limit", 1, MAX_LIMIT),
        seconds=_number(params, "seconds", MAX_SECONDS),
    )


def _single(params: Any, name: str) -> str | None:
    values = params.getall(name, [])
    if len(values) > 1:
        raise _invalid(name, "may be given once")
    return values[0] if values else None


def _text(params: Any, name: str) -> str | None:
    value = _single(params, name)
    if value is None or value == "":
        return None
    if len(value) > MAX_TEXT:
        raise _invalid(name, f"is longer than {MAX_TEXT} characters")
    return str(value)


def _statuses(value: str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    chosen = frozenset(part.strip() for part in value.split(","))
    unknown = sorted(chosen - set(STATUSES))
    if unknown:
        raise _invalid(
            "status", f"takes {', '.join(STATUSES)} (comma-separated), not '{unknown[0][:40]}'"
        )
    return chosen


def _integer(params: Any, name: str, lowest: int, highest: int) -> int | None:
    value = _single(params, name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise _invalid(name, "must be a whole number") from None
    if not lowest <= number <= highest:
        raise _invalid(name, f"must be between {lowest} and {highest}")
    return number


def _number(params: Any, name: str, highest: float) -> float | None:
    value = _single(params, name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise _invalid(name, "must be a number") from None
    if not 0 <= number <= highest:  # NaN fails this too
        raise _invalid(name, f"must be a number from 0 to {highest:g}")
    return number


def _boolean(params: Any, name: str) -> bool | None:
    value = _single(params, name)
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _invalid(name, "must be true or false")


def _invalid(name: str, problem: str) -> GatewayError:
    return invalid_request(f"'{name}' {problem}.", param=name, code="invalid_value")
