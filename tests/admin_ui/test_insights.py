"""Forecasts and anomalies against a running gateway on SQLite and Postgres: the API
(`/admin/api/analytics/forecast`, `/anomalies`, `/anomaly_score`) and the console's Forecast and
Anomalies pages, over three weeks of hourly roll-ups of two workspaces with known numbers.

Each workspace has its own key and model (names of its own) and a cost spike planted in a
complete hour; alpha also has a bigger one in the hour in progress, which must not be reported
(its sums are not complete). A workspace's admin sees its own groups, forecasts and anomalies
and never the other's: each is looked for by its unique name.
"""

from __future__ import annotations

import random
import re
import secrets
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.admin_ui.analytics_rows import Planted, plant, rollup_rows
from tests.admin_ui.conftest import error_of, workspace_keys
from tests.admin_ui.html_page import Page
from tests.e2e.conftest import GatewayProcess

API = "/admin/api/analytics"
DAYS = 22
HOUR = timedelta(hours=1)
PRIMARY_KEY = (
    "grain",
    "bucket_start",
    "workspace_id",
    "api_key_id",
    "source",
    "provider",
    "model",
    "served_model",
    "deployment",
    "status",
    "error_type",
    "cache_hit",
)


@dataclass(frozen=True)
class Tenant:
    slug: str
    workspace_id: str
    admin: str
    key_id: str
    key_name: str
    model: str
    spike: datetime
    """The hour of the planted cost spike (complete)."""
    month_cost: Decimal
    """What the tenant spent from the first of this month (UTC) to now."""


@dataclass(frozen=True)
class World:
    alpha: Tenant
    bravo: Tenant
    empty_admin: str
    now: datetime


def merged(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one roll-up key added up, as the recorder keeps them."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[name] for name in PRIMARY_KEY)
        kept = found.get(key)
        if kept is None:
            found[key] = dict(row)
            continue
        for name, value in row.items():
            if name not in PRIMARY_KEY:
                kept[name] += value
    return list(found.values())


def tenant(
    gateway: GatewayProcess, prefix: str, now: datetime, spike_back: int, rows: Planted
) -> Tenant:
    """A workspace with a key of its own and a budget, and three weeks of hourly traffic: busy
    days, quiet nights, a cost spike `spike_back` hours ago (ten times the hour's usual)."""
    slug, admin, _ = workspace_keys(gateway, prefix)
    unique = secrets.token_hex(4)
    with gateway.http() as http:
        workspace_id = http.get(f"/admin/api/workspaces/{slug}").json()["id"]
        made = http.post(
            "/admin/api/keys",
            json={
                "name": f"key-{prefix}-{unique}",
                "workspace": slug,
                "budgets": [{"limit_usd": "1000.00", "window": "monthly"}],
            },
        )
        assert made.status_code == 201, made.text
    key_id, model = made.json()["id"], f"model-{prefix}-{unique}"
    chooser = random.Random(prefix)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    spike = this_hour - spike_back * HOUR
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    month_cost = Decimal(0)
    raw: list[dict[str, Any]] = []
    for back in range(DAYS * 24, 0, -1):
        at = this_hour - back * HOUR
        busy = 8 <= at.hour < 20 and at.weekday() < 5
        requests = (40 if busy else 8) + chooser.randint(0, 4)
        if at == spike:
            requests *= 10
        cost = Decimal(requests) * Decimal("0.001")
        if at >= month_start:
            month_cost += cost
        raw += rollup_rows(
            at + timedelta(minutes=5), workspace_id, key_id, model=model, requests=requests,
            cost=cost, latency_ms=400.0,
        )  # fmt: skip
    rows.rollups += raw
    return Tenant(slug, workspace_id, admin, key_id, made.json()["name"], model, spike, month_cost)


@pytest.fixture(scope="module")
def world(gateway: GatewayProcess) -> World:
    now = datetime.now(UTC)
    rows = Planted()
    alpha = tenant(gateway, "alpha", now, 3, rows)
    bravo = tenant(gateway, "bravo", now, 5, rows)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    # The hour in progress: far more than any hour, but not over yet.
    rows.rollups += rollup_rows(
        this_hour, alpha.workspace_id, alpha.key_id, model=alpha.model, requests=900,
        cost=Decimal("5"), latency_ms=400.0,
    )  # fmt: skip
    alpha = replace(alpha, month_cost=alpha.month_cost + Decimal("5"))
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    rows.spend.append(
        {
            "workspace_id": alpha.workspace_id,
            "scope": "key",
            "subject": alpha.key_id,
            "window": "monthly",
            "window_start": month_start,
            "spent_micros": int(alpha.month_cost * 1_000_000),
            "updated_at": now,
        }
    )
    rows.rollups = merged(rows.rollups)
    plant(gateway.database.url, rows)
    _, empty_admin, _ = workspace_keys(gateway, "empty")
    return World(alpha, bravo, empty_admin, now)


@pytest.fixture(scope="module")
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.http() as client:
        yield client


def get(
    gateway: GatewayProcess, path: str, credential: str | None = None, **params: Any
) -> httpx.Response:
    """`path` as `credential` (the master key by default), with `params` added to its query."""
    with gateway.http(credential) as client:
        return client.get(httpx.URL(path).copy_merge_params(params))


def body_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- forecasts -------------------------------------------------------------------------------


def test_a_forecast_by_model_holds_the_workspaces_own_models_only(
    gateway: GatewayProcess, world: World
) -> None:
    alpha, bravo = world.alpha, world.bravo
    body = body_of(get(gateway, f"{API}/forecast", alpha.admin, group_by="model"))
    assert body["object"] == "forecast" and body["group_by"] == ["model"]
    assert [group["group"] for group in body["groups"]] == [{"model": alpha.model}]
    assert bravo.model not in str(body)
    (group,) = body["groups"]
    assert Decimal(group["spent_this_month"]) == alpha.month_cost
    assert Decimal(body["total"]["spent_this_month"]) == alpha.month_cost
    month_end, next_days = group["month_end"], group["next_30_days"]
    assert (
        Decimal(month_end["lower"]) <= Decimal(month_end["expected"]) <= Decimal(month_end["upper"])
    )
    assert Decimal(month_end["expected"]) >= alpha.month_cost
    assert Decimal(next_days["expected"]) > 0
    assert group["method"] == "holt-winters"
    # three weeks of the same rhythm: a week ahead is forecast within a fifth
    assert group["backtest"]["folds"] >= 1 and 0 <= group["backtest"]["wape"] < 0.2
    assert len(group["history"]) == DAYS
    days = [at(day) for day, *_ in group["forecast"]]
    assert days[0] == at(body["today"]) and days == sorted(days)
    assert days[-1] >= at(body["month"]["to"]) - timedelta(days=1)


def test_a_forecast_by_key_names_the_keys(gateway: GatewayProcess, world: World) -> None:
    alpha = world.alpha
    body = body_of(get(gateway, f"{API}/forecast", alpha.admin, group_by="key"))
    assert [group["group"] for group in body["groups"]] == [{"key": alpha.key_id}]
    assert body["labels"] == {"key": {alpha.key_id: alpha.key_name}}
    # a key filter takes its name
    named = body_of(
        get(gateway, f"{API}/forecast", alpha.admin, group_by="key", key=alpha.key_name)
    )
    assert [group["group"] for group in named["groups"]] == [{"key": alpha.key_id}]


def test_an_operator_forecasts_every_workspace_or_one(
    gateway: GatewayProcess, world: World
) -> None:
    alpha, bravo = world.alpha, world.bravo
    every = body_of(get(gateway, f"{API}/forecast", group_by="workspace", top=50))
    groups = {group["group"]["workspace"] for group in every["groups"]}
    assert {alpha.workspace_id, bravo.workspace_id} <= groups
    one = body_of(get(gateway, f"{API}/forecast", group_by="model", workspace=bravo.slug))
    assert [group["group"] for group in one["groups"]] == [{"model": bravo.model}]


# --- anomalies -------------------------------------------------------------------------------


def test_anomalies_find_the_spike_of_the_workspace_only(
    gateway: GatewayProcess, world: World
) -> None:
    alpha, bravo = world.alpha, world.bravo
    body = body_of(get(gateway, f"{API}/anomalies", alpha.admin, last="24h", kind="cost"))
    assert body["object"] == "anomalies" and body["kinds"] == ["cost"]
    assert at(body["to"]) == world.now.replace(minute=0, second=0, microsecond=0)
    found = {(item["start"], tuple(item["group"].items())) for item in body["anomalies"]}
    spike = f"{alpha.spike:%Y-%m-%dT%H:%M:%SZ}"
    assert (spike, (("workspace", alpha.workspace_id),)) in found
    assert (spike, (("model", alpha.model),)) in found
    assert all(at(item["start"]) < at(body["to"]) for item in body["anomalies"])
    for item in body["anomalies"]:
        assert item["score"] >= 4 and item["kind"] == "cost"
        assert bravo.model not in str(item) and bravo.workspace_id not in str(item)
    groups = [score["group"] for score in body["scores"]]
    assert {"model": alpha.model} in groups and {"workspace": alpha.workspace_id} in groups
    assert bravo.model not in str(body) and bravo.workspace_id not in str(body)
    peak = next(item for item in body["anomalies"] if item["group"] == {"model": alpha.model})
    assert Decimal(peak["actual"]) > 5 * Decimal(peak["expected"])


def test_an_operator_sees_both_spikes(gateway: GatewayProcess, world: World) -> None:
    body = body_of(get(gateway, f"{API}/anomalies", last="24h", kind="cost", group_by="model"))
    starts = {item["group"]["model"]: at(item["start"]) for item in body["anomalies"]}
    assert starts.get(world.alpha.model) == world.alpha.spike
    assert starts.get(world.bravo.model) == world.bravo.spike


def test_the_anomaly_score_is_a_series_per_group(gateway: GatewayProcess, world: World) -> None:
    alpha = world.alpha
    params = {"kind": "cost", "group_by": "model", "last": "24h"}
    body = body_of(get(gateway, f"{API}/anomaly_score", alpha.admin, **params))
    assert (body["object"], body["metric"], body["unit"], body["step"]) == (
        "analytics",
        "anomaly_score",
        "score",
        3600,
    )
    (series,) = body["series"]
    assert series["group"] == {"model": alpha.model}
    points = dict(series["points"])
    assert len(points) == 24 or len(points) == 25
    assert points[f"{alpha.spike:%Y-%m-%dT%H:%M:%SZ}"] >= 4
    assert sum(1 for value in points.values() if value is not None and value >= 4) == 1
    csv_text = get(gateway, f"{API}/anomaly_score", alpha.admin, format="csv", **params).text
    rows = [line.split(",") for line in csv_text.strip().splitlines()]
    assert rows[0] == ["time", "model", "anomaly_score"]
    assert {row[0]: (float(row[2]) if row[2] else None) for row in rows[1:]} == points
    overall = body_of(get(gateway, f"{API}/anomaly_score", alpha.admin, kind="cost", last="24h"))
    assert [s["group"] for s in overall["series"]] == [{}]


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("forecast", {"group_by": "provider"}, "group_by"),
        ("forecast", {"top": "0"}, "top"),
        ("forecast", {"last": "7d"}, "last"),
        ("anomalies", {"kind": "bogus"}, "kind"),
        ("anomalies", {"group_by": "key"}, "group_by"),
        ("anomalies", {"last": "400d"}, "last"),
        ("anomalies", {"threshold": "0.5"}, "threshold"),
        ("anomalies", {"tag": "x"}, "tag"),
        ("anomalies", {"from": "yesterday"}, "from"),
        ("anomaly_score", {}, "kind"),
        ("anomaly_score", {"kind": "cost", "group_by": "workspace,model"}, "group_by"),
        ("anomaly_score", {"kind": "cost", "format": "xml"}, "format"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(
    http: httpx.Client, world: World, path: str, params: dict[str, str], param: str
) -> None:
    error = error_of(http.get(f"{API}/{path}", params=params), 400)
    assert error["param"] == param


def test_another_workspace_is_not_found(gateway: GatewayProcess, world: World) -> None:
    for path in ("forecast", "anomalies", "anomaly_score?kind=cost"):
        response = get(gateway, f"{API}/{path}", world.alpha.admin, workspace=world.bravo.slug)
        assert error_of(response, 404)["param"] == "workspace"


# --- pages -----------------------------------------------------------------------------------


def page_html(
    gateway: GatewayProcess, path: str, credential: str | None = None, status: int = 200
) -> str:
    response = get(gateway, path, credential)
    assert response.status_code == status, response.text[:800]
    return response.text


def test_the_forecast_page_shows_the_workspaces_forecasts(
    gateway: GatewayProcess, world: World
) -> None:
    alpha, bravo = world.alpha, world.bravo
    html = page_html(gateway, "/admin/analytics/forecast", alpha.admin)
    page = Page(html)
    assert 'aria-current="page"' in html and ">Forecast<" in html
    assert "range-last" not in page and "range-step" not in page  # no range to pick
    assert alpha.model in html and alpha.key_name in html
    assert bravo.model not in html and bravo.key_name not in html and bravo.slug not in html
    facts = page.text("panel-1-facts")
    assert "Holt-Winters" in facts and "WAPE" in facts
    spent = re.search(r'class="forecast-spent" data-value="([^"]+)"', html)
    assert (
        spent is not None and Decimal(spent.group(1)).quantize(Decimal("0.001")) == alpha.month_cost
    )
    assert "panel-1-chart" in page and "chart-band-range" in html
    assert html.count('class="forecast-row"') == 3  # one workspace, one key, one model
    # a model's row narrows the page to it; a model of nothing leaves nothing to forecast
    link = re.search(r'class="drill-link" href="([^"]+)" title="Show only model', html)
    assert link is not None and f"model={alpha.model}" in link.group(1)
    drilled = page_html(gateway, link.group(1).replace("&amp;", "&"), alpha.admin)
    assert 'class="chip"' in drilled and "chart-band-range" in drilled
    nothing = page_html(gateway, "/admin/analytics/forecast?model=no-such-model", alpha.admin)
    assert "No spend in the last eight weeks" in nothing


def test_the_anomalies_page_lists_the_spike_and_filters_by_kind(
    gateway: GatewayProcess, world: World
) -> None:
    alpha, bravo = world.alpha, world.bravo
    html = page_html(gateway, "/admin/analytics/anomalies?last=24h", alpha.admin)
    assert 'id="range-step"' not in html  # hour by hour: no step to pick
    items = re.findall(
        r'<li class="anomaly" data-kind="(\w+)" data-dimension="(\w*)" data-group="([^"]*)" data-start="([^"]+)"',
        html,
    )
    assert ("cost", "model", alpha.model, alpha.spike.isoformat()) in items
    assert all(group not in (bravo.model, bravo.workspace_id) for _, _, group, _ in items)
    assert bravo.model not in html and bravo.slug not in html
    assert html.count("chart-span") >= len(items) > 0
    latency = page_html(gateway, "/admin/analytics/anomalies?last=24h&kind=latency", alpha.admin)
    assert '<li class="anomaly"' not in latency and "No anomalies in this range." in latency
    assert '<option value="latency" selected>' in latency
    bad = page_html(gateway, "/admin/analytics/anomalies?kind=bogus", alpha.admin, status=400)
    assert "kind: must be one of" in bad


def test_pages_of_a_workspace_without_traffic_say_so(gateway: GatewayProcess, world: World) -> None:
    forecast = page_html(gateway, "/admin/analytics/forecast", world.empty_admin)
    assert "No spend in the last eight weeks" in forecast
    anomalies = page_html(gateway, "/admin/analytics/anomalies", world.empty_admin)
    assert "No anomalies in this range." in anomalies


def test_a_key_budget_is_projected_from_the_keys_daily_spend(
    gateway: GatewayProcess, world: World
) -> None:
    alpha = world.alpha
    html = page_html(gateway, f"/admin/analytics/cost?key={alpha.key_id}", alpha.admin)
    row = re.search(r'data-scope="key" data-window="monthly">(.*?)</tr>', html, re.S)
    assert row is not None
    cell = re.search(r'data-projection="([^"]+)" title="([^"]+)">\$([0-9,.]+)<', row.group(1))
    assert cell is not None, row.group(1)
    method, note, projected = cell.groups()
    assert method == "holt-winters" and "80 % interval" in note
    assert Decimal(projected.replace(",", "")) >= alpha.month_cost.quantize(Decimal("0.01"))


def test_latest_scores_are_of_the_last_complete_hour(gateway: GatewayProcess, world: World) -> None:
    body = body_of(get(gateway, f"{API}/anomalies", world.alpha.admin, last="6h"))
    latest: dict[str, set[str]] = defaultdict(set)
    for score in body["scores"]:
        latest[score["kind"]].add(score["at"])
    last_hour = world.now.replace(minute=0, second=0, microsecond=0) - HOUR
    assert latest["requests"] == {f"{last_hour:%Y-%m-%dT%H:%M:%SZ}"}
