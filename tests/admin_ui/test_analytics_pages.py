"""The analytics pages over HTTP against a running gateway, on SQLite and Postgres: every page
with data and without, the range changing the numbers, drilling down, page filters, budgets, the
token waterfall, the CSV links, and scoping (a workspace's admin never sees another workspace's
models, keys, tags or end users: each is planted under a name of its own and looked for).
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from admin_ui.analytics_pages import PAGES
from tests.admin_ui.analytics_rows import Planted, breakdown_rows, plant, rollup_rows
from tests.admin_ui.conftest import workspace_keys
from tests.admin_ui.html_page import Page
from tests.e2e.conftest import GatewayProcess

PATHS = [path for _, _, path in PAGES]


@dataclass(frozen=True)
class Tenant:
    slug: str
    workspace_id: str
    admin: str
    key_id: str
    key_name: str
    model: str
    tag: str
    end_user: str


@dataclass(frozen=True)
class World:
    alpha: Tenant
    bravo: Tenant
    empty_slug: str
    empty_admin: str


def tenant(gateway: GatewayProcess, prefix: str, *, budget: bool) -> Tenant:
    slug, admin, _ = workspace_keys(gateway, prefix)
    unique = secrets.token_hex(4)
    with gateway.http() as http:
        workspace_id = http.get(f"/admin/api/workspaces/{slug}").json()["id"]
        body: dict[str, object] = {"name": f"key-{prefix}-{unique}", "workspace": slug}
        if budget:
            body["budgets"] = [{"limit_usd": "10.00", "window": "monthly"}]
        made = http.post("/admin/api/keys", json=body)
        assert made.status_code == 201, made.text
    return Tenant(
        slug=slug,
        workspace_id=workspace_id,
        admin=admin,
        key_id=made.json()["id"],
        key_name=made.json()["name"],
        model=f"model-{prefix}-{unique}",
        tag=f"tag-{prefix}-{unique}",
        end_user=f"user-{prefix}-{unique}",
    )


def month_start(now: datetime) -> datetime:
    return datetime(now.year, now.month, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(gateway: GatewayProcess) -> World:
    """Alpha: 4 good requests and 1 error 20 minutes ago, 7 requests three days ago, a budget
    with $2.50 spent, tags, a guardrail block. Bravo: 11 requests 20 minutes ago under names of
    its own. A third workspace with nothing at all."""
    alpha = tenant(gateway, "alpha", budget=True)
    bravo = tenant(gateway, "bravo", budget=False)
    empty_slug, empty_admin, _ = workspace_keys(gateway, "empty")
    now = datetime.now(UTC)
    recent, older = now - timedelta(minutes=20), now - timedelta(days=3)
    rows = Planted()
    a = (alpha.workspace_id, alpha.key_id)
    rows.rollups += rollup_rows(
        recent,
        *a,
        model=alpha.model,
        deployment="openai/gpt-4o-mini",
        requests=4,
        prompt_tokens=1000,
        cached_tokens=200,
        completion_tokens=500,
        cost=Decimal("0.001"),
        latency_ms=180.0,
        ttft_ms=90.0,
    )
    rows.rollups += rollup_rows(
        recent,
        *a,
        model=alpha.model,
        deployment="openai/gpt-4o-mini",
        status="error",
        error_type="upstream_error",
    )
    rows.rollups += rollup_rows(
        recent, *a, model=alpha.model, provider="openai", deployment="cache", cache_hit=True,
        requests=2, cost_saved=Decimal("0.0004"),
    )  # fmt: skip
    rows.rollups += rollup_rows(older, *a, model=alpha.model, requests=7, cost=Decimal("0.002"))
    rows.breakdowns += breakdown_rows(recent, *a, kind="tag", name=alpha.tag, events=5)
    rows.breakdowns += breakdown_rows(recent, *a, kind="end_user", name=alpha.end_user, events=5)
    rows.breakdowns += breakdown_rows(recent, *a, kind="guardrail", name="pii", detail="block")
    b = (bravo.workspace_id, bravo.key_id)
    rows.rollups += rollup_rows(
        recent, *b, model=bravo.model, deployment="openai/gpt-4o", requests=11,
        cost=Decimal("0.5"),
    )  # fmt: skip
    rows.breakdowns += breakdown_rows(recent, *b, kind="tag", name=bravo.tag, events=11)
    rows.breakdowns += breakdown_rows(recent, *b, kind="end_user", name=bravo.end_user)
    rows.breakdowns += breakdown_rows(recent, *b, kind="guardrail", name="pii", detail="block")
    rows.spend.append(
        {
            "workspace_id": alpha.workspace_id,
            "scope": "key",
            "subject": alpha.key_id,
            "window": "monthly",
            "window_start": month_start(now),
            "spent_micros": 2_500_000,
            "updated_at": now,
        }
    )
    plant(gateway.database.url, rows)
    return World(alpha, bravo, empty_slug, empty_admin)


def get_page(gateway: GatewayProcess, path: str, key: str | None = None, status: int = 200) -> str:
    with gateway.http(key) as http:
        response = http.get(path)
    assert response.status_code == status, response.text[:800]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return response.text


def tile_value(html: str, metric: str) -> float | None:
    """The exact value of the page's stat tile of `metric` (None when it shows none)."""
    found = re.search(
        rf'<div class="tile-panel" id="panel-\d+" data-metric="{metric}">\s*(.*?)</div>\s*</div>',
        html,
        re.S,
    )
    assert found, f"no {metric} tile"
    value = re.search(r'class="stat-value" data-v="([^"]+)"', found.group(1))
    return None if value is None else float(value.group(1))


def panel_html(html: str, title: str) -> str:
    start = html.index(f">{title}</h2>")
    start = html.rindex("<section", 0, start)
    return html[start : html.index("</section>", start)]


def drill_links(section: str, dimension: str) -> dict[str, str]:
    """Shown label → href of the section's drill links on `dimension`."""
    return {
        label: href.replace("&amp;", "&")
        for href, label in re.findall(
            rf'<a class="drill-link" href="([^"]+)" data-dimension="{dimension}"[^>]*>([^<]+)</a>',
            section,
        )
    }


def test_every_page_shows_its_panels_with_data(gateway: GatewayProcess, world: World) -> None:
    for path in PATHS:
        html = get_page(gateway, path)
        page = Page(html)
        assert 'class="analytics-dashboard"' in html, path
        assert "callout-error" not in html, path
        assert "range-last" in page and "range-step" in page, path
        assert 'aria-current="page"' in html
    overview = get_page(gateway, "/admin/analytics?last=7d")
    assert world.alpha.model in overview and world.bravo.model in overview
    # Every workspace has the built-in rules, and none of them fires on this history.
    assert 'id="firing-alerts"' in overview and "Nothing is firing" in overview
    assert tile_value(overview, "requests") == 4 + 1 + 2 + 7 + 11
    assert "<svg" in panel_html(overview, "Requests by model")
    providers = Page(get_page(gateway, "/admin/analytics/providers"))
    row = re.search(
        rf'data-model="{world.alpha.model}" data-deployment="openai/gpt-4o-mini">(.*?)</tr>',
        providers.html,
        re.S,
    )
    assert row and "$0.00015" in row.group(1) and "$0.0006" in row.group(1)  # gpt-4o-mini's
    assert 'data-deployment="cache"' not in providers.html  # the cache is no provider
    performance = get_page(gateway, "/admin/analytics/performance")
    assert 'id="deployment-health-table"' in performance and "mock/mock-gpt" in performance
    assert "each worker process keeps its own" in performance  # no Redis: per process
    safety = get_page(gateway, "/admin/analytics/safety?last=7d")
    blocked = panel_html(safety, "Keys most often blocked")
    assert world.alpha.key_name in blocked and world.bravo.key_name in blocked


def test_a_workspace_admin_sees_its_workspace_only(gateway: GatewayProcess, world: World) -> None:
    alpha, bravo = world.alpha, world.bravo
    foreign = (bravo.model, bravo.key_name, bravo.tag, bravo.end_user, bravo.slug)
    for path in PATHS:
        html = get_page(gateway, f"{path}?last=7d", alpha.admin)
        assert not [name for name in foreign if name in html], path
    overview = get_page(gateway, "/admin/analytics?last=7d", alpha.admin)
    assert alpha.model in overview
    assert tile_value(overview, "requests") == 14
    usage = get_page(gateway, "/admin/analytics/usage?last=7d", alpha.admin)
    assert alpha.tag in usage and alpha.end_user in usage
    # another workspace is not found, as everywhere in the console
    get_page(gateway, f"/admin/analytics?workspace={bravo.slug}", alpha.admin, status=404)
    # an operator narrowed to one workspace sees that one's numbers only (the top bar still
    # offers every workspace)
    narrowed = get_page(gateway, f"/admin/analytics/usage?last=7d&workspace={alpha.slug}")
    assert not [name for name in foreign[:-1] if name in narrowed]
    assert alpha.model in narrowed


def test_a_workspace_without_traffic_says_so_on_every_page(
    gateway: GatewayProcess, world: World
) -> None:
    for path in PATHS:
        html = get_page(gateway, f"{path}?last=7d", world.empty_admin)
        assert "callout-error" not in html, path
        assert 'class="empty"' in html, path
        assert world.alpha.model not in html and world.bravo.model not in html
    overview = get_page(gateway, "/admin/analytics", world.empty_admin)
    assert "No requests in this range." in overview or "Nothing in this range." in overview
    assert tile_value(overview, "requests") == 0
    assert tile_value(overview, "error_rate") is None  # no requests: no rate
    cost = get_page(gateway, "/admin/analytics/cost", world.empty_admin)
    assert "No budget is set." in cost


def test_the_range_changes_the_numbers(gateway: GatewayProcess, world: World) -> None:
    admin = world.alpha.admin
    hour = get_page(gateway, "/admin/analytics?last=1h", admin)
    week = get_page(gateway, "/admin/analytics?last=7d", admin)
    assert tile_value(hour, "requests") == 7
    assert tile_value(week, "requests") == 14
    assert tile_value(hour, "error_rate") == pytest.approx(1 / 7)
    assert "Last hour · per minute" in hour and "Last 7 days · per 3 hours" in week
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    since, until = three_days_ago - timedelta(hours=1), three_days_ago + timedelta(hours=1)
    custom = get_page(
        gateway,
        f"/admin/analytics?from={since:%Y-%m-%dT%H:%M}&to={until:%Y-%m-%dT%H:%M}",
        admin,
    )
    assert tile_value(custom, "requests") == 7
    assert Page(custom).value("range-last") == "custom"
    stepped = get_page(gateway, "/admin/analytics/usage?last=24h&step=15m", admin)
    assert "per 15 minutes" in stepped and Page(stepped).value("range-step") == "15m"


def test_attribution_drills_from_workspace_to_key_to_model(
    gateway: GatewayProcess, world: World
) -> None:
    alpha = world.alpha
    cost = get_page(gateway, "/admin/analytics/cost?last=7d")
    workspaces = drill_links(panel_html(cost, "Attribution"), "workspace")
    assert alpha.slug in workspaces and world.bravo.slug in workspaces
    by_key = get_page(gateway, workspaces[alpha.slug])
    keys = drill_links(panel_html(by_key, "Attribution"), "key")
    assert list(keys) == [alpha.key_name]
    assert world.bravo.key_name not in by_key
    by_model = get_page(gateway, keys[alpha.key_name])
    attribution = panel_html(by_model, "Attribution")
    assert list(drill_links(attribution, "model")) == [alpha.model]
    assert 'class="drill-crumbs"' in attribution and alpha.key_name in attribution
    assert "All workspaces" in attribution
    # the key is a filter of the whole page, shown as a chip that removes it
    assert re.search(rf'class="chip"[^>]*>Key: <strong>{re.escape(alpha.key_name)}', by_model)


def test_a_filter_narrows_every_panel_that_keeps_it(gateway: GatewayProcess, world: World) -> None:
    overview = get_page(gateway, f"/admin/analytics?last=7d&model={world.bravo.model}")
    assert tile_value(overview, "requests") == 11
    assert world.alpha.model not in overview
    safety = get_page(gateway, f"/admin/analytics/safety?last=7d&model={world.bravo.model}")
    assert "Not filtered by model" in safety  # guardrail findings are not kept by model


def test_a_range_the_page_cannot_show_is_a_400_with_the_picker(
    gateway: GatewayProcess, world: World
) -> None:
    html = get_page(gateway, "/admin/analytics?last=2y", world.alpha.admin, status=400)
    page = Page(html)
    assert "last: must be one of" in page.text("range-problem")
    assert page.value("range-last") == "24h"
    bad_step = get_page(gateway, "/admin/analytics?step=abc", status=400)
    assert "step" in Page(bad_step).text("range-problem")


def test_budgets_show_spent_remaining_and_a_projection(
    gateway: GatewayProcess, world: World
) -> None:
    cost = get_page(gateway, "/admin/analytics/cost", world.alpha.admin)
    budgets = panel_html(cost, "Budgets")
    row = re.search(
        rf'data-scope="key" data-window="monthly">(.*?{re.escape(world.alpha.key_name)}.*?)</tr>',
        budgets,
        re.S,
    )
    assert row, budgets
    cells = re.findall(r'<td class="num[^"]*"[^>]*>([^<]*)</td>', row.group(1))
    limit, spent, reserved, remaining, projected = cells
    assert (limit, spent, reserved, remaining) == ("$10.00", "$2.50", "$0.00", "$7.50")
    assert projected.startswith("$")
    assert Decimal(projected[1:].replace(",", "")) >= Decimal("2.50")
    # a key filter keeps that key's budgets (and its workspace's), no other key's
    mine = get_page(gateway, f"/admin/analytics/cost?key={world.alpha.key_id}", world.alpha.admin)
    assert world.alpha.key_name in panel_html(mine, "Budgets")
    other = get_page(gateway, f"/admin/analytics/cost?key={world.bravo.key_id}", world.alpha.admin)
    assert "No budget is set." in panel_html(other, "Budgets")


def test_the_token_waterfall_splits_the_cost_by_kind_of_token(
    gateway: GatewayProcess, world: World
) -> None:
    cost = get_page(gateway, "/admin/analytics/cost?last=1h", world.alpha.admin)
    parts = dict(
        (name, (int(tokens), Decimal(spent)))
        for name, tokens, spent in re.findall(
            r'data-part="(\w+)" data-tokens="(\d+)" data-cost="([^"]+)"', cost
        )
    )
    assert {name: tokens for name, (tokens, _) in parts.items()} == {
        "input": 800,
        "cached": 200,
        "output": 500,
    }
    # gpt-4o-mini: $0.15, $0.075 (cached) and $0.60 per million: weights 120, 15 and 300
    total = sum(spent for _, spent in parts.values())
    assert total == Decimal("0.001")
    assert parts["output"][1] / parts["input"][1] == pytest.approx(300 / 120)
    savings = panel_html(cost, "Cache savings")
    assert ">2</dd>" in savings and "$0.0004" in savings


def test_each_panel_links_its_numbers_as_csv_from_the_api(
    gateway: GatewayProcess, world: World
) -> None:
    html = get_page(gateway, f"/admin/analytics/usage?last=7d&workspace={world.alpha.slug}")
    section = panel_html(html, "Requests by key")
    href = re.search(r'class="button button-small panel-csv" href="([^"]+)"', section)
    assert href
    url = urlsplit(href.group(1).replace("&amp;", "&"))
    assert url.path == "/admin/api/analytics/requests"
    query = parse_qs(url.query)
    summary = Page(html).element("range-summary")
    assert query["from"] == [(summary.get("data-start") or "")[:19] + "Z"]
    assert query["to"] == [(summary.get("data-end") or "")[:19] + "Z"]
    assert query["step"] == ["3h"] and query["group_by"] == ["key"] and query["top"] == ["10"]
    assert query["workspace"] == [world.alpha.slug] and query["format"] == ["csv"]
    with gateway.http() as http:
        download = http.get(href.group(1).replace("&amp;", "&"))
    assert download.status_code == 200, download.text
    sums: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(download.text)):
        sums[row["key"]] = sums.get(row["key"], 0) + int(row["requests"] or 0)
    shown = dict(
        re.findall(
            r'data-dimension="key" data-value="([^"]*)".*?'
            r'class="num group-value" data-value="([^"]*)"',
            section,
            re.S,
        )
    )
    assert {key: int(float(value)) for key, value in shown.items()} == {
        key: total for key, total in sums.items() if total
    }
    assert shown[world.alpha.key_id]
