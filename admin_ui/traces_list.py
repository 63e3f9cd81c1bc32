"""The traces list page's context: the filter bar's values, the rows, the next page's URL.

The rows come from the trace search (`telemetry/search.py`), the same query as
`GET /admin/api/traces`; this module only shapes what `templates/traces.html` shows. A handler
ends with:

    return await page(request, "traces.html", nav_active="traces", auto_refresh=True,
                      **traces_list_context(request, rows, next_cursor, example_model))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Request

from admin_ui.pages import ADMIN_PATH, query_without, url_with

TRACES_PATH = f"{ADMIN_PATH}/traces"
TRACE_FILTERS = ("q", "model", "provider", "status", "tag", "user", "key", "sort")
STATUSES = ("ok", "error", "cancelled", "denied")
CURSOR = "cursor"


def traces_list_context(
    request: Request[Any, Any, Any],
    rows: Sequence[Mapping[str, Any]],
    next_cursor: str | None,
    example_model: str,
) -> dict[str, Any]:
    filters = {name: value for name in TRACE_FILTERS if (value := request.query_params.get(name))}
    next_url = (
        url_with(TRACES_PATH, [*query_without(request, CURSOR), (CURSOR, next_cursor)])
        if next_cursor
        else None
    )
    return {
        "filters": filters,
        "statuses": STATUSES,
        "rows": rows,
        "next_url": next_url,
        "gateway_url": str(request.base_url).rstrip("/"),
        "example_model": example_model,
    }
