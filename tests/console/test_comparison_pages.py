"""Comparisons in the console, in a real browser: the form, the confirmation page with the
estimate (nothing runs before it is confirmed), and the comparison's page once both variants
were replayed and judged; by keyboard."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from tests.console.conftest import PageWatch
from tests.console.test_evaluate_pages import an_evaluator, chat
from tests.console.views import keyboard_to, look_at
from tests.e2e.conftest import GatewayProcess, MockProcess

WIDE = {"width": 1440, "height": 900}


def test_a_comparison_is_estimated_confirmed_and_shown(
    console_gateway: GatewayProcess,
    mock_provider: MockProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    evaluator_id = an_evaluator(console_gateway)
    tag = f"compare-{secrets.token_hex(3)}"
    asked = [chat(console_gateway, tag, f"Which colour is number {n}?") for n in range(6)]
    page = sign_in(viewport=WIDE).new_page()
    page.goto("/admin/quality/comparisons")
    expect(page.get_by_role("heading", name="Comparisons", exact=True)).to_be_visible()
    expect(page.locator(".empty-title").first).to_have_text("No comparisons yet.")
    page.locator("#field-name").fill("Small vs large-b")
    page.locator("#field-filters").fill(f"tag={tag}&last=1h")
    page.locator("#field-evaluator").select_option(evaluator_id)
    page.locator("#field-a-model").select_option("mock-gpt")
    page.locator("#field-b-model").select_option("large-b")
    page.locator("#field-b-system").fill("Answer in one short sentence.")
    docs_screenshot(page, "comparisons-empty")
    page.locator("#field-b-system").focus()
    keyboard_to(page, "#estimate-comparison")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Small vs large-b")).to_be_visible()
    expect(page.locator("#fact-requests")).to_have_text("6")
    expect(page.locator("#estimate-a")).to_contain_text("mock-gpt")
    expect(page.locator("#estimate-b")).to_contain_text("Answer in one short sentence.")
    expect(page.locator("#estimate-total")).to_contain_text("$0.")
    before = mock_provider.stats()["requests_by_model"]
    assert console_gateway.database.rows("SELECT 1 FROM comparisons") == []
    look_at(page, docs_screenshot, "comparison-confirm", pictures=("light",))

    page.locator("#confirm-comparison").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#comparison-status")).to_be_visible()
    console_gateway.database.wait_rows(
        "SELECT 1 FROM comparisons WHERE status = 'done'", count=1, timeout=60.0
    )
    page.reload()
    expect(page.locator("#comparison-status")).to_have_text("done")
    after = mock_provider.stats()["requests_by_model"]
    assert after.get("mock-gpt", 0) - before.get("mock-gpt", 0) == 6
    assert after.get("mock-gpt-large-b", 0) - before.get("mock-gpt-large-b", 0) >= 6
    rows = page.locator("#results-table tbody tr")
    expect(rows).to_have_count(6)
    shown = {rows.nth(n).get_attribute("data-trace-id") for n in range(6)}
    assert shown == set(asked)
    expect(page.locator("#summary-a")).to_contain_text("mock-gpt")
    expect(page.locator("#comparison-verdict")).to_contain_text("Paired over the")
    expect(page.locator("#results-table a.replay-b")).to_have_count(6)
    look_at(page, docs_screenshot, "comparison", pictures=("light", "dark"))

    page.locator("#results-table a.replay-a").first.click()
    expect(page.locator("body")).to_contain_text("mock-gpt")
    page.goto("/admin/quality/comparisons")
    expect(page.locator("#comparisons-table tbody tr")).to_have_count(1)
    docs_screenshot(page, "comparisons")


def test_a_refused_form_says_why(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    page_watch: PageWatch,
) -> None:
    page_watch.expect_error(r"status of 400")
    evaluator_id = an_evaluator(console_gateway)
    page = sign_in(viewport=WIDE).new_page()
    page.goto(
        "/admin/quality/comparisons/new?filters=tag%3Dnothing-here&a_model=mock-gpt"
        f"&b_model=mock-gpt&evaluator={evaluator_id}"
    )
    expect(page.locator("#comparison-error")).to_contain_text("the two variants are the same")
    expect(page.locator("#field-filters")).to_have_value("tag=nothing-here")
    assert console_gateway.database.rows("SELECT 1 FROM comparisons WHERE name = ''") == []
