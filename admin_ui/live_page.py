"""`/admin/live`: the live feed as a page.

The page is a shell: `admin_ui/static/live.js` opens `GET /admin/api/live` with the filters of
the page's own URL (so a link shares them), fills the table as traces arrive, and shows the
stream's per-second statistics. The server only fills in the filter form and tells the script
which query parameters the stream takes.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, get
from litestar.response import Template

from admin_ui.auth import workspace_scope
from admin_ui.live_query import KNOWN
from admin_ui.pages import page
from admin_ui.state import gateway_of
from telemetry.live_filter import STATUSES

STREAM_URL: Final = "/admin/api/live"
MAX_ROWS: Final = 200
"""Rows the table keeps; older ones leave as new ones arrive."""
FORM_FIELDS: Final = ("model", "provider", "status", "key", "end_user", "min_duration_ms")


def live_context(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What `live.html` needs besides the shell's context."""
    params = request.query_params
    config = gateway_of(request).config
    models = config.model_names() if config is not None else []
    return {
        "live_filters": {name: params.get(name, "") for name in FORM_FIELDS},
        "live_statuses": STATUSES,
        "live_stream_url": STREAM_URL,
        "live_parameters": " ".join(sorted(KNOWN)),
        "live_scope": workspace_scope(request),
        "live_max_rows": MAX_ROWS,
        "live_gateway_url": str(request.base_url).rstrip("/"),
        "live_example_model": models[0] if models else "gpt-4o-mini",
    }


class LivePage(Controller):
    path = "/live"

    @get("/", include_in_schema=False)
    async def live_page(self, request: Request[Any, Any, Any]) -> Template:
        return await page(request, "live.html", nav_active="live", **live_context(request))
