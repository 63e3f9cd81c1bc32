"""`GET /admin/api/analytics` and `/admin/api/analytics/{metric}` against a running gateway on
SQLite and Postgres: totals equal the sums of the raw traces and interactions, groups, filters
and top-N with (other), workspace scoping, CSV equal to JSON, percentiles within a bucket of the
exact ones, and garbage in every parameter answered with a 4xx, never a 5xx or a traceback."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.keys.store import KeyStore
from telemetry.analytics_dimensions import DIMENSIONS, dimensions_of
from telemetry.analytics_metrics import METRICS
from telemetry.db import create_engine
from telemetry.writers import BatchWriter
from tests.admin_ui.analytics_history import (
    FIRST,
    LAST,
    History,
    bucket_width,
    exact_percentile,
    having,
    record_history,
    tagged,
)
from tests.admin_ui.conftest import error_of
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.logwatch import LogWatch, assert_no_traceback, watched_gateway
from tests.telemetry import make_bundle
from tests.telemetry.search_corpus import OTHER_WORKSPACE_SLUG

API = "/admin/api/analytics"
RANGE = {"from": FIRST.isoformat(), "to": LAST.isoformat()}


@pytest.fixture(scope="module")
def watched(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayProcess, LogWatch]]:
    with watched_gateway(
        backend_database,
        mock_config(mock_provider),
        tmp_path_factory.mktemp("analytics-api"),
        master_key="sk-master-" + secrets.token_hex(8),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def gateway(watched: tuple[GatewayProcess, LogWatch]) -> GatewayProcess:
    return watched[0]


@pytest.fixture(scope="module")
def history(gateway: GatewayProcess) -> History:
    return record_history(gateway.database.url)


@pytest.fixture(scope="module")
def http(gateway: GatewayProcess, history: History) -> Iterator[httpx.Client]:
    with gateway.http() as client:
        yield client


@pytest.fixture(scope="module")
def other_admin(gateway: GatewayProcess, history: History) -> str:
    """An admin key of the other workspace: it sees that workspace only."""

    async def create() -> str:
        engine = create_engine(gateway.database.url)
        try:
            created = await KeyStore(engine).create(
                "analytics-other-admin", workspace_id=history.corpus.other_workspace, role="master"
            )
            return created.plaintext
        finally:
            await engine.dispose()

    return asyncio.run(create())


def answer(http: httpx.Client, metric: str, **params: Any) -> dict[str, Any]:
    response = http.get(f"{API}/{metric}", params={**RANGE, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["object"] == "analytics" and body["metric"] == metric
    return body


def totals_by(body: dict[str, Any], dimension: str) -> dict[str, Any]:
    return {series["group"][dimension]: series["total"] for series in body["series"]}


def money(value: str | None) -> Decimal:
    assert isinstance(value, str), value
    return Decimal(value)


# --- the catalogue ------------------------------------------------------------------------------


def test_the_catalogue_lists_every_metric_with_its_dimensions(http: httpx.Client) -> None:
    response = http.get(API)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "analytics_catalog"
    listed = {item["name"]: item for item in body["metrics"]}
    assert set(listed) == set(METRICS)
    for name, metric in METRICS.items():
        item = listed[name]
        assert (item["title"], item["unit"], item["description"]) == (
            metric.title,
            metric.unit,
            metric.description,
        )
        assert item["dimensions"] == list(dimensions_of(metric))
    assert "tag" in listed["requests"]["dimensions"]
    assert "tag" not in listed["latency_p95"]["dimensions"]
    assert {"guardrail", "action"} <= set(listed["guardrail_verdicts"]["dimensions"])
    assert listed["rule_matches"]["finest_step"] == 3600 and listed["cost"]["finest_step"] == 60
    assert [d["name"] for d in body["dimensions"]] == list(DIMENSIONS)


# --- totals against the raw rows ----------------------------------------------------------------


@pytest.mark.parametrize("step", ["5m", "3600", "1d", None])
def test_totals_equal_the_sums_of_the_raw_rows(
    http: httpx.Client, history: History, step: str | None
) -> None:
    step_params = {} if step is None else {"step": step}
    requests = answer(http, "requests", **step_params)
    assert requests["total"] == history.requests() == len(history.traces)
    assert sum(value for _, value in requests["series"][0]["points"]) == requests["total"]
    grain = {"5m": "minute", "3600": "hour", "1d": "day", None: "hour"}[step]
    assert requests["grain"] == grain and requests["unit"] == "count"
    errors = answer(http, "errors", **step_params)["total"]
    assert errors == history.requests(lambda t: t["status"] == "error") > 0
    rate = answer(http, "error_rate", **step_params)["total"]
    assert rate == pytest.approx(errors / len(history.traces))
    cost = answer(http, "cost", **step_params)
    assert money(cost["total"]) == history.interaction_sum("cost_usd") > 0
    assert sum(money(v) for _, v in cost["series"][0]["points"]) == money(cost["total"])
    prompt = history.interaction_sum("prompt_tokens")
    completion = history.interaction_sum("completion_tokens")
    assert answer(http, "input_tokens", **step_params)["total"] == prompt
    assert answer(http, "output_tokens", **step_params)["total"] == completion
    assert answer(http, "total_tokens", **step_params)["total"] == prompt + completion
    assert answer(http, "cached_tokens", **step_params)["total"] == history.interaction_sum(
        "cached_tokens"
    )
    hits = answer(http, "cache_hits", **step_params)["total"]
    assert hits == history.requests(lambda t: t["cache_hit"]) > 0


def test_the_answer_says_its_range_and_step(http: httpx.Client) -> None:
    hours = answer(
        http,
        "requests",
        **{"from": "2024-03-02T00:10:00Z", "to": "2024-03-02T05:05Z", "step": "1h"},
    )
    assert (hours["from"], hours["to"], hours["step"], hours["grain"]) == (
        "2024-03-02T00:00:00Z",
        "2024-03-02T06:00:00Z",
        3600,
        "hour",
    )
    assert [moment for moment, _ in hours["series"][0]["points"]] == [
        f"2024-03-02T0{hour}:00:00Z" for hour in range(6)
    ]
    chosen = answer(http, "requests", **{"from": "2024-03-02", "to": "2024-03-03"})
    assert (chosen["step"], len(chosen["series"][0]["points"])) == (3600, 24)
    assert chosen["total"] == sum(v for _, v in chosen["series"][0]["points"])
    assert chosen["group_by"] == [] and chosen["labels"] == {}
    epoch = answer(http, "requests", **{"from": "1709337600", "to": "1709359200", "step": "1h"})
    assert (epoch["from"], epoch["to"], len(epoch["series"][0]["points"])) == (
        "2024-03-02T00:00:00Z",
        "2024-03-02T06:00:00Z",
        6,
    )


def test_requests_after_2038_are_counted(gateway: GatewayProcess, history: History) -> None:
    """Epoch seconds outgrow 32 bits in January 2038; the steps must not."""
    moment = datetime(2040, 2, 29, 12, 30, tzinfo=UTC)

    async def write() -> None:
        engine = create_engine(gateway.database.url)
        try:
            bundles = [make_bundle(started_at=moment.timestamp() + n) for n in range(3)]
            await BatchWriter(engine).write(bundles)
        finally:
            await engine.dispose()

    asyncio.run(write())
    with gateway.http() as http:
        body = answer(http, "requests", **{"from": "2040-02-29", "to": "2040-03-01", "step": "1h"})
    points = dict(body["series"][0]["points"])
    assert body["total"] == 3 and points["2040-02-29T12:00:00Z"] == 3


def test_a_default_range_is_the_last_day(http: httpx.Client) -> None:
    response = http.get(f"{API}/requests")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 0 and body["series"][0]["total"] == 0
    assert body["step"] == 3600 and len(body["series"][0]["points"]) in (24, 25)
    latency = http.get(f"{API}/latency_p95", params={"last": "6h"}).json()
    assert latency["total"] is None and {v for _, v in latency["series"][0]["points"]} == {None}


# --- groups, filters, top -----------------------------------------------------------------------


def test_group_by_model_splits_the_total(http: httpx.Client, history: History) -> None:
    body = answer(http, "requests", group_by="model")
    assert body["group_by"] == ["model"]
    assert totals_by(body, "model") == history.count_by("requested_model")
    cost = answer(http, "cost", group_by="model")
    for model, total in totals_by(cost, "model").items():
        assert money(total) == history.interaction_sum("cost_usd", having("requested_model", model))


def test_two_dimensions_and_filters(http: httpx.Client, history: History) -> None:
    chosen = ("gpt-4o", "gpt-4o-mini")
    body = answer(
        http, "requests", group_by="model,key", model=list(chosen), status="ok", top="100"
    )
    assert body["group_by"] == ["model", "key"]
    found = {(s["group"]["model"], s["group"]["key"]): s["total"] for s in body["series"]}
    expected: dict[tuple[str, str], int] = {}
    for trace in history.traces:
        if trace["requested_model"] in chosen and trace["status"] == "ok":
            group = (trace["requested_model"], trace["api_key_id"])
            expected[group] = expected.get(group, 0) + 1
    assert found == expected and len(found) >= 4
    assert body["total"] == sum(expected.values())
    shown_keys = {key for _, key in found}
    assert body["labels"]["key"] == {
        key_id: name for key_id, name in history.corpus.keys.items() if key_id in shown_keys
    }
    repeated = answer(
        http, "requests", group_by=["model", "key"], model=list(chosen), status="ok", top="100"
    )
    assert repeated["series"] == body["series"]


def test_a_key_filter_takes_an_id_or_a_name(http: httpx.Client, history: History) -> None:
    key_id, name = next(iter(history.corpus.keys.items()))
    expected = history.requests(lambda t: t["api_key_id"] == key_id)
    assert answer(http, "requests", key=key_id)["total"] == expected > 0
    assert answer(http, "requests", key=name)["total"] == expected
    assert answer(http, "requests", key="no-such-key")["total"] == 0


def test_filters_by_cache_hit_and_tag(http: httpx.Client, history: History) -> None:
    hits = answer(http, "requests", cache_hit="true")["total"]
    misses = answer(http, "requests", cache_hit="no")["total"]
    assert hits == history.requests(lambda t: t["cache_hit"]) and hits + misses == len(
        history.traces
    )
    beta = answer(http, "requests", tag="beta")
    assert beta["step"] % 3600 == 0 and beta["grain"] in ("hour", "day")
    assert beta["total"] == history.requests(tagged("beta")) > 0
    by_tag = totals_by(answer(http, "requests", group_by="tag", top="100"), "tag")
    for tag in ("prod", "beta", "eu"):
        assert by_tag[tag] == history.requests(tagged(tag))


def test_top_folds_the_rest_into_other(http: httpx.Client, history: History) -> None:
    everything = answer(http, "requests")
    top = answer(http, "requests", group_by="model", top="1")
    assert [s["group"]["model"] for s in top["series"]][1:] == ["(other)"]
    assert len(top["series"]) == 2
    assert sum(s["total"] for s in top["series"]) == top["total"] == everything["total"]
    for position, (moment, value) in enumerate(everything["series"][0]["points"]):
        assert sum(s["points"][position][1] for s in top["series"]) == value, moment
    counts = history.count_by("requested_model")
    leader = min(counts, key=lambda m: (-counts[m], m))
    assert top["series"][0]["group"] == {"model": leader}
    assert top["series"][0]["total"] == counts[leader]
    rates = answer(http, "error_rate", group_by="model", top="1")
    leader = rates["series"][0]["group"]["model"]
    rest = [t for t in history.traces if t["requested_model"] != leader]
    assert rates["series"][1]["total"] == pytest.approx(
        sum(1 for t in rest if t["status"] == "error") / len(rest)
    )
    assert len(answer(http, "requests", group_by="key")["series"]) <= 11


# --- percentiles --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["p50", "p90", "p95", "p99"])
def test_percentiles_are_within_a_bucket_of_the_exact_ones(
    http: httpx.Client, history: History, name: str
) -> None:
    fraction = int(name[1:]) / 100
    body = answer(http, f"latency_{name}", group_by="model", top="100")
    durations = [t["duration_ms"] for t in history.traces]
    exact = exact_percentile(durations, fraction)
    assert abs(body["total"] - exact) <= bucket_width(exact), (body["total"], exact)
    for series in body["series"]:
        model = series["group"]["model"]
        values = [t["duration_ms"] for t in history.traces if t["requested_model"] == model]
        exact = exact_percentile(values, fraction)
        assert abs(series["total"] - exact) <= bucket_width(exact), (model, series["total"])
    day_start = datetime(2024, 3, 3, tzinfo=UTC)
    day_end = day_start + timedelta(days=1)
    day = answer(
        http, f"latency_{name}", **{"from": day_start.isoformat(), "to": day_end.isoformat()}
    )
    values = [t["duration_ms"] for t in history.traces if day_start <= t["started_at"] < day_end]
    exact = exact_percentile(values, fraction)
    assert abs(day["total"] - exact) <= bucket_width(exact)


# --- workspace scoping --------------------------------------------------------------------------


def test_a_workspace_admin_sees_its_own_numbers_only(
    gateway: GatewayProcess, history: History, other_admin: str
) -> None:
    other = history.corpus.other_workspace
    mine = [t for t in history.traces if t["workspace_id"] == other]
    theirs = [t for t in history.traces if t["workspace_id"] != other]
    foreign_key = next(t["api_key_id"] for t in theirs)
    with gateway.http(other_admin) as http:
        assert answer(http, "requests")["total"] == len(mine) > 0
        cost = answer(http, "cost")["total"]
        assert money(cost) == history.interaction_sum(
            "cost_usd", lambda t: t["workspace_id"] == other
        )
        split = answer(http, "requests", group_by="workspace,key", top="100")
        assert {s["group"]["workspace"] for s in split["series"]} == {other}
        assert {s["group"]["key"] for s in split["series"]} == {t["api_key_id"] for t in mine}
        assert foreign_key not in split["labels"].get("key", {})
        assert set(split["labels"]["workspace"]) == {other}
        models = totals_by(answer(http, "requests", group_by="model", top="100"), "model")
        assert models == {
            m: sum(1 for t in mine if t["requested_model"] == m)
            for m in {t["requested_model"] for t in mine}
        }
        assert answer(http, "requests", key=foreign_key)["total"] == 0
        foreign_name = history.corpus.keys[foreign_key]
        assert answer(http, "requests", key=foreign_name)["total"] == 0
        assert answer(http, "requests", workspace=OTHER_WORKSPACE_SLUG)["total"] == len(mine)
        for workspace in ("default", "0" * 32):
            error = error_of(http.get(f"{API}/requests", params={"workspace": workspace}), 404)
            assert error["param"] == "workspace"


def test_an_operator_can_pick_one_workspace(http: httpx.Client, history: History) -> None:
    other = history.corpus.other_workspace
    picked = answer(http, "requests", workspace=OTHER_WORKSPACE_SLUG)
    assert picked["total"] == history.requests(lambda t: t["workspace_id"] == other)
    split = answer(http, "requests", group_by="workspace")
    assert totals_by(split, "workspace") == history.count_by("workspace_id")
    assert split["labels"]["workspace"][other] == "Other"


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_rows_equal_the_json_points(http: httpx.Client) -> None:
    params = {**RANGE, "group_by": "model,key", "step": "1d"}
    body = answer(http, "cost", **params)
    response = http.get(f"{API}/cost", params={**params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        'attachment; filename="steerway-cost-20240301T000000Z-20240306T000000Z.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["time", "model", "key", "cost"]
    expected = [
        [moment, s["group"]["model"], s["group"]["key"], "" if value is None else value]
        for s in body["series"]
        for moment, value in s["points"]
    ]
    assert rows[1:] == expected and len(expected) == 5 * len(body["series"])
    by_accept = http.get(f"{API}/cost", params=params, headers={"Accept": "text/csv"})
    assert by_accept.text == response.text
    percentiles = http.get(f"{API}/latency_p50", params={**RANGE, "step": "1d", "format": "csv"})
    lines = list(csv.reader(io.StringIO(percentiles.text)))
    assert lines[0] == ["time", "latency_p50"] and lines[1] == ["2024-03-01T00:00:00Z", lines[1][1]]
    assert lines[1][1] and lines[2][1]  # both days had requests
    json_points = answer(http, "latency_p50", step="1d")["series"][0]["points"]
    assert [[m, str(v) if v is not None else ""] for m, v in json_points] == lines[1:]


# --- refusals -----------------------------------------------------------------------------------

BAD = [
    ({"last": "soon"}, "last"),
    ({"last": "1h", "from": "2024-03-01"}, "last"),
    ({"from": "2024-02-30"}, "from"),
    ({"to": "2024-03-01", "from": "2024-03-02"}, "to"),
    ({"step": "90s"}, "step"),
    ({"step": "1m", "last": "30d"}, "step"),
    ({"group_by": "model,key,provider"}, "group_by"),
    ({"group_by": "colour"}, "group_by"),
    ({"group_by": "rule"}, "group_by"),
    ({"rule": "r-eu"}, "rule"),
    ({"tag": "prod", "end_user": "alice"}, "tag"),
    ({"tag": "prod", "step": "5m"}, "step"),
    ({"top": "0"}, "top"),
    ({"top": "101"}, "top"),
    ({"format": "xml"}, "format"),
    ({"status": "great"}, "status"),
    ({"cache_hit": "maybe"}, "cache_hit"),
    ({"colour": "red"}, "colour"),
    ({"model": ""}, "model"),
    ({"model": "\x00"}, "model"),
    ({"step": "1w", "to": "9999-12-30T23:59:59Z", "from": "9999-12-01"}, "to"),
    ({"from": "9999-12-01"}, "from"),
]


@pytest.mark.parametrize(("params", "param"), BAD, ids=[str(p) for p, _ in BAD])
def test_bad_parameters_are_a_400_naming_them(
    http: httpx.Client, params: dict[str, str], param: str
) -> None:
    error = error_of(http.get(f"{API}/requests", params=params), 400)
    assert error["param"] == param, error


def test_an_unknown_metric_is_a_404(http: httpx.Client) -> None:
    error = error_of(http.get(f"{API}/happiness"), 404)
    assert (error["param"], error["code"]) == ("metric", "unknown_metric")


GARBAGE = [
    "",
    " ",
    "-1",
    "0",
    "1.5",
    "1e309",
    "nan",
    "9" * 400,
    "0m",
    "9999999w",
    "1970-01-01T00:00:00Z",
    "9999-12-30T23:59:59Z",
    "10000-01-01",
    "2024-13-01",
    ",",
    "model,,key",
    "tag,end_user",
    "(other)",
    "'; drop table usage_rollups; --",
    "%",
    "ü🙂",
    "\u202e",
    "x" * 10_000,
]


def test_garbage_in_every_parameter_is_never_a_server_error(
    watched: tuple[GatewayProcess, LogWatch], history: History
) -> None:
    gateway, watch = watched
    mark = watch.mark()
    names = [
        "from",
        "to",
        "last",
        "step",
        "group_by",
        "top",
        "format",
        "workspace",
        *(n for n in DIMENSIONS if n != "workspace"),
        "unknown",
    ]
    failures = []
    with gateway.http() as http:
        for metric in ("requests", "latency_p95", "guardrail_verdicts"):
            for name in names:
                for value in GARBAGE:
                    response = http.get(f"{API}/{metric}", params={name: value})
                    if response.status_code == 200:
                        continue
                    if response.status_code not in (400, 404):
                        failures.append(f"{metric} {name}={value[:20]!r}: {response.status_code}")
                        continue
                    error = error_of(response, response.status_code)
                    if response.status_code == 400 and error["param"] != name[:100]:
                        failures.append(f"{metric} {name}={value[:20]!r}: param {error['param']}")
        for pair in (
            {"from": "1970-01-01", "to": "9999-12-30T23:59:59Z", "step": "366d"},
            {"from": "1970-01-01", "to": "9999-12-30T23:59:59Z", "step": "1w"},
            {"from": "9999-12-30T23:00:00Z", "step": "1d"},
            {"last": "9999999w"},
            {"group_by": "tag", "end_user": "a"},
            {"group_by": "tag", "top": "100", "step": "1h", "last": "83d"},
        ):
            response = http.get(f"{API}/requests", params=pair)
            if response.status_code not in (200, 400):
                failures.append(f"{pair}: {response.status_code} {response.text[:200]}")
        for path in ("%00", "x" * 5000, "requests%2F..", "%ff"):
            response = http.get(f"{API}/{path}")
            if response.status_code not in (400, 404):
                failures.append(f"{path[:20]}: {response.status_code}")
        assert http.get("/readyz").status_code == 200
    assert not failures, "\n".join(failures)
    assert_no_traceback(watch.since(mark))
