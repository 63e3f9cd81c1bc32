"""The trace detail page in a real browser, for a request made with the openai SDK."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import BrowserContext, Page, expect

from admin_ui.formatting import dollars, tokens
from telemetry.schema import money_from_sql
from tests.admin_ui.conftest import workspace_keys
from tests.console.conftest import PageWatch
from tests.e2e.conftest import GatewayProcess

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def steered_stream(gateway: GatewayProcess) -> str:
    """A streamed chat a rule sends to another model, which fails twice (the first try and its
    retry) and falls back to a third that answers, with a guardrail finding."""
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[
            {"role": "system", "content": "You are a terse assistant for the billing team."},
            {"role": "user", "content": "Summarise the invoice for project falcon, please."},
        ],
        stream=True,
        stream_options={"include_usage": True},
        user="customer-4821",
        extra_headers={
            "x-steerway-tags": "premium,billing",
            "x-steerway-metadata": json.dumps({"team": "finance"}),
        },
        extra_body={"mock": {"fail_models": {"mock-gpt-large": 503}}},
    )
    for _ in raw.parse():
        pass
    trace_id = raw.headers["x-steerway-trace-id"]
    database = gateway.database
    database.wait_rows("SELECT 1 FROM ai_interactions WHERE trace_id = :t", count=3, t=trace_id)
    database.wait_rows("SELECT 1 FROM guardrail_violations WHERE trace_id = :t", t=trace_id)
    return trace_id


def rows(gateway: GatewayProcess, sql: str, trace_id: str) -> list[dict[str, Any]]:
    return gateway.database.rows(sql, t=trace_id)


def started_at(gateway: GatewayProcess, trace_id: str) -> datetime:
    (row,) = rows(gateway, "SELECT started_at FROM traces WHERE trace_id = :t", trace_id)
    value = row["started_at"]
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def money_of(gateway: GatewayProcess, trace_id: str) -> Decimal:
    """The answered attempt's cost as the database holds it (integer 1e-10 USD on SQLite)."""
    (row,) = rows(
        gateway,
        "SELECT cost_usd FROM ai_interactions WHERE trace_id = :t AND status = 'ok'",
        trace_id,
    )
    cost = money_from_sql(row["cost_usd"], "sqlite")
    assert cost is not None
    return cost


def test_the_trace_page_of_a_request_made_with_the_sdk(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    trace_id = steered_stream(console_gateway)
    context = sign_in(
        viewport=WIDE,
        timezone_id="Asia/Tokyo",
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    response = page.goto(f"/admin/traces/{trace_id}")
    assert response is not None and response.status == 200
    expect(page).to_have_title(f"Trace …{trace_id[-8:]} · Steerway")
    expect(page.locator('nav.sidebar a[aria-current="page"]')).to_have_text("Traces")

    # the waterfall: one row per recorded span, both provider attempts, hover text with attributes
    spans = rows(console_gateway, "SELECT name FROM spans WHERE trace_id = :t", trace_id)
    waterfall_rows = page.locator("svg.waterfall g.wf-row")
    expect(waterfall_rows).to_have_count(len(spans))
    expect(page.locator("svg.waterfall")).to_be_visible()
    names = page.locator("svg.waterfall text.wf-name").all_text_contents()
    assert sorted(names) == sorted(row["name"] for row in spans)
    assert names[0] == "gateway.request" and names.count("provider.chat") == 3
    hover = page.locator("svg.waterfall g.wf-row title").all_text_contents()
    provider_hover = [text for text in hover if text.startswith("provider.chat")]
    assert any("gen_ai.request.model = mock-gpt-large-b" in text for text in provider_hover)
    assert any("first token: +" in text for text in provider_hover)
    expect(page.locator("svg.waterfall rect.wf-bar-error")).to_have_count(2)

    # decisions in order, the rule that matched and what it changed, the retry
    decisions = rows(
        console_gateway,
        "SELECT type FROM decisions WHERE trace_id = :t ORDER BY sequence",
        trace_id,
    )
    listed = page.locator("ol.decisions > li.decision")
    expect(listed).to_have_count(len(decisions))
    sequence = [
        int(text) for text in page.locator("ol.decisions .decision-seq").all_text_contents()
    ]
    assert sequence == list(range(1, len(decisions) + 1))
    decisions_text = page.locator("ol.decisions").inner_text()
    assert "Premium traffic to the large model (premium-to-large)" in decisions_text
    assert 'tags contains "premium"' in decisions_text
    assert "Retry" in decisions_text and "Model selection" in decisions_text
    assert "Fallback" in decisions_text and "trying fallback 'large-b'" in decisions_text
    expect(page.locator("table.candidates tr.chosen").first).to_contain_text("(chosen)")

    # the interactions: two failed attempts and the answer, with tokens and content
    attempts = page.locator("article.interaction")
    expect(attempts).to_have_count(3)
    expect(attempts.nth(0)).to_contain_text("HTTP 503")
    expect(attempts.nth(1)).to_contain_text("HTTP 503")
    (answered,) = rows(
        console_gateway,
        "SELECT prompt_tokens, completion_tokens FROM ai_interactions "
        "WHERE trace_id = :t AND status = 'ok'",
        trace_id,
    )
    metrics = attempts.nth(2).locator("dl.metrics")
    expect(metrics.locator("div", has_text="Prompt tokens").locator("dd")).to_have_text(
        tokens(answered["prompt_tokens"])
    )
    expect(metrics.locator("div", has_text="Completion tokens").locator("dd")).to_have_text(
        tokens(answered["completion_tokens"])
    )
    expect(metrics.locator("div", has_text="Time to first token").locator("dd")).to_contain_text(
        " ms"
    )
    expect(attempts.nth(2)).to_contain_text("Summarise the invoice for project falcon")
    cost = money_of(console_gateway, trace_id)
    assert cost > 0
    expect(metrics.locator("div", has_text="Cost").locator("dd")).to_have_text(dollars(cost))
    expect(page.locator("dl.facts div", has_text="Cost").locator("dd")).to_have_text(dollars(cost))

    expect(page.locator("#violations-heading + *, #violations-heading ~ *").first).to_be_visible()
    expect(page.locator("section[aria-labelledby=violations-heading] table")).to_contain_text(
        "codenames"
    )

    # times in the viewer's zone, UTC on hover
    moment = started_at(console_gateway, trace_id)
    header_time = page.locator(".subtitle time").first
    tokyo = (moment + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
    expect(header_time).to_have_text(f"{tokyo} GMT+9")
    expect(header_time).to_have_attribute(
        "title", moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"
    )

    # the page in both themes for the docs, before anything on it is clicked
    docs_screenshot(page, "trace-light")
    page.emulate_media(color_scheme="dark")
    docs_screenshot(page, "trace-dark")
    page.emulate_media(color_scheme="light")

    # copy buttons: the whole id, and the curl command without any key
    copy_id = page.get_by_role("button", name="Copy trace id")
    copy_id.click()
    expect(copy_id).to_have_text("copied")
    assert page.evaluate("navigator.clipboard.readText()") == trace_id
    page.get_by_role("button", name="Copy curl command").click()
    curl = page.evaluate("navigator.clipboard.readText()")
    assert curl == page.locator("#curl-command").inner_text()
    assert curl.startswith(f"curl {console_gateway.url}/v1/chat/completions")
    assert (
        '"Authorization: Bearer $STEERWAY_KEY"' in curl
        and "x-steerway-tags: premium,billing" in curl
    )
    assert console_gateway.master_key not in page.content()

    simulate = page.locator("a[data-simulator]").get_attribute("href") or ""
    query = parse_qs(urlsplit(simulate).query)
    assert urlsplit(simulate).path == "/admin/rules/simulate"
    assert json.loads(query["request"][0])["model"] == "mock-gpt"
    assert query["tags"] == ["premium", "billing"]

    # at phone width: no sideways scrolling, the navigation folds into a strip
    expect(copy_id).to_have_text("copy")  # back from "copied" before the pictures
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.locator("nav.sidebar .nav-heading").first).to_be_hidden()
    expect(page.locator("nav.sidebar a[aria-current=page]")).to_be_visible()
    docs_screenshot(page, "trace-phone-light", full_page=False)
    page.emulate_media(color_scheme="dark")
    docs_screenshot(page, "trace-phone-dark", full_page=False)


def test_another_workspaces_trace_is_a_404_page(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    page_watch: PageWatch,
    docs_screenshot: Callable[..., Path],
) -> None:
    _, admin, _ = workspace_keys(console_gateway, "browser")
    raw = console_gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt", messages=[{"role": "user", "content": "not yours"}]
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    console_gateway.database.wait_rows("SELECT 1 FROM traces WHERE trace_id = :t", t=trace_id)
    page_watch.expect_error(r"status of 404")
    page = sign_in(admin, viewport=WIDE).new_page()
    response = page.goto(f"/admin/traces/{trace_id}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.locator(".error-status")).to_have_text("404")
    expect(page.locator("nav.sidebar")).to_be_visible()
    assert "not yours" not in page.content() and "mock-gpt" not in page.content()
    docs_screenshot(page, "not-found", full_page=False)


def test_the_page_works_without_javascript(
    console_gateway: GatewayProcess, sign_in: Callable[..., BrowserContext]
) -> None:
    raw = console_gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt", messages=[{"role": "user", "content": "plain html"}]
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    console_gateway.database.wait_rows(
        "SELECT 1 FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    page: Page = sign_in(java_script_enabled=False, viewport=WIDE).new_page()
    response = page.goto(f"/admin/traces/{trace_id}")
    assert response is not None and response.status == 200
    # times stay in UTC, copy buttons stay out of the way, the top bar submits with a button
    expect(page.locator(".subtitle time").first).to_have_text(
        f"{started_at(console_gateway, trace_id):%Y-%m-%d %H:%M:%S} UTC"
    )
    expect(page.locator("button.copy").first).to_be_hidden()
    expect(page.get_by_role("button", name="Apply")).to_be_visible()
    expect(page.locator("svg.waterfall")).to_be_visible()
    page.get_by_text("Spans as a table").click()
    expect(page.locator("details.spans-table table")).to_be_visible()
    expect(page.locator("#curl-command")).to_contain_text("$STEERWAY_KEY")
