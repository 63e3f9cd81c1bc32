"""`POST /admin/api/alerts/rules/preview` against a running gateway on SQLite and Postgres: a
rule in the body, not saved, previewed over traffic planted in the last 7 days; the access
model and the 400s of creating a rule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from telemetry.db import create_engine
from telemetry.writers import BatchWriter
from tests.admin_ui.conftest import error_of, workspace_keys
from tests.admin_ui.console_fixtures import address, console_gateway
from tests.admin_ui.test_alerts_api import API, listed, rule
from tests.console_users import create_user, sign_in
from tests.e2e.conftest import Database, GatewayProcess, backend_database, mock_provider
from tests.telemetry import make_bundle

__all__ = ["backend_database", "console_gateway", "mock_provider"]


def plant_burst(database: Database, *, hours_ago: int, minutes: int, model: str) -> None:
    """Ten requests a minute for `minutes` minutes, half of them errors, from `hours_ago`
    hours ago (on the minute)."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=hours_ago)

    async def run() -> None:
        engine = create_engine(database.url)
        try:
            await BatchWriter(engine).write(
                [
                    make_bundle(
                        started_at=(start + timedelta(minutes=minute)).timestamp() + 1 + index,
                        status="error" if index < 5 else "ok",
                        model=model,
                    )
                    for minute in range(minutes)
                    for index in range(10)
                ]
            )
        finally:
            await engine.dispose()

    asyncio.run(run())


def preview(http: Any, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = http.post(f"{API}/rules/preview", json=body)
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()
    return found


def test_a_rule_is_previewed_over_the_last_7_days_and_not_saved(
    console_gateway: GatewayProcess,
) -> None:
    plant_burst(console_gateway.database, hours_ago=30, minutes=40, model="preview-a")
    plant_burst(console_gateway.database, hours_ago=50, minutes=20, model="preview-b")
    body = rule("Preview", window="10m", filters={"model": ["preview-a", "preview-b"]})
    body.pop("min_requests")
    with console_gateway.http() as http:
        before = listed(http, "rules")
        found = preview(http, body)
        assert listed(http, "rules") == before
    assert found["object"] == "alert_rule_preview"
    assert (found["step"], found["point_step"]) == (300, 300)
    start = datetime.fromisoformat(found["from"])
    assert datetime.fromisoformat(found["to"]) - start == timedelta(days=7)
    assert found["thresholds"] == {"warning": 0.02, "critical": 0.05}
    assert found["metric"] == {
        "name": "error_rate",
        "kind": None,
        "title": "Error rate",
        "unit": "percent",
    }
    groups = {group["labels"]["model"]: group for group in found["groups"]}
    assert set(groups) == {"preview-a", "preview-b"}
    for group in groups.values():
        assert len(group["points"]) == 2016
        (episode,) = group["episodes"]
        assert episode["severity"] == "critical" and episode["fired_at"] is not None
    # 40 minutes of errors, read through 10-minute windows every 5 minutes, held 1 minute first.
    a = groups["preview-a"]["episodes"][0]
    fired = datetime.fromisoformat(a["fired_at"])
    ended = datetime.fromisoformat(a["ended_at"])
    assert ended - fired == timedelta(seconds=a["firing_s"])
    assert timedelta(minutes=40) <= ended - fired <= timedelta(minutes=50)
    assert max(value for _, value in groups["preview-a"]["points"] if value) == 0.5
    totals = found["totals"]
    assert totals["fired"] == 2 and totals["by_severity"]["critical"]["fired"] == 2
    assert totals["by_severity"]["warning"] == {"fired": 0, "hours_firing": 0}
    assert totals["hours_firing"] == round(
        sum(group["episodes"][0]["firing_s"] for group in groups.values()) / 3600, 3
    )


def test_errors_name_the_field_and_access_is_that_of_creating_a_rule(
    console_gateway: GatewayProcess,
) -> None:
    cases = {
        "window": rule(window="soon"),
        "metric": rule(metric="no_such_metric"),
        "critical": rule(condition="below", warning=0.02, critical=0.05),
        "colour": rule(colour="red"),
        "name": {"metric": "error_rate"},
        "kind": rule(metric="anomaly_score", window="1h"),
    }
    with console_gateway.http() as http:
        for field, body in cases.items():
            error = error_of(http.post(f"{API}/rules/preview", json=body), 400)
            assert error["param"] == field, (field, error)
        anomaly = preview(
            http,
            rule(metric="anomaly_score", kind="error_rate", window="1h", warning=3, critical=6),
        )
        assert (anomaly["step"], anomaly["metric"]["unit"]) == (3600, "score")
        assert all(len(group["points"]) == 168 for group in anomaly["groups"])
    slug, _, _ = workspace_keys(console_gateway, "previews")
    elsewhere, _, _ = workspace_keys(console_gateway, "elsewhere")
    url = console_gateway.database.url
    viewer = sign_in(
        console_gateway.url, create_user(url, role="viewer", workspace=slug), **address()
    )
    with viewer.client() as http:
        assert error_of(http.post(f"{API}/rules/preview", json=rule()), 403)["code"] == (
            "permission_denied"
        )
    admin = sign_in(
        console_gateway.url, create_user(url, role="admin", workspace=slug), **address()
    )
    with admin.client() as http:
        assert preview(http, rule())["totals"]["fired"] == 0
        other = {**rule(), "workspace": elsewhere}
        error_of(http.post(f"{API}/rules/preview", json=other), 404)
