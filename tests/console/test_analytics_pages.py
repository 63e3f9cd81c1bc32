"""The analytics pages in a real browser, over a week of demo data and a workspace of known
numbers: every page draws its charts, the range picker (a select, or the custom range typed with
the keyboard) changes them, drilling down from a workspace to a key to a model, and the CSV a
panel downloads holds the numbers of its table. With STEERWAY_DOCS_IMAGES=1 the pictures of
docs/analytics.md are taken here (light and dark).
"""

from __future__ import annotations

import csv
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from admin_ui.analytics_pages import PAGES
from tests.admin_ui.analytics_rows import Planted, plant, rollup_rows
from tests.console.conftest import off_the_loop
from tests.console.views import look_at_phone_width
from tests.e2e.conftest import GatewayProcess

PICTURES = os.environ.get("STEERWAY_DOCS_IMAGES") == "1"
DEMO_REQUESTS = 20_000 if PICTURES else 2_000
"""Enough for every chart to have data; more for the pictures."""


@dataclass(frozen=True)
class Probe:
    slug: str
    keys: dict[str, str]
    """Key name → id."""
    models: tuple[str, str]


@pytest.fixture(scope="module")
def demo(console_gateway: GatewayProcess) -> None:
    """A week of demo data."""
    made = console_gateway.cli("demo-data", "--days", "7", "--requests", str(DEMO_REQUESTS))
    assert made.returncode == 0, made.stdout + made.stderr


@pytest.fixture(scope="module")
def probe(console_gateway: GatewayProcess, demo: None) -> Probe:
    """A workspace of its own: key one sent 3 requests to model one 20 minutes ago, key two 2
    requests to model two; key one 5 more requests three days ago."""
    unique = secrets.token_hex(3)
    slug = f"probe-{unique}"
    keys: dict[str, str] = {}
    with console_gateway.http() as http:
        created = http.post("/admin/api/workspaces", json={"slug": slug, "name": "Probe"})
        assert created.status_code == 201, created.text
        workspace_id = created.json()["id"]
        for name in (f"probe-one-{unique}", f"probe-two-{unique}"):
            key = http.post("/admin/api/keys", json={"name": name, "workspace": slug})
            assert key.status_code == 201, key.text
            keys[name] = key.json()["id"]
    one, two = keys.values()
    models = (f"probe-model-one-{unique}", f"probe-model-two-{unique}")
    now = datetime.now(UTC)
    rows = Planted()
    rows.rollups += rollup_rows(
        now - timedelta(minutes=20), workspace_id, one, model=models[0], requests=3,
        cost=Decimal("0.03"),
    )  # fmt: skip
    rows.rollups += rollup_rows(
        now - timedelta(minutes=20), workspace_id, two, model=models[1], requests=2,
        cost=Decimal("0.02"),
    )  # fmt: skip
    rows.rollups += rollup_rows(
        now - timedelta(days=3), workspace_id, one, model=models[0], requests=5,
        cost=Decimal("0.05"),
    )  # fmt: skip
    off_the_loop(lambda: plant(console_gateway.database.url, rows))
    return Probe(slug, keys, models)


def tile(page: Page, metric: str) -> Locator:
    return page.locator(f'.tile-panel[data-metric="{metric}"] .stat-value')


def panel(page: Page, title: str) -> Locator:
    return page.locator("section.analytics-panel", has=page.locator(f'h2:text-is("{title}")'))


def table_totals(section: Locator, dimension: str) -> dict[str, float]:
    """Group value → total, as the panel's table shows them."""
    found: dict[str, float] = section.locator("table.group-table tbody tr").evaluate_all(
        """(rows, dimension) => Object.fromEntries(rows.map(row => [
            row.querySelector(`[data-dimension="${dimension}"]`).dataset.value,
            Number(row.querySelector('.group-value').dataset.value),
        ]))""",
        dimension,
    )
    return found


def test_every_page_draws_charts(
    demo: None, console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    page = console
    for name, title, path in PAGES:
        page.goto(f"{path}?last=7d")
        expect(page.locator("nav.sidebar a[aria-current=page]")).to_have_text(title)
        expect(page.locator(".analytics-dashboard")).to_be_visible()
        assert page.locator("svg.chart").count() >= 1, path
        expect(page.locator(".callout-error")).to_have_count(0)
        if name in ("overview", "cost"):
            look_at_phone_width(page)  # nothing sticks out sideways on a phone
        if PICTURES:
            docs_screenshot(page, f"analytics-{name}")
    if PICTURES:
        page.emulate_media(color_scheme="dark")
        page.goto(f"{PAGES[0][2]}?last=7d")
        docs_screenshot(page, "analytics-overview-dark")
        page.goto(f"{PAGES[2][2]}?last=7d")
        docs_screenshot(page, "analytics-cost-dark")
        page.emulate_media(color_scheme="light")


def test_the_range_picker_changes_the_numbers(probe: Probe, console: Page) -> None:
    page = console
    # the probe workspace over the last hour, then the last week, chosen in the top bar
    page.goto(f"/admin/analytics?workspace={probe.slug}&last=1h")
    expect(tile(page, "requests")).to_have_attribute("data-v", "5")
    page.locator("#range-last").select_option("7d")
    page.wait_for_url("**last=7d**")
    expect(tile(page, "requests")).to_have_attribute("data-v", "10")
    expect(page.locator("#range-summary")).to_contain_text("Last 7 days")

    # a custom range typed with the keyboard: the three days old requests alone
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    summary = page.locator("details.range-custom > summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#range-from")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator("#range-from")).to_be_focused()
    page.locator("#range-from").fill(f"{three_days_ago - timedelta(hours=2):%Y-%m-%dT%H:%M}")
    page.locator("#range-to").fill(f"{three_days_ago + timedelta(hours=2):%Y-%m-%dT%H:%M}")
    page.locator("#range-to").press("Enter")
    page.wait_for_url("**from=**")
    expect(tile(page, "requests")).to_have_attribute("data-v", "5")
    expect(page.locator("#range-last")).to_have_value("custom")
    expect(page.locator("#range-summary")).to_contain_text("UTC")


def test_drilling_down_and_the_csv_of_a_table(probe: Probe, console: Page) -> None:
    page = console
    page.goto("/admin/analytics/cost?last=7d")
    attribution = panel(page, "Attribution")
    attribution.locator(f'a.drill-link[data-dimension="workspace"]:text-is("{probe.slug}")').click()
    page.wait_for_url(f"**workspace={probe.slug}**")
    expect(page.locator("#content select[name=workspace], select[name=workspace]")).to_have_value(
        probe.slug
    )
    assert table_totals(attribution, "key") == {
        key_id: cost for key_id, cost in zip(probe.keys.values(), (0.08, 0.02), strict=True)
    }
    first_key = next(iter(probe.keys))
    attribution.locator(f'a.drill-link:text-is("{first_key}")').click()
    page.wait_for_url(f"**key={probe.keys[first_key]}**")
    expect(attribution.locator(".drill-crumbs")).to_contain_text(first_key)
    expect(page.locator(".filter-chips .chip")).to_contain_text(first_key)
    shown = table_totals(attribution, "model")
    assert shown == {probe.models[0]: 0.08}

    with page.expect_download() as downloading:
        attribution.locator("a.panel-csv").click()
    download = downloading.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), newline="") as opened:
        rows = list(csv.DictReader(opened))
    summed: dict[str, Decimal] = {}
    for row in rows:
        summed[row["model"]] = summed.get(row["model"], Decimal(0)) + Decimal(row["cost"] or 0)
    assert {model: float(total) for model, total in summed.items() if total} == shown

    # removing the key's filter goes back up to the workspace's keys
    page.locator(".filter-chips .chip").click()
    page.wait_for_url(lambda url: "key=" not in url)
    assert set(table_totals(attribution, "key")) == set(probe.keys.values())
