"""The evaluator pages in a real browser: the empty list, an evaluator made on the editor (a
field's problem shown beside it), requests judged by it (the mock provider as the judge), its
queue and today's counts in the list, then disabled and deleted."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Page, expect

import migrations
from tests.console.conftest import BrowserTestDatabase, PageWatch, console_config, off_the_loop
from tests.e2e.conftest import GatewayProcess, MockProcess


@pytest.fixture(scope="module")
def console_gateway(
    mock_provider: MockProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """The console's gateway, judging in `steerway serve` (the shared one leaves the queue be)."""
    tmp = tmp_path_factory.mktemp("console-evaluators")
    url = f"sqlite:///{tmp / 'steerway.db'}"
    off_the_loop(lambda: migrations.upgrade(url))
    config = console_config(mock_provider)
    config["evaluation"] = {"run_in_serve": True, "poll_interval": 0.2, "refresh_interval": 0.5}
    process = GatewayProcess(
        BrowserTestDatabase(url), config, tmp, master_key="sk-console-" + secrets.token_hex(8)
    )
    try:
        yield process
    finally:
        process.stop()


def ask(gateway: GatewayProcess, count: int) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.master_key, max_retries=0)
    for _ in range(count):
        client.chat.completions.create(
            model="mock-gpt",
            messages=[{"role": "user", "content": "Say hello."}],
            extra_headers={"x-steerway-tags": "judged"},
        )


def test_an_evaluator_is_made_judges_and_is_deleted(
    console_gateway: GatewayProcess,
    console: Page,
    page_watch: PageWatch,
    docs_screenshot: Callable[..., Path],
) -> None:
    page_watch.expect_error(r"status of 400")
    page = console
    page.goto("/admin/quality/evaluators")
    expect(page.locator("#evaluators-empty")).to_contain_text("No evaluators yet")
    expect(page.locator('nav a[aria-current="page"]')).to_have_text("Evaluators")
    docs_screenshot(page, "evaluators-empty")

    page.locator("#new-evaluator-empty").click()
    page.locator("#field-name").fill("Greetings")
    page.locator("#field-condition").fill('{"tags": "judged"')
    page.locator("#field-sampling_rate").fill("1")
    page.locator("#field-judge_model").select_option("mock-gpt")
    page.locator('#field-criteria input[value="tone"]').check()
    page.locator("#field-custom_criteria").fill("brevity: Short and complete.")
    page.locator("#field-daily_cap_usd").fill("1.50")
    page.locator("#save-evaluator").click()
    expect(page.locator("#error-condition")).to_have_text("Is not valid JSON.")
    expect(page.locator("#field-name")).to_have_value("Greetings")
    page.locator("#field-condition").fill('{"tags": "judged"}')
    docs_screenshot(page, "evaluator-editor")
    page.locator("#save-evaluator").click()
    expect(page.locator("#evaluators-notice")).to_contain_text("Evaluator “Greetings” created")
    row = page.locator("#evaluators-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("100 %")
    expect(row).to_contain_text("$0 / $1.50")
    expect(row).to_contain_text('{"tags":"judged"}')
    criteria = row.locator(".tag")
    expect(criteria).to_have_text(["accuracy", "helpfulness", "relevance", "tone", "brevity"])

    time.sleep(1.0)  # the recorder reads the evaluators every few seconds
    deadline = time.monotonic() + 30
    scored = "0"
    while time.monotonic() < deadline:
        ask(console_gateway, 1)
        page.reload()
        scored = (
            page.locator("#evaluators-table tbody tr td[data-ok]").get_attribute("data-ok") or "0"
        )
        if int(scored) >= 2:
            break
        time.sleep(1.0)
    assert int(scored) >= 2
    stored = console_gateway.database.rows(
        "SELECT status, scores FROM evaluations WHERE evaluator_name = 'Greetings'"
    )
    assert stored and all(r["status"] == "ok" for r in stored)
    docs_screenshot(page, "evaluators")

    page.locator("#evaluators-table tbody tr a", has_text="Greetings").click()
    expect(page.locator("#field-custom_criteria")).to_have_value("brevity: Short and complete.")
    page.locator("#field-enabled").uncheck()
    page.locator("#save-evaluator").click()
    expect(page.locator("#evaluators-table tbody tr")).to_contain_text("disabled")

    evaluator_id = page.locator("#evaluators-table tbody tr").get_attribute("data-evaluator-id")
    page.locator(f"#delete-{evaluator_id}").click()
    page.locator("#confirm-delete").click()
    expect(page.locator("#evaluators-notice")).to_contain_text("deleted")
    expect(page.locator("#evaluators-empty")).to_be_visible()
    audit = console_gateway.database.rows(
        "SELECT action FROM audit_log WHERE target_type = 'evaluator' ORDER BY created_at"
    )
    assert [r["action"] for r in audit] == [
        "evaluator.create",
        "evaluator.update",
        "evaluator.delete",
    ]
