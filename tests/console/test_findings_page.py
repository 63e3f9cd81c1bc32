"""The Insights page (`/admin/insights`) in a real browser over a planted week
(`tests.telemetry.insights_history`): each section shows what was planted, trace links open the
trace, and a workspace with nothing shows empty states that say what would fill them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from telemetry.db import create_engine
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.console.conftest import off_the_loop
from tests.console.views import look_at_phone_width
from tests.e2e.conftest import GatewayProcess
from tests.telemetry.insights_history import END, START, Planted, plant_insights

RANGE = f"from={START:%Y-%m-%dT%H:%M:%SZ}&to={END:%Y-%m-%dT%H:%M:%SZ}"


@pytest.fixture(scope="module")
def planted(console_gateway: GatewayProcess) -> Planted:
    async def plant() -> Planted:
        engine = create_engine(console_gateway.database.url)
        try:
            return await plant_insights(engine, DEFAULT_WORKSPACE_ID, "ws-elsewhere")
        finally:
            await engine.dispose()

    return off_the_loop(lambda: asyncio.run(plant()))


def test_the_insights_page_shows_each_insight_with_its_evidence(
    planted: Planted, console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    page = console
    page.goto(f"/admin/insights?workspace=default&{RANGE}")
    expect(page.locator("nav.sidebar a[aria-current=page]")).to_have_text("Insights")
    expect(page.locator("h1.page-title")).to_have_text("Insights")
    expect(page.locator("#range-step")).to_have_count(0)
    expect(page.locator(".callout-error")).to_have_count(0)

    suggestion = page.locator("#cheaper-suggestions tbody tr")
    expect(suggestion).to_have_count(1)
    expect(suggestion).to_have_attribute("data-candidate", "gpt-4o-mini")
    expect(suggestion).to_contain_text("$3.86")
    evidence = page.locator("#insight-cheaper details.insight-evidence")
    evidence.locator("summary").click()
    expect(evidence.locator("li[data-verdict=worse]").first).to_contain_text("gpt-4o → cheap-bad")
    expect(evidence.locator("li[data-verdict=not_enough_data]").first).to_contain_text("tiny has 5")
    expect(evidence).to_contain_text("Only solo served this workload")

    repeat = page.locator("#repeat-groups tbody tr")
    expect(repeat).to_have_count(1)
    expect(repeat).to_contain_text("faq")
    expect(repeat.locator("td.num").nth(3)).to_have_text("$0.04")

    flagged = page.locator("#max-tokens-groups tr[data-flagged=true]")
    expect(flagged).to_have_count(1)
    expect(flagged).to_have_attribute("data-model", "summariser")
    expect(flagged).to_contain_text("4,096")
    expect(page.locator("#max-tokens-groups tr[data-model=writer]")).to_have_attribute(
        "data-flagged", "false"
    )

    errors = page.locator("#error-groups tbody tr")
    expect(errors).to_have_count(2)
    expect(errors.first).to_contain_text("Rate limit reached for <id>")
    expect(errors.first.locator("td.num")).to_have_text("6")
    link = errors.first.locator("a.trace-link").first
    trace_id = link.get_attribute("title")
    assert trace_id in planted.rate_limit_traces
    docs_screenshot(page, "insights")
    page.emulate_media(color_scheme="dark")
    docs_screenshot(page, "insights-dark", full_page=False)
    page.emulate_media(color_scheme="light")
    link.click()
    expect(page).to_have_url(f"{page.url.split('/admin/')[0]}/admin/traces/{trace_id}")
    look_at_phone_width(page)


def test_without_a_range_the_page_reads_the_last_week(console: Page) -> None:
    console.goto("/admin/insights")
    assert console.url.endswith("/admin/insights?last=7d")
    expect(console.locator("#range-last")).to_have_value("7d")


def test_a_workspace_with_nothing_says_what_fills_each_section(
    planted: Planted,
    console: Page,
    console_gateway: GatewayProcess,
    docs_screenshot: Callable[..., Path],
) -> None:
    with console_gateway.http() as http:
        made = http.post("/admin/api/workspaces", json={"slug": "quiet", "name": "Quiet"})
        assert made.status_code in (201, 409), made.text
    page = console
    page.goto(f"/admin/insights?workspace=quiet&{RANGE}")
    empty = page.locator(".empty-title")
    expect(empty).to_have_count(4)
    expect(page.locator("#insight-cheaper .empty-text")).to_contain_text("define an evaluator")
    expect(page.locator("#insight-repeats .empty-text")).to_contain_text("store_content")
    expect(page.locator("#insight-max-tokens .empty-text")).to_contain_text("max_tokens")
    expect(page.locator("#insight-errors .empty-title")).to_contain_text("No provider call failed")
    docs_screenshot(page, "insights-empty")
