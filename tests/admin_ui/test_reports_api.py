"""`/admin/api/reports` against a running gateway on SQLite and Postgres, over a demo history:
the CSV and JSON a report is made in hold the analytics API's numbers for the same range;
definitions are created, run, downloaded, replaced and deleted within the caller's workspace,
each change audited; bad bodies are 400s naming the field; another workspace's reports are
404s."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.demo.data import DemoOptions, write_demo_data
from telemetry.db import create_engine
from tests.admin_ui.conftest import error_of, workspace_keys
from tests.e2e.conftest import (
    Database,
    GatewayProcess,
    MockProcess,
    backend_database,
    mock_config,
    mock_provider,
)

__all__ = ["backend_database", "mock_provider"]

API = "/admin/api/reports"
PARIS = ZoneInfo("Europe/Paris")
DAYS = 16
"""Enough history for the previous week whatever the day the tests run."""


@pytest.fixture(scope="module")
def report_gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """A gateway over a database holding a demo history up to today's midnight (UTC)."""

    async def write() -> None:
        engine = create_engine(backend_database.url)
        try:
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            await write_demo_data(engine, DemoOptions(days=DAYS, requests=4000, seed=3, end=today))
        finally:
            await engine.dispose()

    asyncio.run(write())
    process = GatewayProcess(
        backend_database,
        mock_config(mock_provider),
        tmp_path_factory.mktemp("reports"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


def definition(**changes: Any) -> dict[str, Any]:
    return {
        "name": f"Finance {secrets.token_hex(3)}",
        "sections": ["summary", "cost", "top_keys", "latency_errors", "cache_roi", "guardrails"],
        "range": "previous_week",
        "schedule": "0 7 * * mon",
        "time_zone": "UTC",
        "formats": ["csv", "json"],
        **changes,
    }


def created(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"{API}/", json=body)
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


def run(http: httpx.Client, definition_id: str) -> dict[str, Any]:
    response = http.post(f"{API}/{definition_id}/run")
    assert response.status_code == 201, response.text
    instance: dict[str, Any] = response.json()
    assert instance["status"] == "done", instance
    return instance


def analytics(
    http: httpx.Client, metric: str, instance: dict[str, Any], **params: str
) -> dict[str, Any]:
    response = http.get(
        f"/admin/api/analytics/{metric}",
        params={
            "from": instance["range"]["start"],
            "to": instance["range"]["end"],
            "step": "3600",
            "workspace": instance["workspace_id"],
            **params,
        },
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def same(reported: Any, answered: Any) -> bool:
    """Money exactly, counts exactly, percentiles and rates to the last bits of a float (the
    CSV's cells are text)."""
    if isinstance(answered, str):
        return Decimal(reported) == Decimal(answered)
    if isinstance(answered, int):
        return int(reported) == answered and "." not in str(reported)
    return math.isclose(float(reported), float(answered), rel_tol=1e-12)


def section(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in document["sections"] if s["name"] == name)
    return found


def table(document: dict[str, Any], section_name: str, name: str) -> dict[str, list[Any]]:
    """A table's rows by their first cell."""
    found = next(t for t in section(document, section_name)["tables"] if t["name"] == name)
    return {row[0]: row for row in found["rows"]}


def workspace_id(http: httpx.Client, slug: str) -> str:
    found: str = http.get(f"/admin/api/workspaces/{slug}").json()["id"]
    return found


def test_the_csv_and_json_hold_the_analytics_apis_numbers(
    report_gateway: GatewayProcess,
) -> None:
    with report_gateway.http() as http:
        acme = workspace_id(http, "acme")
        item = created(http, definition(workspace=acme))
        instance = run(http, item["id"])
        start = datetime.fromisoformat(instance["range"]["start"])
        end = datetime.fromisoformat(instance["range"]["end"])
        assert end - start == timedelta(days=7) and start.weekday() == 0
        files = {file["format"]: file for file in instance["files"]}
        assert set(files) == {"csv", "json"}
        document = http.get(files["json"]["url"]).json()
        lines = list(csv.DictReader(io.StringIO(http.get(files["csv"]["url"]).text)))

        figures = {f["name"]: f for f in section(document, "summary")["figures"]}
        csv_figures = {
            line["row"]: line["value"]
            for line in lines
            if line["section"] == "summary"
            and line["table"] == "figures"
            and line["column"] == "value"
        }
        for metric in ("requests", "errors", "cost", "total_tokens", "cost_saved", "latency_p95"):
            answer = analytics(http, metric, instance)
            assert answer["total"] not in (None, 0, "0"), metric  # the week has traffic
            assert same(figures[metric]["value"], answer["total"]), metric
            assert same(csv_figures[metric], answer["total"]), metric
            previous = analytics(
                http,
                metric,
                {
                    **instance,
                    "range": {
                        "start": (start - timedelta(days=7)).isoformat(),
                        "end": instance["range"]["start"],
                    },
                },
            )
            assert same(figures[metric]["previous"], previous["total"]), metric

        by_model = analytics(http, "cost", instance, group_by="model", top="25")
        reported = table(document, "cost", "by_model")
        answered = {s["group"]["model"]: s["total"] for s in by_model["series"]}
        assert set(reported) == set(answered)
        for model, cost in answered.items():
            assert same(reported[model][1], cost), model
        csv_costs = [
            Decimal(line["value"])
            for line in lines
            if line["table"] == "by_model"
            and line["section"] == "cost"
            and line["column"] == "cost"
        ]
        assert sum(csv_costs) == Decimal(analytics(http, "cost", instance)["total"])

        by_key = analytics(http, "requests", instance, group_by="key", top="25")
        names = by_key["labels"]["key"]
        top_keys = table(document, "top_keys", "top_keys")
        for series in by_key["series"]:
            key = series["group"]["key"]
            assert same(top_keys[names.get(key, key)][1], series["total"]), key

        p95_by_provider = analytics(http, "latency_p95", instance, group_by="provider")
        providers = table(document, "latency_errors", "by_provider")
        for series in p95_by_provider["series"]:
            row = providers[series["group"]["provider"] or "(none)"]  # denied: no provider
            assert row[5] is None if series["total"] is None else same(row[5], series["total"])

        hits = analytics(http, "cache_hits", instance)["total"]
        cache = {f["name"]: f["value"] for f in section(document, "cache_roi")["figures"]}
        assert same(cache["cache_hits"], hits)


def test_guardrail_activity_is_the_analytics(report_gateway: GatewayProcess) -> None:
    with report_gateway.http() as http:
        initech = workspace_id(http, "initech")
        item = created(http, definition(workspace=initech, sections=["guardrails"]))
        instance = run(http, item["id"])
        document = http.get(instance["files"][1]["url"]).json()
        verdicts = analytics(http, "guardrail_verdicts", instance, group_by="action")
        assert verdicts["total"], "the demo's PII audit finds something every week"
        figures = {f["name"]: f["value"] for f in section(document, "guardrails")["figures"]}
        assert same(figures["verdicts"], verdicts["total"])
        by_action = table(document, "guardrails", "by_action")
        for series in verdicts["series"]:
            if series["total"]:
                assert same(by_action[series["group"]["action"]][1], series["total"])


def audit_actions(gateway: GatewayProcess, target_id: str) -> list[str]:
    rows = gateway.database.rows(
        "SELECT action FROM audit_log WHERE target_id = :id ORDER BY audit_id", id=target_id
    )
    return [row["action"] for row in rows]


def test_a_report_is_created_run_downloaded_replaced_and_deleted(
    report_gateway: GatewayProcess,
) -> None:
    with report_gateway.http() as http:
        listed = http.get(f"{API}/").json()["data"]
        weekly = [item for item in listed if item["built_in"] == "weekly_summary"]
        every = report_gateway.database.rows("SELECT workspace_id FROM workspaces")
        assert {w["workspace_id"] for w in weekly} == {w["workspace_id"] for w in every}
        assert {(w["schedule"], w["range"], tuple(w["formats"])) for w in weekly} == {
            ("0 8 * * mon", "previous_week", ("csv", "pdf"))
        }
        conflict = error_of(http.delete(f"{API}/{weekly[0]['id']}"), 409)
        assert conflict["param"] == "definition_id"

        item = created(http, definition(name="Finance weekly", time_zone="Europe/Paris"))
        assert item["object"] == "report_definition" and item["built_in"] is None
        next_run = datetime.fromisoformat(item["next_run_at"]).astimezone(PARIS)
        assert (next_run.weekday(), next_run.time()) == (0, time(7))
        assert http.get(f"{API}/{item['id']}").json() == item

        instance = run(http, item["id"])
        assert instance["trigger"] == "manual"
        start = datetime.fromisoformat(instance["range"]["start"])
        assert start.astimezone(PARIS).time() == time(0) and start.astimezone(UTC).hour in (22, 23)
        csv_file = http.get(f"{API}/instances/{instance['id']}/files/csv")
        assert csv_file.status_code == 200
        assert csv_file.headers["content-type"] == "text/csv; charset=utf-8"
        day = start.astimezone(PARIS).date().isoformat()
        assert day != start.astimezone(UTC).date().isoformat()  # named by the Paris day
        assert csv_file.headers["content-disposition"] == (
            f'attachment; filename="finance-weekly-{day}.csv"'
        )
        described = {f["format"]: f for f in instance["files"]}["csv"]
        assert described["size"] == len(csv_file.content)
        json_file = http.get(f"{API}/instances/{instance['id']}/files/json")
        assert json_file.headers["content-type"] == "application/json"
        assert json.loads(json_file.content)["title"] == "Finance weekly"
        assert http.get(f"{API}/instances/{instance['id']}").json() == instance
        assert [i["id"] for i in http.get(f"{API}/{item['id']}/instances").json()["data"]] == [
            instance["id"]
        ]
        error_of(http.get(f"{API}/instances/{instance['id']}/files/pdf"), 404)
        assert (
            error_of(http.get(f"{API}/instances/{instance['id']}/files/xlsx"), 400)["param"]
            == "format"
        )

        replaced = http.put(
            f"{API}/{item['id']}", json={**definition(name="Finance weekly"), "enabled": False}
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["enabled"] is False and replaced.json()["next_run_at"] is None

        assert http.delete(f"{API}/{item['id']}").status_code == 204
        error_of(http.get(f"{API}/{item['id']}"), 404)
        error_of(http.get(f"{API}/instances/{instance['id']}"), 404)
    assert audit_actions(report_gateway, item["id"]) == [
        "report.create",
        "report.run",
        "report.update",
        "report.delete",
    ]


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"schedule": "0 25 * * *"}, "schedule"),
        ({"schedule": "every monday"}, "schedule"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"sections": ["summary", "weather"]}, "sections[1]"),
        ({"sections": []}, "sections"),
        ({"range": "previous_year"}, "range"),
        ({"formats": ["xlsx"]}, "formats[0]"),
        ({"enabled": "yes"}, "enabled"),
        ({"name": ""}, "name"),
        ({"recipients": "ops@example.com"}, "recipients"),
        ({"recipients": ["0" * 32]}, "recipients[0]"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(
    report_gateway: GatewayProcess, changes: dict[str, Any], param: str
) -> None:
    with report_gateway.http() as http:
        error = error_of(http.post(f"{API}/", json=definition(**changes)), 400)
    assert error["param"] == param, error


def channel(http: httpx.Client, kind: str, **extra: Any) -> str:
    settings = {
        "webhook": {"url": "https://hooks.example/reports"},
        "pagerduty": {},
    }[kind]
    secrets_ = {
        "pagerduty": {"routing_key": "R" * 32},
        "webhook": {"signing_secret": "whsec-" + secrets.token_hex(8)},
    }[kind]
    response = http.post(
        "/admin/api/alerts/channels",
        json={
            "kind": kind,
            "name": f"{kind} {secrets.token_hex(3)}",
            "settings": settings,
            "secrets": secrets_,
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    found: str = response.json()["id"]
    return found


def test_recipients_are_channels_of_the_workspace_that_take_reports(
    report_gateway: GatewayProcess,
) -> None:
    _, admin, _ = workspace_keys(report_gateway, "recipients")
    with report_gateway.http() as http, report_gateway.http(admin) as own:
        elsewhere = channel(http, "webhook")  # the default workspace's
        pager = channel(own, "pagerduty")
        hook = channel(own, "webhook")
        wrong = error_of(own.post(f"{API}/", json=definition(recipients=[hook, elsewhere])), 400)
        assert wrong["param"] == "recipients[1]"
        pagerduty = error_of(own.post(f"{API}/", json=definition(recipients=[pager])), 400)
        assert pagerduty["param"] == "recipients[0]" and "pagerduty" in pagerduty["message"]
        made = created(own, definition(recipients=[hook]))
        assert made["recipients"] == [hook]
        clash = error_of(own.post(f"{API}/", json=definition(name=made["name"])), 409)
        assert clash["param"] == "name"


def test_another_workspaces_reports_are_not_found(report_gateway: GatewayProcess) -> None:
    slug, admin, _ = workspace_keys(report_gateway, "outsider")
    with report_gateway.http() as http, report_gateway.http(admin) as outsider:
        item = created(http, definition())
        instance = run(http, item["id"])
        for response in (
            outsider.get(f"{API}/{item['id']}"),
            outsider.put(f"{API}/{item['id']}", json=definition()),
            outsider.delete(f"{API}/{item['id']}"),
            outsider.post(f"{API}/{item['id']}/run"),
            outsider.get(f"{API}/{item['id']}/instances"),
            outsider.get(f"{API}/instances/{instance['id']}"),
            outsider.get(f"{API}/instances/{instance['id']}/files/csv"),
        ):
            error_of(response, 404)
        error_of(outsider.post(f"{API}/", json=definition(workspace="acme")), 404)
        seen = outsider.get(f"{API}/").json()["data"]
        assert {report["workspace_id"] for report in seen} == {workspace_id(http, slug)}
    assert audit_actions(report_gateway, item["id"]) == ["report.create", "report.run"]
