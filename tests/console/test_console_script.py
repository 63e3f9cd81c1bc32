"""The console's script around a list, in a real browser: keyboard moves, the filter shortcut,
the top bar's auto-submit, auto-refresh in place, local times, and the origin guard itself.

The traces list template is rendered in-process with rows the test chooses and served on the
gateway's origin (the style sheet and script come from the gateway), so these checks do not wait
for the list's query.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.console.conftest import PageWatch
from tests.console.list_page import render_list, sample_rows
from tests.e2e.conftest import GatewayProcess

NEWEST = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def serve_list(page: Page, gateway: GatewayProcess, pages: list[list[dict[str, Any]]]) -> list[str]:
    """Answer `/admin/traces` with the next list of rows on each request; the URLs asked for."""
    asked: list[str] = []

    def answer(route: Route) -> None:
        url = route.request.url
        asked.append(url)
        parts = urlsplit(url)
        rows = pages[min(len(asked), len(pages)) - 1]
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        route.fulfill(
            status=200,
            content_type="text/html; charset=utf-8",
            body=render_list(path, rows, base_url=gateway.url),
        )

    page.route(f"{gateway.url}/admin/traces", answer)
    page.route(f"{gateway.url}/admin/traces?*", answer)
    return asked


def test_keyboard_moves_through_rows_and_opens_one(
    console_gateway: GatewayProcess, sign_in: Callable[..., BrowserContext], page_watch: PageWatch
) -> None:
    page = sign_in(
        viewport={"width": 1280, "height": 800}, timezone_id="America/New_York"
    ).new_page()
    rows = sample_rows(5, newest=NEWEST)
    rows[4]["started_at"] = NEWEST - timedelta(days=2)
    serve_list(page, console_gateway, [rows])
    page.clock.install(time=NEWEST + timedelta(minutes=1))
    page.goto("/admin/traces?model=small")

    # `/` jumps to the filter, Escape leaves it, typing there does not move rows
    page.keyboard.press("/")
    expect(page.locator("#filter-model")).to_be_focused()
    page.keyboard.type("jk")
    expect(page.locator("#filter-model")).to_have_value("jk")
    expect(page.locator("tr.selected")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.locator("#filter-model")).not_to_be_focused()

    table_rows = page.locator("table[data-rows] tbody tr")
    page.keyboard.press("j")
    expect(table_rows.nth(0)).to_have_class("selected")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(table_rows.nth(2)).to_have_class("selected")
    page.keyboard.press("k")
    expect(table_rows.nth(1)).to_have_class("selected")
    expect(table_rows.nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(table_rows.nth(2)).to_have_class("selected")
    expect(page.locator("tr.selected")).to_have_count(1)

    # times in the viewer's zone (New York, UTC-5 in December), UTC kept on hover; a list
    # shows the time of day for today and the date before
    first_time = table_rows.nth(0).locator("time")
    expect(first_time).to_have_text("07:00:00")
    expect(first_time).to_have_attribute(
        "title", "2026-12-06 07:00:00 EST\n2026-12-06 12:00:00.000 UTC"
    )
    expect(table_rows.nth(4).locator("time")).to_have_text("2026-12-04 07:00")

    # Enter opens the selected row's trace (not one there is: the page says so)
    page_watch.expect_error(r"status of 404")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{console_gateway.url}/admin/traces/{rows[2]['trace_id']}"
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")


def test_the_top_bar_submits_itself_and_auto_refresh_updates_the_list_in_place(
    console_gateway: GatewayProcess, sign_in: Callable[..., BrowserContext]
) -> None:
    page = sign_in(viewport={"width": 1280, "height": 800}).new_page()
    first = sample_rows(3, newest=NEWEST)
    arrived = sample_rows(1, newest=NEWEST + timedelta(minutes=1))[0]
    arrived["trace_id"] = "01a24ba30be3ffffffffffffffffffff"
    newer = [arrived, *first]
    asked = serve_list(page, console_gateway, [first, first, first, newer])
    page.clock.install(time=NEWEST + timedelta(minutes=2))
    page.goto("/admin/traces?status=ok")

    # choosing a range reloads the page with it, keeping the filters
    page.get_by_label("Time range").select_option("1h")
    expect(page).to_have_url(f"{console_gateway.url}/admin/traces?status=ok&workspace=&last=1h")
    assert len(asked) == 2
    expect(page.get_by_role("button", name="Apply")).to_be_hidden()  # the script submits

    # with the keyboard, the arrows only choose; Apply (now shown) submits
    page.get_by_label("Time range").focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("button", name="Apply")).to_be_visible()
    assert len(asked) == 2
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{console_gateway.url}/admin/traces?status=ok&workspace=&last=6h")
    page.wait_for_load_state()  # the new page's script listens for keys once it has run
    assert len(asked) == 3

    # auto-refresh: on, in the URL, and the table is replaced without a reload
    toggle = page.locator("[data-auto-refresh]")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("j")
    expect(page.locator("tr.selected")).to_have_count(1)
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(toggle).to_contain_text("10 s")
    query = parse_qs(urlsplit(page.url).query)
    assert query["refresh"] == ["10"] and query["last"] == ["6h"]
    page.evaluate("window.notReloaded = true")
    page.clock.run_for(10_500)
    expect(page.locator("table[data-rows] tbody tr")).to_have_count(4)
    expect(page.locator(f"a[href='/admin/traces/{newer[0]['trace_id']}']")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    assert len(asked) == 4
    # the row that was selected stays selected
    expect(page.locator("tr.selected")).to_have_attribute(
        "data-href", f"/admin/traces/{first[0]['trace_id']}"
    )

    # off again: no more fetches, the URL forgets it
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert "refresh" not in parse_qs(urlsplit(page.url).query)
    page.clock.run_for(30_000)
    assert len(asked) == 4


def test_an_empty_list_shows_the_first_request_to_copy(
    console_gateway: GatewayProcess, sign_in: Callable[..., BrowserContext]
) -> None:
    context = sign_in(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    serve_list(page, console_gateway, [[]])
    page.goto("/admin/traces")
    expect(page.get_by_text("No requests yet.")).to_be_visible()
    page.get_by_role("button", name="Copy curl command").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"curl {console_gateway.url}/v1/chat/completions")
    assert "$STEERWAY_KEY" in copied


def test_a_request_to_another_origin_is_caught(
    console_gateway: GatewayProcess, sign_in: Callable[..., BrowserContext], page_watch: PageWatch
) -> None:
    """The guard every browser test relies on: a page that reaches out is seen and stopped."""
    page = sign_in().new_page()
    page.route(
        f"{console_gateway.url}/admin/reaching-out",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body='<!doctype html><img src="http://example.invalid/pixel.png">',
        ),
    )
    page.goto("/admin/reaching-out")
    page.wait_for_load_state("load")
    assert page_watch.foreign == ["http://example.invalid/pixel.png"]
    assert "request to another origin: http://example.invalid/pixel.png" in page_watch.problems()
    page_watch.foreign.clear()
    page_watch.errors.clear()
