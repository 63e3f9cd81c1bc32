"""Evaluating on demand from the console, in a real browser: the Evaluate box of a trace's page
and the explorer's "Evaluate these…" with its confirmation page, by keyboard; and the empty
state where a workspace has no evaluator."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from tests.admin_ui.evaluation_seed import evaluator, on_database, stored
from tests.console.conftest import PageWatch, off_the_loop
from tests.console.views import keyboard_to, look_at
from tests.console_users import create_user
from tests.console_users import sign_in as sign_in_as
from tests.e2e.conftest import GatewayProcess
from tests.telemetry.evaluation.on_demand_rows import add_workspace, answered

DEFAULT_WORKSPACE = "00000000000000000000000000000000"
WIDE = {"width": 1440, "height": 900}


def chat(gateway: GatewayProcess, tag: str, question: str) -> str:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": question}],
        extra_headers={"x-steerway-tags": tag},
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    gateway.database.wait_rows("SELECT 1 FROM ai_interactions WHERE trace_id = :t", t=trace_id)
    return trace_id


def queued(gateway: GatewayProcess, evaluator_id: str) -> list[dict[str, Any]]:
    return gateway.database.rows(
        "SELECT trace_id, status, reason FROM evaluation_queue WHERE evaluator_id = :e",
        e=evaluator_id,
    )


def an_evaluator(gateway: GatewayProcess, workspace_id: str = DEFAULT_WORKSPACE) -> str:
    name = f"accuracy-{secrets.token_hex(3)}"
    return off_the_loop(
        lambda: evaluator(gateway.database.url, workspace_id, name, judge="large-b")
    )


def test_a_trace_is_evaluated_from_its_page_with_the_keyboard(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    evaluator_id = an_evaluator(console_gateway)
    trace_id = chat(console_gateway, "single", "What is two plus two?")
    page = sign_in(viewport=WIDE).new_page()
    page.goto(f"/admin/traces/{trace_id}")

    box = page.locator("#evaluate")
    expect(box.get_by_role("heading", name="Evaluate")).to_be_visible()
    page.locator("#evaluate-evaluator").select_option(evaluator_id)
    page.locator("#evaluate-evaluator").focus()
    keyboard_to(page, "#evaluate-submit")
    page.keyboard.press("Enter")

    notice = page.locator("#evaluate-notice")
    expect(notice).to_contain_text("Queued 1 answer for")
    assert page.url.endswith("#evaluate")
    assert queued(console_gateway, evaluator_id) == [
        {"trace_id": trace_id, "status": "pending", "reason": "on_demand"}
    ]
    box.scroll_into_view_if_needed()
    docs_screenshot(page, "evaluate-trace")


def test_the_explorer_evaluates_its_traces_only_after_the_confirmation(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    evaluator_id = an_evaluator(console_gateway)
    tag = f"batch-{secrets.token_hex(3)}"
    asked = [chat(console_gateway, tag, f"Question {n}?") for n in range(3)]
    bare = answered(DEFAULT_WORKSPACE, stored=False, model="mock-gpt")
    bare.trace.tags = [tag]
    off_the_loop(lambda: stored(console_gateway.database.url, bare))
    page = sign_in(viewport=WIDE).new_page()
    page.goto(f"/admin/traces?tag={tag}")
    expect(page.locator("#traces-table tbody tr")).to_have_count(4)
    docs_screenshot(page, "traces-evaluate-these", full_page=False)

    keyboard_to(page, "#evaluate-these")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Evaluate these traces")).to_be_visible()
    expect(page.locator("#set-filters")).to_contain_text(f"tag={tag}")
    page.locator("#field-evaluator").select_option(evaluator_id)
    page.locator("#estimate-button").click()
    expect(page.locator("#fact-traces")).to_have_text("4")
    expect(page.locator("#fact-answers")).to_have_text("3")
    expect(page.locator("#fact-skipped")).to_contain_text("1")
    expect(page.locator("#fact-cost")).to_contain_text("$0.")
    assert queued(console_gateway, evaluator_id) == []  # nothing before the confirmation
    look_at(page, docs_screenshot, "evaluate-traces", pictures=("light", "dark"))

    page.locator("#confirm-queue").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#evaluate-notice")).to_contain_text("Queued 3 answers for")
    expect(page.locator("#evaluate-notice")).to_contain_text("1 without stored content skipped")
    rows = queued(console_gateway, evaluator_id)
    assert sorted(r["trace_id"] for r in rows) == sorted(asked)
    docs_screenshot(page, "evaluate-traces-queued")

    expect(page.locator("#confirm-form")).to_have_count(0)  # queued: no second button
    page.locator("#back-to-traces").click()
    assert f"tag={tag}" in page.url and "/admin/traces?" in page.url


def test_a_workspace_without_evaluators_says_how_to_make_one(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    slug = f"empty-{secrets.token_hex(3)}"
    workspace_id = off_the_loop(
        lambda: on_database(console_gateway.database.url, lambda e: add_workspace(e, slug))
    )
    bundle = answered(workspace_id)
    off_the_loop(lambda: stored(console_gateway.database.url, bundle))
    page = sign_in(viewport=WIDE).new_page()

    page.goto(f"/admin/traces/{bundle.trace.trace_id}")
    expect(page.locator("#evaluate-empty")).to_contain_text("docs/quality.md")
    expect(page.locator("#evaluate-form")).to_have_count(0)

    page.goto(f"/admin/traces/evaluate?workspace={slug}")
    expect(page.get_by_text("No evaluators yet.")).to_be_visible()
    expect(page.locator("#confirm-form")).to_have_count(0)
    docs_screenshot(page, "evaluate-traces-empty")


def test_a_viewer_is_offered_no_evaluation(
    console_gateway: GatewayProcess, open_context: Callable[..., BrowserContext]
) -> None:
    an_evaluator(console_gateway)
    trace_id = chat(console_gateway, "viewed", "Who may evaluate?")
    viewer = off_the_loop(lambda: create_user(console_gateway.database.url, role="viewer"))
    session = off_the_loop(lambda: sign_in_as(console_gateway.url, viewer))
    context = open_context(viewport=WIDE)
    context.add_cookies([session.browser_cookie()])
    page = context.new_page()

    page.goto("/admin/traces?tag=viewed")
    expect(page.locator("#traces-table")).to_be_visible()
    expect(page.locator("#evaluate-these")).to_have_count(0)
    expect(page.locator("#compare-these")).to_have_count(0)
    page.goto(f"/admin/traces/{trace_id}")
    expect(page.get_by_role("heading", name="Interactions")).to_be_visible()
    expect(page.locator("#evaluate")).to_have_count(0)
    page.goto("/admin/traces/evaluate?tag=viewed")
    expect(page.locator("#cannot-queue")).to_be_visible()
    expect(page.locator("#confirm-form")).to_have_count(0)


def test_a_filter_the_explorer_refuses_is_shown_with_the_way_back(
    console_gateway: GatewayProcess, console: Page, page_watch: PageWatch
) -> None:
    an_evaluator(console_gateway)
    page_watch.expect_error("status of 400")
    response = console.goto("/admin/traces/evaluate?status=sideways&model=mock-gpt")
    assert response is not None and response.status == 400
    expect(console.locator("#set-error")).to_contain_text("status")
    expect(console.locator("#confirm-form")).to_have_count(0)
    console.locator("#change-filters").click()
    assert "/admin/traces?" in console.url and "status=sideways" in console.url
    odd = console.goto("/admin/traces/evaluate?queued=%C2%B2&running=0&skipped=0")
    assert odd is not None and odd.status == 200
    expect(console.locator("#evaluate-notice")).to_have_count(0)
