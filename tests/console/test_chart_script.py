"""charts.js in a real browser: the crosshair and tooltip of a time chart, by pointer and by
keyboard, reading what the server drew.

The page is made here from chart_svg's output and served, with the console's real style sheets
and script, on a made-up origin that the test's router answers; no gateway is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from admin_ui.chart_svg import Series, time_chart
from admin_ui.static_files import CONTENT_TYPES, STATIC_DIR

ORIGIN = "http://charts.test"
START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HOSTILE = '<img src=x onerror="window.pwned=1">'


def at(hours: int) -> datetime:
    return START + timedelta(hours=hours)


LATENCY = [
    Series("gpt-4o", [(at(h), v) for h, v in enumerate([850, 900, 1250, None, 700, 650])]),
    Series("claude-sonnet-4-5", [(at(h), v) for h, v in enumerate([1200, 1100, None, 1300, 1250])]),
    Series(HOSTILE, [(at(h), 100.0) for h in range(6)]),
]
COST = [
    Series("gpt-4o", [(at(h), 0.5 * h) for h in range(6)]),
    Series("o3", [(at(h), 1.0) for h in range(6)]),
]


def page_html(extra: str = "") -> str:
    latency = time_chart(
        LATENCY,
        start=START,
        end=at(5),
        step_seconds=3600,
        unit="ms",
        chart_id="latency",
        title="Latency",
    )
    cost = time_chart(
        COST,
        start=START,
        end=at(5),
        step_seconds=3600,
        unit="usd",
        kind="stacked",
        chart_id="cost",
        title="Cost",
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Charts</title>'
        '<link rel="stylesheet" href="/static/console.css">'
        '<link rel="stylesheet" href="/static/charts.css">'
        '<script src="/static/charts.js" defer></script></head>'
        '<body><main class="content" style="max-width: 820px">'
        f'<a href="#latency" id="before">before</a><section class="panel" id="region">{latency}</section>'
        f'<section class="panel">{cost}</section>{extra}</main></body></html>'
    )


@dataclass
class Site:
    html: str = field(default_factory=page_html)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def answer(self, route: Route) -> None:
        url = route.request.url
        if url == f"{ORIGIN}/":
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=self.html)
            return
        if url.startswith(f"{ORIGIN}/static/"):
            path = STATIC_DIR / url.removeprefix(f"{ORIGIN}/static/")
            route.fulfill(
                status=200, content_type=CONTENT_TYPES[path.suffix], body=path.read_bytes()
            )
            return
        self.foreign.append(url)
        route.abort("blockedbyclient")


@pytest.fixture
def site() -> Site:
    return Site()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    context.set_default_timeout(10_000)
    context.route("**/*", site.answer)
    page = context.new_page()
    page.on("pageerror", lambda error: site.errors.append(str(error)))
    page.on("console", lambda m: site.errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{ORIGIN}/")
    yield page
    context.close()
    assert site.foreign == [] and site.errors == []


def marker(page: Page, chart: str, series: str, hour: int) -> dict[str, float]:
    t = int(at(hour).timestamp())
    box = page.locator(f'#{chart} circle[data-t="{t}"][data-series="{series}"]').bounding_box()
    assert box is not None
    return {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2}


def tooltip_rows(page: Page) -> list[tuple[str, str]]:
    rows = page.locator(".chart-tooltip .chart-tooltip-row")
    return [
        (
            rows.nth(i).locator(".chart-tooltip-name").inner_text(),
            rows.nth(i).locator(".chart-tooltip-value").inner_text(),
        )
        for i in range(rows.count())
    ]


def test_pointing_at_a_time_lists_every_series_there(page: Page) -> None:
    tooltip = page.locator(".chart-tooltip")
    point = marker(page, "latency", "gpt-4o", 2)
    page.mouse.move(point["x"] + 3, point["y"] + 40)  # near the time, anywhere down the plot
    expect(tooltip).to_be_visible()
    expect(tooltip.locator(".chart-tooltip-time")).to_have_text("Dec 6 14:00 UTC")
    assert tooltip_rows(page) == [
        ("gpt-4o", "1.25 s"),
        ("claude-sonnet-4-5", "—"),  # no value at 14:00
        (HOSTILE, "100 ms"),
    ]
    crosshair = page.locator("#latency .chart-crosshair")
    expect(crosshair).to_have_attribute("visibility", "visible")
    t = str(int(at(2).timestamp()))
    cx = page.locator(f'#latency circle[data-t="{t}"]').first.get_attribute("cx")
    assert cx is not None
    assert float(crosshair.get_attribute("x1") or "nan") == pytest.approx(float(cx), abs=0.2)
    expect(page.locator("#latency .chart-point-active")).to_have_count(2)
    # the name was written as text: no image was made and nothing ran
    assert page.evaluate("window.pwned") is None
    expect(page.locator(".chart-tooltip img")).to_have_count(0)

    # the next hour along, then off the chart
    later = marker(page, "latency", "gpt-4o", 4)
    page.mouse.move(later["x"] - 2, later["y"])
    expect(tooltip.locator(".chart-tooltip-time")).to_have_text("Dec 6 16:00 UTC")
    assert tooltip_rows(page)[:2] == [("gpt-4o", "700 ms"), ("claude-sonnet-4-5", "1.25 s")]
    page.mouse.move(5, 5)
    expect(tooltip).to_be_hidden()
    expect(crosshair).to_have_attribute("visibility", "hidden")
    expect(page.locator("#latency .chart-point-active")).to_have_count(0)


def test_a_stacked_chart_lists_the_top_band_first(page: Page) -> None:
    point = marker(page, "cost", "o3", 3)
    page.mouse.move(point["x"], point["y"])
    expect(page.locator(".chart-tooltip .chart-tooltip-time")).to_have_text("Dec 6 15:00 UTC")
    assert tooltip_rows(page) == [("o3", "$1.00"), ("gpt-4o", "$1.50")]


def test_the_keyboard_moves_the_crosshair(page: Page) -> None:
    tooltip = page.locator(".chart-tooltip")
    time = tooltip.locator(".chart-tooltip-time")
    page.locator("#before").focus()
    page.keyboard.press("Tab")
    expect(page.locator("#latency")).to_be_focused()
    expect(time).to_have_text("Dec 6 17:00 UTC")  # the latest time first
    expect(tooltip).to_have_attribute("aria-live", "polite")
    page.keyboard.press("ArrowLeft")
    expect(time).to_have_text("Dec 6 16:00 UTC")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(time).to_have_text("Dec 6 14:00 UTC")
    page.keyboard.press("ArrowRight")
    expect(time).to_have_text("Dec 6 15:00 UTC")
    assert tooltip_rows(page)[:2] == [("gpt-4o", "—"), ("claude-sonnet-4-5", "1.3 s")]
    page.keyboard.press("Home")
    expect(time).to_have_text("Dec 6 12:00 UTC")
    page.keyboard.press("ArrowLeft")  # stays at the first
    expect(time).to_have_text("Dec 6 12:00 UTC")
    page.keyboard.press("End")
    expect(time).to_have_text("Dec 6 17:00 UTC")
    page.keyboard.press("Escape")
    expect(tooltip).to_be_hidden()
    page.keyboard.press("ArrowLeft")
    expect(time).to_have_text("Dec 6 16:00 UTC")
    page.keyboard.press("Tab")  # on to the next chart, whose tooltip replaces this one's
    expect(page.locator("#cost")).to_be_focused()
    expect(page.locator("#latency .chart-crosshair")).to_have_attribute("visibility", "hidden")
    expect(tooltip).to_have_attribute("data-chart", "cost")


def test_a_chart_swapped_in_by_a_refresh_works_and_takes_the_old_tooltip_away(
    page: Page,
) -> None:
    point = marker(page, "latency", "gpt-4o", 1)
    page.mouse.move(point["x"], point["y"])
    expect(page.locator(".chart-tooltip")).to_be_visible()
    page.evaluate(
        "html => { document.getElementById('region').innerHTML = html; }",
        str(
            time_chart(
                COST[:1],
                start=START,
                end=at(5),
                step_seconds=3600,
                unit="usd",
                chart_id="latency",
                title="Cost again",
            )
        ),
    )
    expect(page.locator(".chart-tooltip")).to_be_hidden()
    point = marker(page, "latency", "gpt-4o", 5)
    page.mouse.move(point["x"], point["y"])
    expect(page.locator(".chart-tooltip .chart-tooltip-time")).to_have_text("Dec 6 17:00 UTC")
    assert tooltip_rows(page) == [("gpt-4o", "$2.50")]
