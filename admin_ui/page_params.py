"""Query parameters shared by the admin API's paged lists (audit log, alerts): the page size and
times and a choice among names, each a 400 naming the parameter when it cannot be read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from litestar import Request

from gateway.errors import GatewayError, invalid_request
from telemetry import times

MAX_PAGE: Final = 200
DEFAULT_PAGE: Final = 50


def bad(param: str, problem: str, code: str = "invalid_value") -> GatewayError:
    return invalid_request(f"'{param}' {problem}.", param=param, code=code)


def choice(param: str, value: str | None, choices: Iterable[str]) -> str | None:
    """`value` when it is one of `choices` (None stays None), else a 400 naming `param`."""
    allowed = tuple(choices)
    if value is not None and value not in allowed:
        raise bad(param, f"must be one of {', '.join(allowed)}")
    return value


def page_limit(request: Request[Any, Any, Any]) -> int:
    value = request.query_params.get("limit")
    if value is None:
        return DEFAULT_PAGE
    if not value.isdigit() or not 1 <= int(value[:6]) <= MAX_PAGE:
        raise bad("limit", f"must be a whole number from 1 to {MAX_PAGE}")
    return int(value)


def query_time(request: Request[Any, Any, Any], name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return times.parse_iso_time(value)
    except times.InvalidTime as error:
        raise bad(name, f"is not a time: {error}") from None
