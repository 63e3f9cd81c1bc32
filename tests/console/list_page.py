"""The traces list template rendered in-process with rows given by the test.

The list's query lives in the trace search; these pages check the template, its context and the
console's script around a list, without it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from litestar import Litestar, MediaType, Request, get
from litestar.response import Template
from litestar.testing import TestClient

from admin_ui.pages import PAGE_HEADERS, WorkspaceChoice, shell_context
from admin_ui.templating import template_config
from admin_ui.traces_list import traces_list_context


def sample_rows(count: int, newest: datetime | None = None) -> list[dict[str, Any]]:
    start = newest or datetime.now(UTC)
    return [
        {
            "trace_id": f"01a24ba30be3{index:020x}",
            "started_at": start - timedelta(seconds=7 * index),
            "workspace": "default",
            "key_name": "billing-app",
            "end_user": f"customer-{index}",
            "requested_model": "small",
            "served_model": "mock-gpt-large" if index % 3 == 0 else "small",
            "provider": "mock",
            "status": "error" if index % 5 == 4 else "ok",
            "http_status": 503 if index % 5 == 4 else 200,
            "duration_ms": 120.5 + index,
            "ttft_ms": 40.0 if index % 2 else None,
            "total_tokens": 38 + index,
            "cost_usd": Decimal("0.0000034") * (index + 1),
            "cache_hit": index % 4 == 1,
            "rules_matched": ["premium-to-large"] if index % 3 == 0 else [],
            "guardrail_action": "mask" if index == 2 else None,
        }
        for index in range(count)
    ]


def list_app(rows: list[dict[str, Any]], next_cursor: str | None = None) -> Litestar:
    @get("/admin/traces", sync_to_thread=False)
    def traces(request: Request[Any, Any, Any]) -> Template:
        context = shell_context(
            request,
            nav_active="traces",
            workspaces=[WorkspaceChoice("default", "Default")],
            auto_refresh=True,
        )
        context.update(traces_list_context(request, rows, next_cursor, "mock-gpt"))
        return Template(
            "traces.html", context=context, media_type=MediaType.HTML, headers=dict(PAGE_HEADERS)
        )

    return Litestar(route_handlers=[traces], template_config=template_config())


def render_list(
    path: str,
    rows: list[dict[str, Any]],
    next_cursor: str | None = None,
    base_url: str = "http://testserver.local",
) -> str:
    with TestClient(list_app(rows, next_cursor), base_url=base_url) as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.text
