"""Path and query parameters the database could not compare: refused before a route runs.

Every admin route looks something up by what its URL names (a key id, a workspace slug, a rule
id, a trace id). Postgres refuses a query that holds a NUL or a lone surrogate, so such a value
would end in a 500; nothing stored can hold one either, so a 400 naming the parameter says all.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from gateway.errors import invalid_request
from telemetry.escaping import UNSTORABLE_PROBLEM, has_unstorable


async def refuse_unstorable_parameters(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: 400 with the parameter's name when a path or query value holds NUL or a lone
    surrogate."""
    parameters = [*connection.path_params.items(), *connection.query_params.multi_items()]
    for name, value in parameters:
        if isinstance(value, str) and has_unstorable(value):
            raise invalid_request(
                f"'{name}' {UNSTORABLE_PROBLEM}.", param=name, code="invalid_value"
            )
