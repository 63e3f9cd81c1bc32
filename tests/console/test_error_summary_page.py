"""The Insights page's **Summarise** button in a real browser: a gateway whose
`evaluation.error_summary_model` is served by the mock provider writes one error group's summary
on demand (a POST with the console's CSRF token), the page shows it on later loads without
asking again, and the call is recorded as an evaluation trace."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

import migrations
from telemetry.db import create_engine
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.console.conftest import BrowserTestDatabase, console_config, off_the_loop
from tests.console.views import WIDE
from tests.console_users import create_user
from tests.console_users import sign_in as sign_in_as
from tests.e2e.conftest import GatewayProcess, MockProcess
from tests.telemetry.insights_history import END, START, plant_insights

SUMMARY_CALLS = (
    "SELECT i.purpose, i.requested_model FROM traces t JOIN ai_interactions i "
    "ON i.trace_id = t.trace_id WHERE t.source = 'evaluation' AND i.requested_model = 'mock-gpt'"
)
RANGE = f"from={START:%Y-%m-%dT%H:%M:%SZ}&to={END:%Y-%m-%dT%H:%M:%SZ}"


@pytest.fixture(scope="module")
def console_gateway(
    mock_provider: MockProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("console-error-summaries")
    url = f"sqlite:///{tmp / 'steerway.db'}"
    off_the_loop(lambda: migrations.upgrade(url))
    config = console_config(mock_provider)
    config["evaluation"] = {"run_in_serve": False, "error_summary_model": "mock-gpt"}
    process = GatewayProcess(
        BrowserTestDatabase(url), config, tmp, master_key="sk-console-" + secrets.token_hex(8)
    )

    async def plant() -> None:
        engine = create_engine(url)
        try:
            await plant_insights(engine, DEFAULT_WORKSPACE_ID, "ws-elsewhere")
        finally:
            await engine.dispose()

    off_the_loop(lambda: asyncio.run(plant()))
    try:
        yield process
    finally:
        process.stop()


def test_a_group_is_summarised_on_demand_and_shown_afterwards(
    console_gateway: GatewayProcess, console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    page = console
    page.goto(f"/admin/insights?workspace=default&{RANGE}")
    rows = page.locator("#error-groups tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.locator("form.error-summarise button")).to_have_count(2)
    expect(page.locator(".error-summary")).to_have_count(0)
    fingerprint = rows.first.get_attribute("data-fingerprint")

    rows.first.locator("form.error-summarise button").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**#insight-errors")
    assert "workspace=default" in page.url and "from=" in page.url
    first = page.locator(f'#error-groups tr[data-fingerprint="{fingerprint}"]')
    expect(first.locator(".error-summary-text")).to_have_text("mock")
    expect(first.locator("form.error-summarise")).to_have_count(0)
    expect(page.locator("#error-groups form.error-summarise")).to_have_count(1)
    picture = docs_screenshot(page, "insights-error-summary")
    page.locator("#insight-errors").screenshot(
        path=str(picture.with_name("error-summary-panel.png"))
    )

    judged = console_gateway.database.rows(SUMMARY_CALLS)
    for _ in range(50):  # the recorder writes within its flush interval
        if judged:
            break
        page.wait_for_timeout(100)
        judged = console_gateway.database.rows(SUMMARY_CALLS)
    assert [(r["purpose"], r["requested_model"]) for r in judged] == [("evaluation", "mock-gpt")]

    page.reload()  # a later load shows the kept summary and asks nothing
    expect(first.locator(".error-summary-text")).to_have_text("mock")
    count = console_gateway.database.rows(
        "SELECT count(*) AS n FROM traces WHERE source = 'evaluation' "
        "AND requested_model = 'mock-gpt'"
    )
    assert count[0]["n"] == 1


def test_a_post_without_the_csrf_token_is_refused(
    console_gateway: GatewayProcess, console: Page
) -> None:
    console.goto(f"/admin/insights?workspace=default&{RANGE}")
    fingerprint = console.locator("#error-groups tbody tr").first.get_attribute("data-fingerprint")
    answer = console.request.post(
        f"/admin/insights/errors/{fingerprint}/summary?workspace=default&{RANGE}",
        form={"csrf_token": "wrong"},
        max_redirects=0,
    )
    assert answer.status == 403, answer.text()
    assert "CSRF token" in answer.text()


def test_a_viewer_has_no_button_and_is_refused(
    console_gateway: GatewayProcess, sign_in: Callable[..., BrowserContext]
) -> None:
    viewer = off_the_loop(
        lambda: create_user(
            console_gateway.database.url, email="summary-viewer@example.com", role="viewer"
        )
    )
    session = off_the_loop(lambda: sign_in_as(console_gateway.url, viewer))
    context = sign_in(viewport=WIDE)
    context.clear_cookies()
    context.add_cookies([session.browser_cookie()])
    page = context.new_page()
    page.goto(f"/admin/insights?workspace=default&{RANGE}")
    rows = page.locator("#error-groups tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("form.error-summarise")).to_have_count(0)
    fingerprint = rows.first.get_attribute("data-fingerprint")
    calls = len(console_gateway.database.rows(SUMMARY_CALLS))
    with session.client() as http:
        refused = http.post(
            f"/admin/insights/errors/{fingerprint}/summary?workspace=default&{RANGE}"
        )
    assert refused.status_code == 403
    assert "cannot queue evaluations" in refused.text  # the role, not a missing token
    assert len(console_gateway.database.rows(SUMMARY_CALLS)) == calls
