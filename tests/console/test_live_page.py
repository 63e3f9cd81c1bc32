"""The live page in a real browser: requests made with the openai SDK while it is open appear,
pause holds them back, filters reconnect and stay in the URL, a refused filter is explained."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import PageWatch
from tests.e2e.conftest import GatewayProcess

HELLO = [{"role": "user", "content": "hi"}]


def chat(gateway: GatewayProcess, model: str = "mock-gpt", **extra: Any) -> str:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model=model, messages=HELLO, **extra
    )
    return str(raw.headers["x-steerway-trace-id"])


def test_requests_appear_while_the_page_is_open(
    console_gateway: GatewayProcess, console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    page = console
    response = page.goto("/admin/live")
    assert response is not None and response.status == 200
    expect(page).to_have_title("Live · Steerway")
    expect(page.locator('nav.sidebar a[aria-current="page"]')).to_have_text("Live")
    state = page.locator("[data-live-state]")
    expect(state).to_have_attribute("data-live-state", "live")
    expect(page.locator("[data-live-empty]")).to_be_visible()

    first = chat(console_gateway, user="customer-4821")
    row = page.locator(f'tr[data-trace-id="{first}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("mock-gpt")
    expect(row).to_contain_text("master key")
    expect(row).to_contain_text("customer-4821")
    expect(row.locator(".badge")).to_have_text("ok")
    expect(row.locator("a")).to_have_attribute("href", f"/admin/traces/{first}")
    expect(page.locator("[data-live-empty]")).to_be_hidden()
    expect(page.locator('[data-stat="requests"]')).to_have_text("1")
    expect(page.locator('[data-stat="error_rate"]')).to_have_text("0.0")

    # Paused, new rows wait (and are counted); resumed, they are drawn.
    pause = page.locator("[data-live-pause]")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")
    held = chat(console_gateway)
    expect(pause).to_contain_text("Resume · 1 new")
    expect(page.locator(f'tr[data-trace-id="{held}"]')).to_have_count(0)
    pause.click()
    expect(page.locator(f'tr[data-trace-id="{held}"]')).to_be_visible()
    expect(page.locator("[data-live-rows] tr").first).to_have_attribute("data-trace-id", held)

    # A refused request and a streamed one, as the rows of a busier gateway look.
    with pytest.raises(openai.NotFoundError) as refused:
        chat(console_gateway, model="no-such-model", user="customer-17")
    denied = refused.value.response.headers["x-steerway-trace-id"]
    streamed = console_gateway.client().chat.completions.with_raw_response.create(
        model="large", messages=HELLO, stream=True, user="customer-4821"
    )
    for _ in streamed.parse():
        pass
    expect(page.locator(f'tr[data-trace-id="{denied}"] .badge')).to_have_text("denied")
    streamed_row = page.locator(f'tr[data-trace-id="{streamed.headers["x-steerway-trace-id"]}"]')
    expect(streamed_row).to_contain_text("stream")
    docs_screenshot(page, "live")

    # A filter reconnects the stream and stays in the page's URL.
    page.get_by_label("Model").fill("large")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/admin/live\?model=large$"))
    expect(state).to_have_attribute("data-live-state", "live")
    ignored = chat(console_gateway, model="mock-gpt")
    shown = chat(console_gateway, model="large")
    expect(page.locator(f'tr[data-trace-id="{shown}"]')).to_be_visible()
    expect(page.locator("[data-live-rows] tr")).to_have_count(1)
    expect(page.locator(f'tr[data-trace-id="{ignored}"]')).to_have_count(0)

    # The URL is the state: opened again, the page keeps the filter.
    page.reload()
    expect(page.get_by_label("Model")).to_have_value("large")
    expect(state).to_have_attribute("data-live-state", "live")


def test_a_refused_filter_is_explained(console: Page, page_watch: PageWatch) -> None:
    page_watch.expect_error(r"status of 400|MIME type|EventSource")
    page = console
    page.goto("/admin/live?status=bogus")
    state = page.locator("[data-live-state]")
    expect(state).to_have_attribute("data-live-state", "error")
    expect(state).to_contain_text("'status' takes ok, error, cancelled, denied")
