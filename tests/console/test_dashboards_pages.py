"""Saved dashboards in a real browser: a dashboard made in the panel editor with two panels (the
second added, typed and moved with the keyboard alone), saved, drawn with both charts over
recorded traffic, edited, and deleted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import off_the_loop
from tests.console.views import keyboard_to, look_at
from tests.e2e.conftest import GatewayProcess


def some_traffic(gateway: GatewayProcess) -> None:
    """A few requests, recorded into the roll-ups the charts read."""
    client = gateway.client()
    for model in ("mock-gpt", "mock-gpt", "large"):
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "a dashboard's worth of traffic"}]
        )
    rows = off_the_loop(
        lambda: gateway.database.wait_rows(
            "SELECT requests FROM usage_rollups WHERE grain = 'minute'", count=2
        )
    )
    assert rows, "the recorder wrote no roll-ups"


def test_a_dashboard_is_made_in_the_editor_drawn_edited_and_deleted(
    console_gateway: GatewayProcess, console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    some_traffic(console_gateway)
    page = console
    page.goto("/admin/dashboards")
    expect(page.locator("#dashboards-empty")).to_be_visible()
    expect(page.locator("#builtin-list li")).to_have_count(8)
    page.locator("#new-dashboard-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New dashboard")

    page.locator("#field-name").fill("Traffic and spend")
    page.locator("#field-panel-0-title").fill("Requests by model")
    page.locator("#field-panel-0-group_by_1").select_option("model")

    # the second panel with the keyboard alone: add it, type it, move it to the top
    keyboard_to(page, "#add-panel")
    page.keyboard.press("Enter")
    title = page.locator("#field-panel-1-title")
    expect(title).to_be_focused()
    page.keyboard.type("Cost by provider")
    for _ in range(2):  # back past Remove to Up (Down is off on the last panel)
        page.keyboard.press("Shift+Tab")
    expect(page.locator("#edit-panel-1-up")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#field-panel-0-title")).to_have_value("Cost by provider")
    expect(page.locator("#edit-panel-0-down")).to_be_focused()
    page.locator("#field-panel-0-metric").select_option("cost")
    page.locator("#field-panel-0-chart").select_option("bar")
    page.locator("#field-panel-0-group_by_1").select_option("provider")
    look_at(page, docs_screenshot, "dashboard-editor", pictures=("light",))

    page.locator("#save-dashboard").click()
    expect(page.locator("#notice")).to_contain_text("Saved")
    panels = page.locator("section.analytics-panel")
    expect(panels).to_have_count(2)
    expect(panels.nth(0)).to_contain_text("Cost by provider")
    expect(panels.nth(1)).to_contain_text("Requests by model")
    for index in range(2):
        expect(panels.nth(index).locator(".chart-box svg")).to_be_visible()
    look_at(page, docs_screenshot, "dashboard", pictures=("light",))

    page.locator("#edit-dashboard").click()
    page.locator("#field-name").fill("Traffic, spend and speed")
    page.locator("#edit-panel-1-remove").click()
    expect(page.locator("#edit-panel-1")).to_have_count(0)
    page.locator("#save-dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Traffic, spend and speed")
    expect(page.locator("section.analytics-panel")).to_have_count(1)

    page.locator("#delete-dashboard").click()
    page.locator("#confirm-delete").click()
    expect(page.locator("#notice")).to_contain_text("Deleted “Traffic, spend and speed”")
    expect(page.locator("#dashboards-empty")).to_be_visible()


def test_a_built_in_dashboard_is_copied_into_the_editor(console: Page) -> None:
    page = console
    page.goto("/admin/dashboards")
    page.locator("#copy-cost").click()
    expect(page.locator("#notice")).to_contain_text("your copy")
    expect(page.locator("#field-name")).to_have_value("Copy of Cost")
    page.locator("#save-dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Copy of Cost")
    page.goto("/admin/dashboards")
    expect(page.locator("#dashboards-table")).to_contain_text("Copy of Cost")
