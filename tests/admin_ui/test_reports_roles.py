"""Who may change and run reports: a viewer reads its workspace's reports and may not change
or run one; an admin of the workspace may, and what the admin makes goes to that workspace."""

from __future__ import annotations

from typing import Any

import httpx

from tests.admin_ui.conftest import error_of, workspace_keys
from tests.admin_ui.console_fixtures import address, console_gateway
from tests.console_users import create_user, sign_in
from tests.e2e.conftest import GatewayProcess, backend_database, mock_provider

__all__ = ["backend_database", "console_gateway", "mock_provider"]

API = "/admin/api/reports"
BODY = {
    "name": "Costs by model",
    "sections": ["cost"],
    "range": "previous_day",
    "schedule": "30 6 * * *",
}


def listed(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get(f"{API}/")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_a_viewer_reads_reports_and_an_admin_changes_and_runs_them(
    console_gateway: GatewayProcess,
) -> None:
    slug, _, _ = workspace_keys(console_gateway, "report-roles")
    url = console_gateway.database.url
    viewer = sign_in(
        console_gateway.url, create_user(url, role="viewer", workspace=slug), **address()
    )
    admin = sign_in(
        console_gateway.url, create_user(url, role="admin", workspace=slug), **address()
    )
    with admin.client() as http:
        made = http.post(f"{API}/", json=BODY)
        assert made.status_code == 201, made.text
        report = made.json()
        ran = http.post(f"{API}/{report['id']}/run")
        assert ran.status_code == 201, ran.text
    with viewer.client() as http:
        assert {item["id"] for item in listed(http)} >= {report["id"]}
        assert {item["workspace_id"] for item in listed(http)} == {report["workspace_id"]}
        assert http.get(f"{API}/{report['id']}").json() == report
        file_url = ran.json()["files"][0]["url"]
        assert http.get(file_url).status_code == 200
        denied = error_of(http.post(f"{API}/{report['id']}/run"), 403)
        assert denied["code"] == "permission_denied"
        assert "reports" in denied["message"]
        error_of(http.put(f"{API}/{report['id']}", json=BODY), 403)
        error_of(http.delete(f"{API}/{report['id']}"), 403)
        error_of(http.post(f"{API}/", json={**BODY, "name": "Mine"}), 403)
    with console_gateway.http() as http:
        mine = [item for item in listed(http) if item["id"] == report["id"]]
        workspace = http.get(f"/admin/api/workspaces/{slug}").json()["id"]
        assert [item["workspace_id"] for item in mine] == [workspace]
