"""The traces list template rendered in-process with rows given by the test.

The list's query lives in the trace search; these pages check the template, its context and the
console's script around a list, without it. The context is built by the page's own function
(`admin_ui.list_pages.list_context`), for an operator, with the rows in place of the search's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from litestar import Litestar, MediaType, Request, get
from litestar.response import Template
from litestar.testing import TestClient

from admin_ui.list_pages import Directory, ListRead, list_context
from admin_ui.pages import PAGE_HEADERS, WorkspaceChoice, shell_context
from admin_ui.templating import template_config
from admin_ui.traces_list import API_PATH, FIELDS, TRACES_PATH
from telemetry.schema import DEFAULT_WORKSPACE_ID


def sample_rows(count: int, newest: datetime | None = None) -> list[dict[str, Any]]:
    """Rows shaped as `telemetry.search.TraceRow`s."""
    start = newest or datetime.now(UTC)
    return [
        {
            "trace_id": f"01a24ba30be3{index:020x}",
            "request_id": f"req-{index}",
            "started_at": start - timedelta(seconds=7 * index),
            "workspace_id": DEFAULT_WORKSPACE_ID,
            "api_key_id": "0193key",
            "key_name": "billing-app",
            "end_user": f"customer-{index}",
            "route": "/v1/chat/completions",
            "requested_model": "small",
            "provider": "mock",
            "provider_model": "mock-gpt-large" if index % 3 == 0 else "small",
            "deployment": "mock/small",
            "status": "error" if index % 5 == 4 else "ok",
            "http_status": 503 if index % 5 == 4 else 200,
            "error_type": "upstream_error" if index % 5 == 4 else None,
            "stream": False,
            "duration_ms": 120.5 + index,
            "ttft_ms": 40.0 if index % 2 else None,
            "prompt_tokens": 30,
            "completion_tokens": 8 + index,
            "total_tokens": 38 + index,
            "cost_usd": Decimal("0.0000034") * (index + 1),
            "cache_hit": index % 4 == 1,
            "rules_matched": ["premium-to-large"] if index % 3 == 0 else [],
            "guardrail_action": "mask" if index == 2 else None,
            "guardrails_triggered": ["pii"] if index == 2 else [],
            "tags": [],
        }
        for index in range(count)
    ]


def list_app(rows: list[dict[str, Any]], next_cursor: str | None = None) -> Litestar:
    @get(TRACES_PATH, sync_to_thread=False)
    def traces(request: Request[Any, Any, Any]) -> Template:
        context = shell_context(
            request,
            nav_active="traces",
            workspaces=[WorkspaceChoice("default", "Default")],
            auto_refresh=True,
        )
        read = ListRead(rows=rows, next_cursor=next_cursor, query=None, error=None)
        page = list_context(
            request,
            TRACES_PATH,
            read,
            Directory(workspaces=[], keys=[]),
            FIELDS,
            scope=None,
            suggestions={"models": ["small"]},
        )
        context.update(page)
        context.update(
            api_url=API_PATH,
            no_traces_at_all=not rows and not page["bar"].active,
            gateway_url=str(request.base_url).rstrip("/"),
            example_model="mock-gpt",
        )
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
