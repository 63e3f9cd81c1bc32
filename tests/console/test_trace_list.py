"""The list pages in a real browser: requests made with the openai SDK with different models and
tags, found on the traces list by model and by tag, one opened with its waterfall and decisions;
the decisions, interactions and guardrail violations pages over the same requests. The pictures
of docs/console.md's list sections are taken here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import GatewayProcess

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class Made:
    """What each request was, by trace id."""

    model: dict[str, str]
    tags: dict[str, list[str]]

    def with_model(self, model: str) -> set[str]:
        return {trace for trace, asked in self.model.items() if asked == model}

    def with_tag(self, tag: str) -> set[str]:
        return {trace for trace, tags in self.tags.items() if tag in tags}


REQUESTS: list[dict[str, Any]] = [
    {"model": "mock-gpt", "tags": ["support"], "user": "customer-17"},
    {"model": "mock-gpt", "tags": ["premium", "billing"], "user": "customer-4821"},
    {"model": "large", "tags": ["batch"], "user": None},
    {"model": "mock-gpt", "tags": ["support"], "user": "customer-17", "stream": True},
    {
        "model": "mock-gpt",
        "tags": ["premium"],
        "user": "customer-9",
        "content": "Draft the launch note for project falcon.",
        "mock": {"fail_models": {"mock-gpt-large": 503}},
    },
    {"model": "large-b", "tags": ["batch"], "user": None},
    {"model": "mock-gpt", "tags": ["premium", "billing"], "user": "customer-4821", "stream": True},
    {"model": "mock-gpt", "tags": ["support"], "user": "customer-3", "mock": {"error": 500}},
]


@pytest.fixture(scope="module")
def made(console_gateway: GatewayProcess) -> Made:
    """The requests above, made with the openai SDK, once the recorder has written them."""
    client = console_gateway.client()
    models: dict[str, str] = {}
    tags: dict[str, list[str]] = {}
    for request in REQUESTS:
        extra_body = {"mock": request["mock"]} if "mock" in request else None
        body: dict[str, Any] = {
            "model": request["model"],
            "messages": [{"role": "user", "content": request.get("content", "Hello there")}],
            "extra_headers": {"x-steerway-tags": ",".join(request["tags"])},
            "extra_body": extra_body,
        }
        if request["user"]:
            body["user"] = request["user"]
        if request.get("stream"):
            raw = client.chat.completions.with_raw_response.create(
                stream=True, stream_options={"include_usage": True}, **body
            )
            for _ in raw.parse():
                pass
        else:
            try:
                raw = client.chat.completions.with_raw_response.create(**body)
            except Exception as error:  # the failing one: its trace id is in the error's headers
                response = getattr(error, "response", None)
                assert response is not None, error
                raw = response
        trace_id = raw.headers["x-steerway-trace-id"]
        models[trace_id] = request["model"]
        tags[trace_id] = list(request["tags"])
    console_gateway.database.wait_rows("SELECT 1 FROM traces", count=len(REQUESTS))
    console_gateway.database.wait_rows("SELECT 1 FROM guardrail_violations", count=1)
    return Made(models, tags)


def listed(page: Page) -> set[str]:
    hrefs = page.locator("table[data-rows] tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.href)"
    )
    return {str(href).rsplit("/", 1)[1].split("#")[0] for href in hrefs}


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_find_traces_by_model_and_tag_and_open_one(
    made: Made,
    console_gateway: GatewayProcess,
    console: Page,
    docs_screenshot: Callable[..., Path],
) -> None:
    page = console
    page.goto("/admin/traces")
    expect(page.locator("nav.sidebar a[aria-current=page]")).to_have_text("Traces")
    assert listed(page) == set(made.model)
    docs_screenshot(page, "traces")

    # by model: typed in the filter bar, sent with Enter; the URL holds only what was chosen
    page.keyboard.press("/")
    expect(page.locator("#filter-model")).to_be_focused()
    page.keyboard.type("large")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/traces?*model=large*")
    assert query_of(page) == {"model": ["large"]}
    assert listed(page) == made.with_model("large")
    expect(page.locator("#filter-model")).to_have_value("large")

    # by tag, from a clean filter bar; then a value in a row filters by itself
    page.locator("#filters-clear").click()
    page.wait_for_url("**/admin/traces")
    page.locator("#filter-tag").fill("premium")
    page.locator("#filters-apply").click()
    page.wait_for_url("**/admin/traces?tag=premium")
    premium = made.with_tag("premium")
    assert listed(page) == premium and len(premium) == 3
    rule_link = page.locator("table[data-rows] a.filter-link", has_text="premium-to-large")
    expect(rule_link.first).to_be_visible()
    rule_link.first.click()
    page.wait_for_url("**rule=premium-to-large**")
    assert query_of(page) == {"tag": ["premium"], "rule": ["premium-to-large"]}
    assert listed(page) == premium

    # the keyboard opens the newest: the waterfall and the decisions, with the rule that matched
    page.keyboard.press("j")
    first = page.locator("table[data-rows] tbody tr").first
    expect(first).to_have_class("selected")
    trace_id = (first.get_attribute("data-href") or "").rsplit("/", 1)[1]
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/admin/traces/{trace_id}")
    expect(page.locator("svg.waterfall")).to_be_visible()
    expect(page.locator("svg.waterfall g.wf-row").first).to_be_visible()
    decisions = page.locator("ol.decisions > li.decision")
    expect(decisions.first).to_be_visible()
    expect(page.locator("ol.decisions")).to_contain_text("premium-to-large")


def test_the_decisions_interactions_and_violations_pages(
    made: Made,
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    page = sign_in(viewport=WIDE).new_page()

    page.goto("/admin/decisions")
    expect(page.locator("svg#path-flow")).to_be_visible()
    expect(page.locator("#paths-total")).to_have_text(str(len(made.model)))
    flow_bars = page.locator("svg#path-flow rect.flow-node")
    expect(flow_bars.first).to_be_visible()
    expect(page.locator("svg#path-flow")).to_contain_text("premium-to-large")
    fallbacks = page.locator("#count-fallback-fell_back")
    expect(fallbacks).to_have_attribute("data-count", "1")
    page.set_viewport_size({"width": 1440, "height": 1560})  # the counts, the flow, the list's top
    docs_screenshot(page, "decisions", full_page=False)
    page.set_viewport_size(WIDE)
    fallbacks.click()
    page.wait_for_url("**type=fallback**")
    expect(page.locator("#decisions-table tbody tr")).to_have_count(1)

    page.goto("/admin/interactions?attempt=2")
    expect(page.locator("#interactions-table tbody tr")).to_have_count(1)
    page.goto("/admin/interactions")
    rows = page.locator("#interactions-table tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() > len(made.model)  # the retried request's attempts are rows of their own
    docs_screenshot(page, "interactions")

    page.goto("/admin/violations")
    expect(page.locator("#violation-counts-table-codenames-log")).to_have_attribute(
        "data-count", "1"
    )
    expect(page.locator("#violations-table tbody tr")).to_have_count(1)
    docs_screenshot(page, "violations")


def test_the_traces_list_in_the_dark_and_on_a_phone(
    made: Made, sign_in: Callable[..., BrowserContext], docs_screenshot: Callable[..., Path]
) -> None:
    page = sign_in(viewport=WIDE, color_scheme="dark").new_page()
    page.goto("/admin/traces")
    expect(page.locator("table[data-rows] tbody tr")).to_have_count(len(made.model))
    docs_screenshot(page, "traces-dark")

    # at phone width the table scrolls sideways inside its panel, the page itself does not
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    scroller = page.locator(".table-scroll").first
    assert scroller.evaluate("node => node.scrollWidth > node.clientWidth")
    docs_screenshot(page, "traces-phone-dark", full_page=False)
    page.emulate_media(color_scheme="light")
    docs_screenshot(page, "traces-phone", full_page=False)
