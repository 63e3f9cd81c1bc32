"""Links from a panel to the analytics API: the same query, as CSV (or JSON), so a download holds
exactly the numbers the panel shows.

`GET /admin/api/analytics/{metric}` takes the panel query's parameters: `from`, `to` and `step`
of the range actually drawn, `group_by` (comma-separated), each filter as its dimension's name
(repeated for several values), `top`, `workspace` when the page shows one, and `format`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, urlencode

from admin_ui.analytics_range import step_text
from admin_ui.pages import ADMIN_PATH
from telemetry.analytics import AnalyticsQuery

API_PATH: Final = f"{ADMIN_PATH}/api/analytics"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def query_items(query: AnalyticsQuery, step: int, workspace: str | None) -> list[tuple[str, str]]:
    items = [("from", _iso(query.start)), ("to", _iso(query.end)), ("step", step_text(step))]
    if query.group_by:
        items.append(("group_by", ",".join(query.group_by)))
    for name in sorted(query.filters):
        items.extend((name, value) for value in query.filters[name])
    if query.top is not None and query.group_by:
        items.append(("top", str(query.top)))
    if workspace:
        items.append(("workspace", workspace))
    return items


def api_url(query: AnalyticsQuery, step: int, workspace: str | None, output: str = "csv") -> str:
    """The API's URL for `query` drawn at `step` (`output`: csv or json)."""
    items = query_items(query, step, workspace)
    items.append(("format", output))
    return f"{API_PATH}/{quote(query.metric, safe='')}?{urlencode(items)}"
