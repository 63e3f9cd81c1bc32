"""`/admin/reports` against a running gateway on SQLite and Postgres: a workspace's admin sees
its own reports and no other's, runs one with "Run now" (the same run as the API's, audited),
and cannot run another workspace's (404); a user key reaches neither (403)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.admin_ui.conftest import workspace_keys
from tests.e2e.conftest import GatewayProcess, backend_database, gateway, mock_provider

__all__ = ["backend_database", "gateway", "mock_provider"]


def _report(gateway: GatewayProcess, admin_key: str, name: str) -> dict[str, Any]:
    with gateway.http(admin_key) as http:
        made = http.post(
            "/admin/api/reports",
            json={
                "name": name,
                "sections": ["summary", "cost"],
                "range": "previous_day",
                "schedule": "30 6 * * 1-5",
                "time_zone": "America/New_York",
                "formats": ["csv", "json"],
            },
        )
    assert made.status_code == 201, made.text
    item: dict[str, Any] = made.json()
    return item


def _page(http: httpx.Client) -> str:
    answer = http.get("/admin/reports")
    assert answer.status_code == 200, answer.text
    return answer.text


def test_each_workspace_sees_and_runs_only_its_own_reports(gateway: GatewayProcess) -> None:
    slug_a, admin_a, user_a = workspace_keys(gateway, "reportsa")
    _, admin_b, _ = workspace_keys(gateway, "reportsb")
    name_a = f"Ops daily {secrets.token_hex(3)}"
    name_b = f"Finance daily {secrets.token_hex(3)}"
    report_a = _report(gateway, admin_a, name_a)
    report_b = _report(gateway, admin_b, name_b)

    with gateway.http(admin_a) as http:
        page = _page(http)
        assert name_a in page and name_b not in page
        assert report_b["id"] not in page
        assert "Weekdays at 06:30" in page and "America/New_York" in page
        assert f'id="no-instances-{report_a["id"]}"' in page
        assert http.post(f"/admin/reports/{report_b['id']}/run").status_code == 404
        ran = http.post(f"/admin/reports/{report_a['id']}/run", data={"workspace": slug_a})
        assert ran.status_code == 303, ran.text
        location = ran.headers["location"]
        assert location.startswith(f"/admin/reports?workspace={slug_a}&ran=")
        instance_id = location.split("ran=", 1)[1].split("#", 1)[0]
        page = _page(http)
        assert f'id="instance-{instance_id}"' in page
        for fmt in ("csv", "json"):
            link = f"/admin/api/reports/instances/{instance_id}/files/{fmt}"
            assert f'href="{link}"' in page
            assert http.get(link).status_code == 200
        assert "not sent" in page, "a report without recipients is kept, not sent"

    with gateway.http(user_a) as http:  # a user key calls /v1, not the console
        assert http.get("/admin/reports").status_code == 403
        assert http.post(f"/admin/reports/{report_a['id']}/run").status_code == 403

    with gateway.http() as http:  # the operator sees every workspace
        page = _page(http)
        assert name_a in page and name_b in page

    rows = gateway.database.rows(
        "SELECT action, target_id FROM audit_log WHERE action = 'report.run' AND target_id = :id",
        id=report_a["id"],
    )
    assert len(rows) == 1
