"""Comparisons reached from the traces explorer, and a running comparison's page, in a real
browser: "Compare…" opens the form with the explorer's filters filled in; a running
comparison's page says it updates itself and does, until the comparison ends, then stops."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from playwright.sync_api import BrowserContext, expect

from tests.console.test_evaluate_pages import an_evaluator, chat
from tests.console.views import keyboard_to, look_at
from tests.e2e.conftest import GatewayProcess

WIDE = {"width": 1440, "height": 900}


def write(gateway: GatewayProcess, sql: str, **params: Any) -> None:
    """Change the console gateway's SQLite database as a comparison's runner would."""
    path = gateway.database.url.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=10) as conn:
        conn.execute(sql, params)


def test_compare_from_the_explorer_fills_in_its_filters(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    evaluator_id = an_evaluator(console_gateway)
    tag = f"explore-{secrets.token_hex(3)}"
    for n in range(3):
        chat(console_gateway, tag, f"Which animal is number {n}?")
    chat(console_gateway, "someone-else", "Not in the set.")
    page = sign_in(viewport=WIDE).new_page()
    page.goto(f"/admin/traces?tag={tag}&last=1h")
    link = page.locator("#compare-these")
    expect(link).to_have_text("Compare…")
    expect(page.locator("#evaluate-these")).to_be_visible()
    docs_screenshot(page, "traces-compare", full_page=False)
    page.locator("#evaluate-these").focus()
    keyboard_to(page, "#compare-these")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Comparisons", exact=True)).to_be_visible()
    assert urlsplit(page.url).path == "/admin/quality/comparisons"
    filters = page.locator("#field-filters").input_value()
    assert sorted(parse_qsl(filters)) == sorted([("tag", tag), ("last", "1h")])
    page.locator("#field-evaluator").select_option(evaluator_id)
    page.locator("#field-b-model").select_option("large-b")
    page.locator("#estimate-comparison").click()
    expect(page.locator("#fact-requests")).to_have_text("3")
    assert console_gateway.database.rows("SELECT 1 FROM comparisons") == []


def test_a_running_comparisons_page_updates_itself_until_it_ends(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    evaluator_id = an_evaluator(console_gateway)
    tag = f"live-{secrets.token_hex(3)}"
    for n in range(3):
        chat(console_gateway, tag, f"Which fruit is number {n}?")
    with console_gateway.http() as admin:
        started = admin.post(
            "/admin/api/comparisons",
            json={
                "evaluator_id": evaluator_id,
                "filter": {"tag": tag},
                "variants": {"a": {"model": "mock-gpt"}, "b": {"model": "large-b"}},
                "name": "Live page",
                "confirm": True,
            },
        )
    assert started.status_code == 202, started.text
    comparison_id = started.json()["id"]
    [ended] = console_gateway.database.wait_rows(
        "SELECT results, completed, finished_at FROM comparisons"
        " WHERE comparison_id = :c AND status = 'done'",
        timeout=60.0,
        c=comparison_id,
    )
    results = (
        ended["results"] if isinstance(ended["results"], str) else json.dumps(ended["results"])
    )
    assert ended["completed"] == 3
    # Back to running, under another process's lease that has not run out: as the page sees a
    # comparison a runner is working through.
    write(
        console_gateway,
        "UPDATE comparisons SET status = 'running', completed = 0, results = '[]',"
        " finished_at = NULL, claimed_by = :owner, claimed_until = '2999-01-01 00:00:00.000000'"
        " WHERE comparison_id = :c",
        owner="f" * 32,
        c=comparison_id,
    )
    page = sign_in(viewport=WIDE).new_page()
    page.goto(f"/admin/quality/comparisons/{comparison_id}")
    expect(page.locator("#comparison-status")).to_have_text("running")
    live = page.locator("#comparison-live")
    expect(live).to_have_text(
        "Running: this page updates itself every 2 s until the comparison ends."
    )
    expect(page.locator("#cancel-run")).to_be_visible()
    look_at(page, docs_screenshot, "comparison-running", pictures=("light",))

    write(
        console_gateway,
        "UPDATE comparisons SET completed = 1 WHERE comparison_id = :c",
        c=comparison_id,
    )
    expect(page.locator(".subtitle")).to_contain_text("1 compared of 3 requests", timeout=10_000)
    write(
        console_gateway,
        "UPDATE comparisons SET status = 'done', completed = 3, results = :r,"
        " finished_at = :f, claimed_until = NULL WHERE comparison_id = :c",
        r=results,
        f=str(ended["finished_at"]),
        c=comparison_id,
    )
    expect(page.locator("#comparison-status")).to_have_text("done", timeout=10_000)
    expect(live).to_have_count(0)
    expect(page.locator("#cancel-run")).to_have_count(0)
    expect(page.locator("#results-table tbody tr")).to_have_count(3)
    # Ended: no more refreshes.
    refreshed = page.locator("main").get_attribute("data-refreshed")
    time.sleep(4.5)
    assert page.locator("main").get_attribute("data-refreshed") == refreshed
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
