"""The anomaly detector on `steerway demo-data`'s history: it finds the planted cost spike and
latency regression, and little else.

Three weeks (the plants come after the first two, so each is compared with the same hours of two
earlier weeks) of 30,000 requests on SQLite. The hourly series are built straight from the raw
rows with SQL: cost per workspace from `ai_interactions.cost_usd`, and mean latency per provider
of the answered attempts (cache hits left out) in hours with at least ten of them.

Besides the plants, the demo's own traffic holds genuine cost anomalies: now and then a copilot
user pastes a prompt of 130,000 tokens or more, which GPT-4o refuses and Claude Sonnet, the
fallback, answers for about 50 cents, several times what the workspace spends in a quiet hour.
Those hours are told apart (the hour holds such a request); whatever else is found is noise,
and it stays within `OTHERS`.

The same history is then served by a gateway, and `GET /admin/api/analytics/anomalies` (the
detector on the roll-ups, per workspace and per model, latency as the mean of answered requests)
must find both plants in the week after the first two: the spike at its exact hours in its
workspace's cost, the regression in the Anthropic models' latency. Whatever else it finds in
cost by workspace and latency by model is a huge prompt, touches a provider's incident (an hour
in which a fifth of its attempts failed: the answers that got through after a retry were slow
too), or is within `API_OTHERS`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

import migrations
from gateway.demo.data import DemoOptions, DemoReport, write_demo_data
from gateway.demo.plants import COST_SPIKE, LATENCY_REGRESSION, Plant
from telemetry.analytics import AnalyticsQuery, run_query
from telemetry.analytics_hourly import ALL, HOUR, hourly_series
from telemetry.anomalies import Anomaly, find_anomalies, score_series
from telemetry.db import create_engine
from telemetry.schema import money_from_sql
from tests.e2e.conftest import Database, GatewayProcess
from tests.telemetry import anomalies_reference

SEED = 1
DAYS = 21
REQUESTS = 30_000
END = datetime(2026, 11, 29, tzinfo=UTC)  # a Sunday
LEAST_ANSWERED = 10
HUGE_PROMPT = 100_000
OTHERS = 4
"""At most this many anomalies besides the plants and the huge prompts over the nine series
(five workspaces' cost, four providers' latency; about 4,000 scored hours). Measured: 2 with
this seed; 1 to 6 with seeds 1 to 6, mostly single quiet hours scoring just over 4."""

API_OTHERS = 4
"""At most this many anomalies besides the plants, huge prompts and incidents in the API's
answer for cost by workspace and latency by model. Measured: 2 (an hour of GPT-4o-mini's latency
and one of Globex's cost, both scoring under 5)."""
INCIDENT_SHARE = 0.2
ANTHROPIC_MODELS = frozenset({"claude-sonnet-4-5", "claude-haiku-4-5"})

HOUR_OF = "strftime('%Y-%m-%d %H:00:00', i.started_at)"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, DemoReport]:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'steerway.db'}"
    migrations.upgrade(url)

    async def write() -> DemoReport:
        engine = create_engine(url)
        try:
            options = DemoOptions(days=DAYS, requests=REQUESTS, seed=SEED, end=END)
            return await write_demo_data(engine, options)
        finally:
            await engine.dispose()

    return Database(url), asyncio.run(write())


def hour(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def grouped(rows: Iterable[dict[str, Any]], name: str, value: str) -> dict[str, list[Any]]:
    series: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        series[row[name]].append((hour(row["hour"]), row[value]))
    return series


def cost_by_workspace(database: Database) -> dict[str, list[tuple[datetime, float]]]:
    rows = database.rows(
        f"SELECT w.slug, {HOUR_OF} AS hour, sum(i.cost_usd) AS cost FROM ai_interactions i "
        "JOIN workspaces w ON w.workspace_id = i.workspace_id GROUP BY w.slug, hour"
    )
    for row in rows:
        row["cost"] = float(money_from_sql(row["cost"], "sqlite") or 0)
    return grouped(rows, "slug", "cost")


def latency_by_provider(database: Database) -> dict[str, list[tuple[datetime, float]]]:
    rows = database.rows(
        f"SELECT i.provider, {HOUR_OF} AS hour, avg(i.latency_ms) AS latency "
        "FROM ai_interactions i WHERE i.status = 'ok' AND NOT i.cache_hit "
        f"GROUP BY i.provider, hour HAVING count(*) >= {LEAST_ANSWERED}"
    )
    return grouped(rows, "provider", "latency")


def huge_prompt_hours(database: Database) -> set[tuple[str, datetime]]:
    rows = database.rows(
        f"SELECT DISTINCT w.slug, {HOUR_OF} AS hour FROM ai_interactions i "
        "JOIN workspaces w ON w.workspace_id = i.workspace_id "
        f"WHERE i.prompt_tokens > {HUGE_PROMPT} AND i.cost_usd > 0"
    )
    return {(row["slug"], hour(row["hour"])) for row in rows}


@pytest.fixture(scope="module")
def found(history: tuple[Database, DemoReport]) -> dict[tuple[str, str], list[Anomaly]]:
    """Anomalies by (kind, workspace or provider). A cost series covers the whole history (an
    hour without rows spent nothing); a latency series only the hours it has."""
    database, report = history
    anomalies = {}
    for slug, points in cost_by_workspace(database).items():
        anomalies[("cost", slug)] = find_anomalies(
            points, "cost", start=report.start, end=report.end
        )
    for provider, points in latency_by_provider(database).items():
        anomalies[("latency", provider)] = find_anomalies(points, "latency")
    return anomalies


def plant(report: DemoReport, kind: str) -> Plant:
    return next(p for p in report.planted if p.kind == kind)


def overlaps(anomaly: Anomaly, window: Plant) -> bool:
    return anomaly.start < window.end and window.start < anomaly.end


def test_both_plants_come_after_two_weeks_of_history(
    history: tuple[Database, DemoReport],
) -> None:
    database, report = history
    assert {p.kind for p in report.planted} == {COST_SPIKE, LATENCY_REGRESSION}
    for planted in report.planted:
        assert report.start + timedelta(days=14) <= planted.start < planted.end <= report.end
    spike = plant(report, COST_SPIKE)
    # The key sent far more than in the same hours a week earlier.
    counts = [
        database.rows(
            "SELECT count(*) AS n FROM traces WHERE api_key_id = :key AND started_at >= :start "
            "AND started_at < :end",
            key=spike.key_id,
            start=f"{spike.start - back:%Y-%m-%d %H:%M:%S}",
            end=f"{spike.end - back:%Y-%m-%d %H:%M:%S}",
        )[0]["n"]
        for back in (timedelta(0), timedelta(days=7))
    ]
    assert counts[0] > 5 * max(counts[1], 1)


def test_the_cost_spike_is_found_in_its_workspace(
    history: tuple[Database, DemoReport], found: dict[tuple[str, str], list[Anomaly]]
) -> None:
    spike = plant(history[1], COST_SPIKE)
    assert spike.workspace is not None
    hits = [a for a in found[("cost", spike.workspace)] if overlaps(a, spike)]
    assert len(hits) == 1
    assert hits[0].direction == "up" and hits[0].score >= 4
    assert hits[0].actual > 3 * hits[0].expected


def test_the_latency_regression_is_found_for_its_provider(
    history: tuple[Database, DemoReport], found: dict[tuple[str, str], list[Anomaly]]
) -> None:
    regression = plant(history[1], LATENCY_REGRESSION)
    assert regression.provider is not None
    hits = [a for a in found[("latency", regression.provider)] if overlaps(a, regression)]
    assert hits and all(a.direction == "up" for a in hits)
    assert sum(a.hours for a in hits) >= 4  # of its six hours
    assert max(a.actual / a.expected for a in hits) > 2


def test_little_else_is_found(
    history: tuple[Database, DemoReport], found: dict[tuple[str, str], list[Anomaly]]
) -> None:
    database, report = history
    spike, regression = plant(report, COST_SPIKE), plant(report, LATENCY_REGRESSION)
    huge = huge_prompt_hours(database)
    assert len(found) == 9  # five workspaces, four providers
    explained, others = [], []
    for (kind, name), anomalies in found.items():
        for anomaly in anomalies:
            if kind == "cost" and name == spike.workspace and overlaps(anomaly, spike):
                continue
            if kind == "latency" and name == regression.provider and overlaps(anomaly, regression):
                continue
            hours = [anomaly.start + n * timedelta(hours=1) for n in range(anomaly.hours)]
            if kind == "cost" and all((name, at) in huge for at in hours):
                explained.append((name, anomaly))
            else:
                others.append((kind, name, anomaly))
    assert len(explained) <= len(huge)
    assert len(others) <= OTHERS, others


def test_the_demo_series_score_as_they_did_when_first_written(
    history: tuple[Database, DemoReport],
) -> None:
    database, report = history
    series = [("cost", points) for points in cost_by_workspace(database).values()]
    series += [("latency", points) for points in latency_by_provider(database).values()]
    for kind, points in series:
        start, end = (report.start, report.end) if kind == "cost" else (None, None)
        expected = anomalies_reference.score_series(points, kind, start=start, end=end)
        found = score_series(points, kind, start=start, end=end)
        assert [repr(hour) for hour in found] == [repr(hour) for hour in expected]


def test_hourly_series_are_the_analytics_answers_hour_by_hour(
    history: tuple[Database, DemoReport],
) -> None:
    """`hourly_series` reads several metrics in one statement, straight from its rows: the
    same values as `run_query` gives each metric, but no point for an hour without rows (where
    `run_query` gives a sum of nothing: zero requests, no error rate)."""
    database, report = history
    start, end = report.end - timedelta(days=9), report.end

    async def compare() -> None:
        engine = create_engine(database.url)
        try:
            for dimension, groups in ((None, [ALL]), ("model", ["gpt-4o", "claude-sonnet-4-5"])):
                for metrics, filters in (
                    (("requests", "cost", "error_rate"), {}),
                    (("latency_mean", "requests"), {"status": ("ok",), "cache_hit": ("false",)}),
                ):
                    found = await hourly_series(
                        engine,
                        metrics,
                        start,
                        end,
                        dimension=dimension,
                        groups=[] if dimension is None else groups,
                        filters=filters,
                        scope=None,
                    )
                    for metric in metrics:
                        asked: dict[str, tuple[str, ...]] = dict(filters)
                        if dimension is not None:
                            asked[dimension] = tuple(groups)
                        answer = await run_query(
                            engine,
                            AnalyticsQuery(
                                metric=metric,
                                start=start,
                                end=end,
                                step=HOUR,
                                group_by=(dimension,) if dimension else (),
                                filters=asked,
                            ),
                            scope=None,
                        )
                        for each in answer.series:
                            group = each.group.get(dimension, ALL) if dimension else ALL
                            expected = {
                                moment: float(value)
                                for moment, value in each.points
                                if value is not None
                            }
                            points = dict(found[metric][group])
                            assert len(points) == len(found[metric][group])
                            assert points == {m: v for m, v in expected.items() if m in points}
                            assert all(v == 0 for m, v in expected.items() if m not in points)
                            assert len(points) > 100
        finally:
            await engine.dispose()

    asyncio.run(compare())


# --- the anomalies API on the same history ---------------------------------------------------


@pytest.fixture(scope="module")
def served(
    history: tuple[Database, DemoReport], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    database, _ = history
    process = GatewayProcess(
        database,
        None,
        tmp_path_factory.mktemp("served"),
        master_key="sk-demo-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def answered(history: tuple[Database, DemoReport], served: GatewayProcess) -> list[dict[str, Any]]:
    """The API's anomalies of cost and latency in the week after the first two."""
    _, report = history
    params = {
        "from": (report.start + timedelta(days=14)).isoformat(),
        "to": report.end.isoformat(),
        "kind": "cost,latency",
    }
    with served.http() as http:
        response = http.get("/admin/api/analytics/anomalies", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"] == f"{report.start + timedelta(days=14):%Y-%m-%dT%H:%M:%SZ}"
    assert body["group_by"] == ["workspace", "model"]
    starts = [item["start"] for item in body["anomalies"]]
    assert starts == sorted(starts, reverse=True)  # newest first
    anomalies: list[dict[str, Any]] = body["anomalies"]
    return anomalies


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def touches(item: dict[str, Any], window: Plant) -> bool:
    return at(item["start"]) < window.end and window.start < at(item["end"])


def incident_hours(database: Database) -> set[tuple[str, datetime]]:
    """(model, hour) of hours in which the model's provider failed a fifth of its attempts."""
    rows = database.rows(
        f"SELECT i.provider, {HOUR_OF} AS hour FROM ai_interactions i GROUP BY i.provider, hour "
        f"HAVING count(*) >= {LEAST_ANSWERED} AND "
        f"sum(CASE WHEN i.status = 'ok' THEN 0 ELSE 1 END) >= {INCIDENT_SHARE} * count(*)"
    )
    failing = {(row["provider"], hour(row["hour"])) for row in rows}
    served_by = database.rows(
        "SELECT DISTINCT requested_model AS model, provider FROM ai_interactions"
    )
    return {
        (row["model"], moment)
        for row in served_by
        for provider, moment in failing
        if provider == row["provider"]
    }


def test_the_api_finds_the_cost_spike_at_its_hours(
    history: tuple[Database, DemoReport], answered: list[dict[str, Any]]
) -> None:
    spike = plant(history[1], COST_SPIKE)
    hits = [
        item
        for item in answered
        if item["kind"] == "cost"
        and item["group"] == {"workspace": spike.workspace_id}
        and touches(item, spike)
    ]
    assert len(hits) == 1, answered
    (hit,) = hits
    assert (at(hit["start"]), at(hit["end"])) == (spike.start, spike.end)
    assert hit["score"] >= 4 and hit["direction"] == "up"
    assert Decimal(hit["actual"]) > 3 * Decimal(hit["expected"])


def test_the_api_finds_the_latency_regression_in_the_anthropic_models(
    history: tuple[Database, DemoReport], answered: list[dict[str, Any]]
) -> None:
    regression = plant(history[1], LATENCY_REGRESSION)
    hits = [
        item
        for item in answered
        if item["kind"] == "latency"
        and item["group"].get("model") in ANTHROPIC_MODELS
        and touches(item, regression)
    ]
    assert {item["group"]["model"] for item in hits} == ANTHROPIC_MODELS
    covered = {
        at(item["start"]) + n * timedelta(hours=1) for item in hits for n in range(item["hours"])
    }
    assert len(covered) >= 4  # of its six hours
    assert all(regression.start <= moment < regression.end for moment in covered)
    assert max(item["actual"] / item["expected"] for item in hits) > 2


def test_the_api_finds_little_else(
    history: tuple[Database, DemoReport], answered: list[dict[str, Any]]
) -> None:
    database, report = history
    spike, regression = plant(report, COST_SPIKE), plant(report, LATENCY_REGRESSION)
    slugs = {row["workspace_id"]: row["slug"] for row in database.rows("SELECT * FROM workspaces")}
    huge, incidents = huge_prompt_hours(database), incident_hours(database)
    others = []
    for item in answered:
        hours = [at(item["start"]) + n * timedelta(hours=1) for n in range(item["hours"])]
        workspace, model = item["group"].get("workspace"), item["group"].get("model")
        if item["kind"] == "cost" and workspace is not None:
            if workspace == spike.workspace_id and touches(item, spike):
                continue
            if all((slugs[workspace], moment) in huge for moment in hours):
                continue
            others.append(item)
        elif item["kind"] == "latency" and model is not None:
            if model in ANTHROPIC_MODELS and touches(item, regression):
                continue
            if any((model, moment) in incidents for moment in hours):
                continue
            others.append(item)
    assert len(others) <= API_OTHERS, others
