"""The Forecast and Anomalies pages in a real browser over demo data: both draw charts with data
(the forecast with its interval band, each anomaly with the hours around it), a chart's hover
lists its series, and the kind select narrows the anomalies. With STEERWAY_DOCS_IMAGES=1 the
pictures of docs/analytics.md are taken here, over three weeks of demo data (the plants come
after the first two, so the last week holds both).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.console.views import look_at_phone_width
from tests.e2e.conftest import GatewayProcess

PICTURES = os.environ.get("STEERWAY_DOCS_IMAGES") == "1"
DEMO = ("21", "20000") if PICTURES else ("7", "3000")
"""Days and requests of demo data: enough for a forecast and the planted cost spike."""


@pytest.fixture(scope="module")
def demo(console_gateway: GatewayProcess) -> None:
    days, requests = DEMO
    made = console_gateway.cli("demo-data", "--days", days, "--requests", requests)
    assert made.returncode == 0, made.stdout + made.stderr


def points_of(page: Page, selector: str) -> int:
    return page.locator(f"{selector} circle.chart-point").count()


def test_the_forecast_page_draws_history_forecast_and_band(
    demo: None, console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    page = console
    page.goto("/admin/analytics/forecast")
    expect(page.locator("nav.sidebar a[aria-current=page]")).to_have_text("Forecast")
    chart = page.locator("#panel-1-chart")
    expect(chart).to_be_visible()
    assert points_of(page, "#panel-1-chart .chart-points > g:not(.chart-points-dense)") >= 6
    expect(chart.locator("path.chart-band-range")).to_have_count(1)
    expect(chart.locator("path.chart-line-dashed")).to_have_count(1)
    expect(page.locator("#panel-1-facts .forecast-method")).not_to_have_text("")
    for title in ("By workspace", "By key", "By model"):
        section = page.locator(
            "section.analytics-panel", has=page.locator(f'h2:text-is("{title}")')
        )
        assert section.locator("tr.forecast-row").count() >= 1, title
    # pointing at the chart lists the day's values
    box = chart.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)
    tooltip = page.locator(".chart-tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("Spent")
    expect(page.locator(".callout-error")).to_have_count(0)
    # The pointer leaves the chart, so the tooltip placed for the wide layout is gone before the
    # page is looked at phone width.
    page.mouse.move(0, 0)
    expect(tooltip).to_be_hidden()
    if PICTURES:
        docs_screenshot(page, "analytics-forecast")
    look_at_phone_width(page)  # the tables scroll in their box; nothing sticks out


def test_the_anomalies_page_draws_each_anomaly_and_filters_by_kind(
    demo: None, console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    page = console
    page.goto("/admin/analytics/anomalies?last=7d")
    expect(page.locator("nav.sidebar a[aria-current=page]")).to_have_text("Anomalies")
    expect(page.locator("#range-step")).to_have_count(0)
    items = page.locator("li.anomaly")
    expect(items.first).to_be_visible()
    first = items.first
    assert first.locator("svg.band-chart circle.chart-point").count() >= 6
    expect(first.locator("rect.chart-span")).to_have_count(1)
    expect(first.locator(".anomaly-score strong")).to_have_text(
        f"{float(first.get_attribute('data-score') or 0):.1f}"
    )
    starts = items.evaluate_all("items => items.map(item => item.dataset.start)")
    assert starts == sorted(starts, reverse=True)  # newest first
    look_at_phone_width(page)
    if PICTURES:
        page.goto("/admin/analytics/anomalies?last=7d&kind=cost")
        docs_screenshot(page, "analytics-anomalies", full_page=False)
        page.goto("/admin/analytics/anomalies?last=7d")
    page.locator("#panel-1-kind").select_option("cost")
    page.locator("form.anomaly-filter button[type=submit]").click()
    page.wait_for_url("**kind=cost**")
    kinds = set(page.locator("li.anomaly").evaluate_all("items => items.map(i => i.dataset.kind)"))
    assert kinds == {"cost"}  # the planted spike is a cost anomaly; nothing else shows
    expect(page.locator("#panel-1-kind")).to_have_value("cost")
    expect(page.locator("#range-last")).to_have_value("7d")
