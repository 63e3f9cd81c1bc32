"""`/admin/api/alerts/silences` against a running gateway on SQLite and Postgres: silences made,
listed by state, read and expired within the caller's workspaces, every change in the audit log,
every bad field a 400 naming it, another workspace's silence a 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.admin_ui.conftest import error_of, workspace_keys
from tests.admin_ui.console_fixtures import address, console_gateway
from tests.admin_ui.test_alerts_api import audit_rows, created, listed
from tests.console_users import create_user, sign_in
from tests.e2e.conftest import GatewayProcess, backend_database, mock_provider

__all__ = ["backend_database", "console_gateway", "mock_provider"]

API = "/admin/api/alerts"


def silence(**changes: Any) -> dict[str, Any]:
    return {
        "matchers": ["model=gpt-4o", "alertname=~Error rate|Latency"],
        "duration": "2h",
        "comment": "provider incident INC-4411",
        **changes,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_silence_is_made_listed_read_and_expired_early(console_gateway: GatewayProcess) -> None:
    later = datetime.now(UTC) + timedelta(days=2)
    with console_gateway.http() as http:
        active = created(http, "silences", silence())
        assert active["object"] == "alert_silence" and active["state"] == "active"
        assert active["matchers"] == [
            {"label": "model", "op": "=", "value": "gpt-4o"},
            {"label": "alertname", "op": "=~", "value": "Error rate|Latency"},
        ]
        assert active["created_by"] == "master"
        assert active["comment"] == "provider incident INC-4411"
        starts = datetime.fromisoformat(active["starts_at"])
        assert datetime.fromisoformat(active["ends_at"]) - starts == timedelta(hours=2)
        pending = created(
            http,
            "silences",
            silence(
                matchers=[{"label": "provider", "op": "!=", "value": "azure"}, "team=ml"],
                duration=None,
                starts_at=_iso(later),
                ends_at=_iso(later + timedelta(hours=3)),
            ),
        )
        assert pending["state"] == "pending"
        assert pending["starts_at"].startswith(later.strftime("%Y-%m-%dT%H:%M:%S"))

        assert http.get(f"{API}/silences/{active['id']}").json() == active
        assert next(s["id"] for s in listed(http, "silences", state="active")) == active["id"]
        assert next(s["id"] for s in listed(http, "silences", state="pending")) == pending["id"]
        assert active["id"] not in {s["id"] for s in listed(http, "silences", state="pending")}
        assert pending["id"] not in {s["id"] for s in listed(http, "silences", state="active")}
        expired_before = {s["id"] for s in listed(http, "silences", state="expired")}
        assert not expired_before & {active["id"], pending["id"]}
        page = http.get(f"{API}/silences", params={"limit": "1"}).json()
        assert [s["id"] for s in page["data"]] == [pending["id"]] and page["has_more"]
        rest = http.get(f"{API}/silences", params={"cursor": page["next_cursor"]}).json()
        assert rest["data"][0]["id"] == active["id"]

        expired = http.post(f"{API}/silences/{active['id']}/expire")
        assert expired.status_code == 200, expired.text
        assert expired.json()["state"] == "expired"
        assert expired.json()["ends_at"] < active["ends_at"]
        ended = http.post(f"{API}/silences/{pending['id']}/expire").json()
        assert ended["state"] == "expired" and ended["starts_at"] == ended["ends_at"]
        assert {s["id"] for s in listed(http, "silences", state="expired")} == expired_before | {
            active["id"],
            pending["id"],
        }
        assert error_of(http.post(f"{API}/silences/{active['id']}/expire"), 409)["code"] == (
            "alert_conflict"
        )
    rows = audit_rows(console_gateway, active["id"])
    assert [row["action"] for row in rows] == ["silence.create", "silence.expire"]
    assert "INC-4411" in str(rows[0]["after"])
    assert active["ends_at"] in str(rows[1]["before"])


def test_bad_silences_are_400s_naming_the_field(console_gateway: GatewayProcess) -> None:
    cases = [
        (silence(matchers=[]), "matchers"),
        ({"duration": "2h", "comment": "x"}, "matchers"),
        (silence(matchers=["model=gpt-4o", "model~gpt"]), "matchers[1]"),
        (silence(matchers=["model=~gpt-(4o"]), "matchers[0]"),
        (silence(matchers=[{"label": "model", "op": "==", "value": "x"}]), "matchers[0].op"),
        (silence(matchers=["model=~.*"]), "matchers"),
        (silence(comment=""), "comment"),
        ({"matchers": ["model=gpt-4o"], "duration": "1h"}, "comment"),
        (silence(duration="91d"), "duration"),
        (silence(duration="a while"), "duration"),
        (silence(duration=None), "ends_at"),
        (silence(duration=None, ends_at="2020-01-01T00:00:00Z"), "ends_at"),
        (silence(duration=None, ends_at="not a time"), "ends_at"),
        (silence(starts_at="2999-01-01T00:00:00Z"), "starts_at"),
        (silence(colour="blue"), "colour"),
        (silence(workspace=""), "workspace"),
    ]
    with console_gateway.http() as http:
        before = listed(http, "silences")
        for body, field in cases:
            response = http.post(f"{API}/silences", json=body)
            assert error_of(response, 400)["param"] == field, (body, response.text)
        for content in (b"{", b"[]", b"null"):
            response = http.post(
                f"{API}/silences", content=content, headers={"Content-Type": "application/json"}
            )
            error_of(response, 400)
        assert error_of(http.get(f"{API}/silences", params={"state": "over"}), 400)["param"] == (
            "state"
        )
        assert error_of(http.get(f"{API}/silences", params={"cursor": "x"}), 400)["param"] == (
            "cursor"
        )
        assert error_of(http.get(f"{API}/silences", params={"limit": "0"}), 400)["param"] == (
            "limit"
        )
        error_of(http.get(f"{API}/silences/{'0' * 32}"), 404)
        error_of(http.get(f"{API}/silences/not-an-id"), 404)
        assert listed(http, "silences") == before


def test_another_workspace_sees_and_expires_nothing(console_gateway: GatewayProcess) -> None:
    slug, admin, _ = workspace_keys(console_gateway, "silenced")
    _, other_admin, _ = workspace_keys(console_gateway, "elsewhere")
    with console_gateway.http(admin) as http:
        made = created(http, "silences", silence())
        assert made["workspace_id"] != "default"
    with console_gateway.http(other_admin) as http:
        assert error_of(http.get(f"{API}/silences/{made['id']}"), 404)["code"] == (
            "alert_silence_not_found"
        )
        error_of(http.post(f"{API}/silences/{made['id']}/expire"), 404)
        assert listed(http, "silences") == []
        error_of(http.get(f"{API}/silences", params={"workspace": slug}), 404)
        error_of(http.post(f"{API}/silences", json={**silence(), "workspace": slug}), 404)
    with console_gateway.http() as http:  # an operator sees every workspace
        assert [s["id"] for s in listed(http, "silences", workspace=slug)] == [made["id"]]
    assert [r["action"] for r in audit_rows(console_gateway, made["id"])] == ["silence.create"]


def test_a_viewer_reads_silences_and_cannot_make_or_expire_one(
    console_gateway: GatewayProcess,
) -> None:
    slug, admin, _ = workspace_keys(console_gateway, "viewers")
    url = console_gateway.database.url
    viewer = sign_in(
        console_gateway.url, create_user(url, role="viewer", workspace=slug), **address()
    )
    with console_gateway.http(admin) as http:
        made = created(http, "silences", silence())
    with viewer.client() as http:
        assert http.get(f"{API}/silences/{made['id']}").json()["id"] == made["id"]
        assert error_of(http.post(f"{API}/silences", json=silence()), 403)["code"] == (
            "permission_denied"
        )
        error_of(http.post(f"{API}/silences/{made['id']}/expire"), 403)
