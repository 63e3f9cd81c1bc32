"""`/admin/traces/{trace_id}`: one request as the gateway recorded it.

Read through `telemetry.queries.trace_detail`, the function behind `GET /admin/api/traces/{id}`,
with the same workspace scope: another workspace's trace is as unknown as a missing one (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from admin_ui import reproduce, trace_view, waterfall
from admin_ui.evaluation_pages import trace_box
from admin_ui.pages import page
from admin_ui.quality_trace import trace_scores
from admin_ui.state import gateway_of
from admin_ui.traces import visible_trace
from gateway.entry.auth import MASTER_KEY_INFO
from gateway.keys.store import KeyInfo, KeyStore, Workspace
from telemetry.queries import TraceDetail

CONTENT_NOTES = {
    "none": "Content is not stored (telemetry.store_content: none): the gateway keeps tokens, "
    "cost and timing, not prompts or answers.",
    "redacted": "Content is stored with personal data masked (telemetry.store_content: redacted).",
}


@dataclass(frozen=True, slots=True)
class Attempt:
    row: dict[str, Any]
    prompt: list[trace_view.Message] | None
    response: list[trace_view.Message] | None
    missing: str
    """What to say where content is absent."""


def attempts(detail: TraceDetail, store_content: str | None) -> list[Attempt]:
    shown = []
    for row in detail.interactions:
        if detail.trace.get("sampled_out"):
            missing = "Not kept: the request was sampled (telemetry.sampling)."
        elif store_content == "none":
            missing = "Not stored (telemetry.store_content: none)."
        elif row.get("cache_hit"):
            missing = "Answered from the cache; the answer is not stored again."
        else:
            missing = "Nothing was recorded for this attempt."
        shown.append(
            Attempt(
                row=row,
                prompt=None if row.get("prompt") is None else trace_view.messages(row["prompt"]),
                response=None
                if row.get("response") is None
                else trace_view.messages(row["response"]),
                missing=missing,
            )
        )
    return shown


def first_token_marks(detail: TraceDetail) -> dict[str, list[waterfall.Mark]]:
    marks: dict[str, list[waterfall.Mark]] = {}
    for row in detail.interactions:
        if row.get("span_id") and row.get("ttft_ms") is not None:
            marks.setdefault(row["span_id"], []).append(
                waterfall.Mark(offset_ms=float(row["ttft_ms"]), label="first token")
            )
    return marks


async def _key_and_workspace(
    store: KeyStore, trace: dict[str, Any]
) -> tuple[KeyInfo | None, Workspace | None]:
    key_id = trace.get("api_key_id")
    if key_id == MASTER_KEY_INFO.key_id:
        key: KeyInfo | None = MASTER_KEY_INFO
    else:
        key = await store.get(key_id) if key_id else None
    return key, await store.get_workspace(trace["workspace_id"])


class TracePages(Controller):
    path = "/traces"

    @get("/{trace_id:str}", name="console:trace")
    async def trace(self, request: Request[Any, Any, Any], trace_id: str) -> Template:
        gateway = gateway_of(request)
        detail = await visible_trace(request, trace_id)
        trace = detail.trace
        key, workspace = await _key_and_workspace(KeyStore(gateway.engine), trace)
        store_content = gateway.config.telemetry.store_content if gateway.config else None
        recorded = reproduce.recorded_request(
            trace, detail.interactions, detail.decisions, key.default_tags if key else ()
        )
        return await page(
            request,
            "trace.html",
            nav_active="traces",
            topbar_action="/admin/traces",
            trace=trace,
            summary=trace_view.summarise(trace, detail.interactions),
            spans=detail.spans,
            span_rows=waterfall.arrange(detail.spans),
            waterfall=waterfall.render(detail.spans, first_token_marks(detail)),
            decisions=[trace_view.decision_view(row) for row in detail.decisions],
            attempts=attempts(detail, store_content),
            content_note=CONTENT_NOTES.get(store_content or ""),
            violations=detail.violations,
            trace_score_views=await trace_scores(gateway.engine, trace),
            workspace=workspace,
            key_label=key.name if key else "deleted key",
            curl=reproduce.curl_command(str(request.base_url), recorded),
            curl_exact=recorded.exact,
            simulator_url=reproduce.simulator_url(recorded, trace, key.name if key else None),
            api_url=f"/admin/api/traces/{trace['trace_id']}",
            evaluate=await trace_box(request, trace),
        )
