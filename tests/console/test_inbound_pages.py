"""A request through Anthropic's Messages API in the console: its trace names the API, and the
traces explorer filters by it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anthropic
from playwright.sync_api import Page, expect

from tests.e2e.conftest import GatewayProcess


def _listed(page: Page) -> set[str]:
    hrefs = page.locator("table[data-rows] tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.href)"
    )
    return {str(href).rsplit("/", 1)[1].split("#")[0] for href in hrefs}


def test_a_messages_trace_names_its_api_and_the_explorer_filters_by_it(
    console_gateway: GatewayProcess, console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    client = anthropic.Anthropic(
        base_url=console_gateway.url, api_key=console_gateway.master_key, max_retries=0
    )
    raw = client.messages.with_raw_response.create(
        model="mock-gpt",
        max_tokens=24,
        system="You answer in one line.",
        messages=[{"role": "user", "content": "What does the gateway record?"}],
    )
    messages_trace = raw.headers["x-steerway-trace-id"]
    chat = console_gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt", messages=[{"role": "user", "content": "and for chat?"}]
    )
    chat_trace = chat.headers["x-steerway-trace-id"]
    for trace_id in (messages_trace, chat_trace):
        console_gateway.database.wait_rows(
            "SELECT 1 FROM ai_interactions WHERE trace_id = :t", t=trace_id
        )

    page = console
    page.goto(f"/admin/traces/{messages_trace}")
    expect(page.locator("h1.route-title")).to_contain_text("/v1/messages")
    expect(page.get_by_text("messages", exact=False).first).to_be_visible()
    expect(page.locator("body")).to_contain_text("messages · finish: ")
    # Sent again as the chat request it was translated into, the body being chat's.
    expect(page.locator("pre", has_text="curl")).to_contain_text("/v1/chat/completions")
    docs_screenshot(page, "trace-messages")

    page.goto("/admin/traces")
    page.locator("details.more-filters summary").click()
    page.locator("input[name=operation][value=messages]").check()
    page.locator("#filters-apply").click()
    page.wait_for_url("**/admin/traces?*operation=messages*")
    listed = _listed(page)
    assert messages_trace in listed
    assert chat_trace not in listed
    docs_screenshot(page, "traces-by-api")
