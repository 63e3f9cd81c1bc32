"""`/admin/api/dashboards` against a running gateway on SQLite and Postgres: create, read, list,
replace with the version it was made from (409 when stale), delete, copy; isolation between
workspaces and between users' private dashboards; every kind of bad input a 400 naming where."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from tests.admin_ui.conftest import error_of, workspace_keys
from tests.admin_ui.console_fixtures import address, console_gateway
from tests.console_users import SignedIn, create_user, sign_in
from tests.e2e.conftest import GatewayProcess, backend_database, mock_provider

__all__ = ["backend_database", "console_gateway", "mock_provider"]

API = "/admin/api/dashboards"


def panel(title: str = "Requests by model", **changes: Any) -> dict[str, Any]:
    return {"title": title, "metric": "requests", "group_by": ["model"], **changes}


def body(name: str = "Team traffic", **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "What the team sends",
        "panels": [panel(), panel("Cost", metric="cost", chart="stacked", group_by=[])],
        **changes,
    }


def made(http: httpx.Client, document: dict[str, Any]) -> dict[str, Any]:
    response = http.post(API, json=document)
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


def listed(http: httpx.Client, **params: str) -> set[str]:
    response = http.get(API, params=params)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["data"]}


def session_of(gateway: GatewayProcess, **user: Any) -> SignedIn:
    return sign_in(gateway.url, create_user(gateway.database.url, **user), **address())


def audit_actions(gateway: GatewayProcess, dashboard_id: str) -> list[str]:
    rows = gateway.database.rows(
        "SELECT action FROM audit_log WHERE target_type = 'dashboard' AND target_id = :id "
        "ORDER BY audit_id",
        id=dashboard_id,
    )
    return [row["action"] for row in rows]


def test_a_dashboard_is_created_read_replaced_at_its_version_and_deleted(
    console_gateway: GatewayProcess,
) -> None:
    with console_gateway.http() as http:
        item = made(http, body(shared=True))
        assert item["object"] == "dashboard"
        assert (item["version"], item["shared"], item["editable"]) == (1, True, True)
        assert item["owner_user_id"] is None  # made with a key
        assert item["panels"][1] == {
            "title": "Cost",
            "metric": "cost",
            "chart": "stacked",
        }  # defaults left out, as the model writes them
        dashboard_id = item["id"]
        assert http.get(f"{API}/{dashboard_id}").json() == item
        assert dashboard_id in listed(http)

        # what was read can be sent back as it is, with its version
        changed = {**item, "name": "Team traffic, by model", "panels": [panel(top=5)]}
        replaced = http.put(f"{API}/{dashboard_id}", json=changed)
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["version"] == 2
        assert replaced.json()["panels"] == [panel(top=5)]
        assert replaced.json()["shared"] is True  # kept: the body said so

        stale = http.put(f"{API}/{dashboard_id}", json={**changed, "name": "Lost update"})
        error = error_of(stale, 409)
        assert error["code"] == "dashboard_conflict"
        assert "version 2, not 1" in error["message"]
        missing = http.put(f"{API}/{dashboard_id}", json={"name": "No version"})
        assert error_of(missing, 400)["code"] == "version_required"
        by_header = http.put(
            f"{API}/{dashboard_id}", json={"name": "By header"}, headers={"If-Match": '"2"'}
        )
        assert by_header.status_code == 200, by_header.text
        assert by_header.json()["version"] == 3
        assert by_header.json()["panels"] == []
        assert by_header.json()["shared"] is True  # left out: kept as it was

        assert error_of(http.delete(f"{API}/{dashboard_id}?version=2"), 409)["code"] == (
            "dashboard_conflict"
        )
        assert http.delete(f"{API}/{dashboard_id}?version=3").status_code == 204
        assert error_of(http.get(f"{API}/{dashboard_id}"), 404)["code"] == "dashboard_not_found"
        assert error_of(http.delete(f"{API}/{dashboard_id}"), 404)["param"] == "dashboard_id"
        assert dashboard_id not in listed(http)
    assert audit_actions(console_gateway, dashboard_id) == [
        "dashboard.create",
        "dashboard.update",
        "dashboard.update",
        "dashboard.delete",
    ]
    stored = console_gateway.database.rows(
        "SELECT before, after, workspace_id FROM audit_log WHERE target_id = :id "
        "AND action = 'dashboard.delete'",
        id=dashboard_id,
    )
    before, after = (
        json.loads(value) if isinstance(value, str) else value
        for value in (stored[0]["before"], stored[0]["after"])
    )
    assert before["name"] == "By header" and after is None


def test_another_workspaces_dashboards_are_not_there(console_gateway: GatewayProcess) -> None:
    slug_a, admin_a, _ = workspace_keys(console_gateway, "dash-a")
    _, admin_b, _ = workspace_keys(console_gateway, "dash-b")
    with console_gateway.http(admin_a) as a, console_gateway.http(admin_b) as b:
        shared = made(a, body("A's shared", shared=True))
        private = made(a, body("A's private"))
        assert shared["workspace_id"] == private["workspace_id"] != "0" * 32
        assert {shared["id"], private["id"]} <= listed(a)
        theirs = made(b, body("B's own", shared=True))
        assert listed(b) == {theirs["id"]}
        for dashboard in (shared, private):
            path = f"{API}/{dashboard['id']}"
            for response in (
                b.get(path),
                b.put(path, json={**body(), "version": 1}),
                b.delete(path),
                b.post(API, json={"copy_of": dashboard["id"]}),
            ):
                assert error_of(response, 404)["code"] == "dashboard_not_found"
        assert error_of(b.get(API, params={"workspace": slug_a}), 404)["code"] == (
            "workspace_not_found"
        )
        assert error_of(b.post(API, json={**body(), "workspace": slug_a}), 404)["code"] == (
            "workspace_not_found"
        )
        # an admin key of the workspace may change what another admin key made, private or not
        assert a.put(f"{API}/{private['id']}", json={**body("Edited"), "version": 1}).is_success

    with console_gateway.http() as operator:
        assert listed(operator, workspace=slug_a) == {shared["id"], private["id"]}
        assert {shared["id"], private["id"], theirs["id"]} <= listed(operator)


def test_a_private_dashboard_is_its_owners_alone(console_gateway: GatewayProcess) -> None:
    slug, admin_key, _ = workspace_keys(console_gateway, "dash-users")
    viewer = session_of(console_gateway, role="viewer", workspace=slug)
    other = session_of(console_gateway, role="viewer", workspace=slug)
    admin = session_of(console_gateway, role="admin", workspace=slug)
    with viewer.client() as mine, other.client() as theirs, admin.client() as manager:
        private = made(mine, body("Mine"))
        assert private["owner_user_id"] == viewer.user["id"]
        assert private["editable"] is True
        # a viewer keeps private dashboards, never shares one
        refused = mine.post(API, json=body("Shared by a viewer", shared=True))
        assert error_of(refused, 403)["code"] == "permission_denied"
        assert error_of(refused, 403)["param"] == "shared"
        sharing = mine.put(f"{API}/{private['id']}", json={**body(), "shared": True, "version": 1})
        assert error_of(sharing, 403)["code"] == "permission_denied"

        for client in (theirs, manager):
            path = f"{API}/{private['id']}"
            assert private["id"] not in listed(client)
            for response in (
                client.get(path),
                client.put(path, json={**body(), "version": 1}),
                client.delete(path),
            ):
                assert error_of(response, 404)["code"] == "dashboard_not_found"

        shared = made(manager, body("For the team", shared=True))
        seen = theirs.get(f"{API}/{shared['id']}")
        assert seen.status_code == 200 and seen.json()["editable"] is False
        edit = theirs.put(f"{API}/{shared['id']}", json={**body(), "version": 1})
        assert error_of(edit, 403)["code"] == "permission_denied"
        assert error_of(theirs.delete(f"{API}/{shared['id']}"), 403)["code"] == (
            "permission_denied"
        )
        # a copy is the viewer's own, private
        copy = made(theirs, {"copy_of": shared["id"]})
        assert copy["name"] == "Copy of For the team"
        assert (copy["shared"], copy["owner_user_id"]) == (False, other.user["id"])
        assert copy["panels"] == shared["panels"]
        assert copy["workspace_id"] == shared["workspace_id"]

    with console_gateway.http(admin_key) as key:
        assert error_of(key.get(f"{API}/{private['id']}"), 404)["code"] == "dashboard_not_found"
        assert key.get(f"{API}/{shared['id']}").json()["editable"] is True
    with console_gateway.http() as operator:
        assert operator.get(f"{API}/{private['id']}").json()["editable"] is True
        assert private["id"] in listed(operator, workspace=slug)


def test_a_dashboard_made_with_a_session_needs_its_csrf_token(
    console_gateway: GatewayProcess,
) -> None:
    user = session_of(console_gateway, role="owner")
    with httpx.Client(base_url=console_gateway.url, timeout=30) as http:
        http.cookies.set("steerway_session", user.token, path="/admin")
        refused = http.post(API, json=body())
    assert error_of(refused, 403)["code"] == "csrf_token_invalid"


def _garbage_cases(dashboard_id: str) -> list[tuple[str, str, str, Any, str]]:
    """(case, method, path, JSON body or raw bytes, the `param` of the 400)."""
    path = f"{API}/{dashboard_id}"
    good = body()
    bad_panels: list[tuple[str, Any, str]] = [
        ("unknown-panel-field", panel(colour="red"), "panels[0].colour"),
        ("unknown-metric", panel(metric="vibes"), "panels[0].metric"),
        ("unknown-kind", panel(kind="pie"), "panels[0].kind"),
        ("three-dimensions", panel(group_by=["model", "provider", "key"]), "panels[0].group_by"),
        ("unknown-dimension", panel(group_by=["colour"]), "panels[0].group_by"),
        ("filter-not-a-list", panel(filters={"model": "gpt"}), "panels[0].filters"),
        ("unknown-filter", panel(filters={"colour": ["red"]}), "panels[0].filters"),
        ("long-filter-value", panel(filters={"model": ["m" * 500]}), "panels[0].filters"),
        ("huge-top", panel(top=10**30), "panels[0].top"),
        ("zero-top", panel(top=0), "panels[0].top"),
        ("top-as-text", panel(top="5"), "panels[0].top"),
        ("top-as-bool", panel(top=True), "panels[0].top"),
        ("empty-title", panel(title=" "), "panels[0].title"),
        ("nul-in-title", panel(title="a\x00b"), "panels[0].title"),
        ("no-title", {"metric": "requests"}, "panels[0].title"),
        ("panel-not-object", "requests", "panels[0]"),
        ("width", panel(width="double"), "panels[0].width"),
    ]
    cases: list[tuple[str, str, str, Any, str]] = []
    for case, item, param in bad_panels:
        for method, where, extra in (("POST", API, {}), ("PUT", path, {"version": 1})):
            cases.append(
                (f"{method}-{case}", method, where, {**good, **extra, "panels": [item]}, param)
            )
    cases += [
        ("not-json", "POST", API, b"{nope", "body"),
        ("not-an-object", "POST", API, b"[1]", "body"),
        ("empty", "POST", API, b"", "body"),
        ("no-name", "POST", API, {"panels": []}, "name"),
        ("name-not-text", "POST", API, {"name": 5}, "name"),
        ("empty-name", "POST", API, {"name": ""}, "name"),
        ("long-name", "POST", API, {"name": "n" * 201}, "name"),
        ("long-description", "POST", API, {**good, "description": "d" * 5000}, "description"),
        ("unknown-field", "POST", API, {**good, "colour": "red"}, "colour"),
        ("panels-not-list", "POST", API, {**good, "panels": {}}, "panels"),
        ("too-many-panels", "POST", API, {**good, "panels": [panel()] * 41}, "panels"),
        ("shared-text", "POST", API, {**good, "shared": "yes"}, "shared"),
        ("workspace-number", "POST", API, {**good, "workspace": 3}, "workspace"),
        ("copy-of-number", "POST", API, {"copy_of": 3}, "copy_of"),
        ("copy-with-panels", "POST", API, {"copy_of": dashboard_id, "panels": []}, "panels"),
        ("version-text", "PUT", path, {**good, "version": "two"}, "version"),
        ("version-zero", "PUT", path, {**good, "version": 0}, "version"),
        ("version-huge", "PUT", path, {**good, "version": 10**30}, "version"),
        ("unknown-field-put", "PUT", path, {**good, "version": 1, "workspace": "x"}, "workspace"),
        ("delete-version", "DELETE", f"{path}?version=abc", None, "version"),
    ]
    return cases


def test_garbage_is_a_400_that_says_where(console_gateway: GatewayProcess) -> None:
    failures: list[str] = []
    with console_gateway.http() as http:
        dashboard_id = made(http, body())["id"]
        for case, method, path, sent, param in _garbage_cases(dashboard_id):
            if isinstance(sent, bytes):
                response = http.request(
                    method, path, content=sent, headers={"content-type": "application/json"}
                )
            else:
                response = http.request(method, path, json=sent)
            if response.status_code != 400:
                failures.append(f"{case}: {response.status_code} {response.text[:300]}")
                continue
            error = error_of(response, 400)
            if error["param"] != param:
                failures.append(f"{case}: param {error['param']!r}, not {param!r}: {error}")
        # nothing was changed by any of them
        assert http.get(f"{API}/{dashboard_id}").json()["version"] == 1
    assert not failures, "\n".join(failures)


def test_odd_ids_are_404s(console_gateway: GatewayProcess) -> None:
    with console_gateway.http() as http:
        for odd in ("x", "0" * 32, "F" * 32, "a" * 300, "%20", secrets.token_hex(16)):
            assert error_of(http.get(f"{API}/{odd}"), 404)["code"] == "dashboard_not_found"


def test_every_problem_is_named_in_the_message(console_gateway: GatewayProcess) -> None:
    bad = body(panels=[panel(metric="vibes"), panel(title="", group_by=["a", "b", "c"])])
    with console_gateway.http() as http:
        error = error_of(http.post(API, json=bad), 400)
    assert error["code"] == "invalid_dashboard"
    assert error["param"] == "panels[0].metric"
    for path in ("panels[0].metric", "panels[1].title", "panels[1].group_by"):
        assert path in error["message"]


def test_a_built_in_dashboard_is_copied_by_its_id_or_name(
    console_gateway: GatewayProcess,
) -> None:
    slug, admin_key, _ = workspace_keys(console_gateway, "dash-copies")
    with console_gateway.http(admin_key) as http:
        builtins = http.get(f"{API}/builtin")
        assert builtins.status_code == 200, builtins.text
        by_id = {item["id"]: item for item in builtins.json()["data"]}
        assert set(by_id) == {
            "overview",
            "usage",
            "cost",
            "performance",
            "safety",
            "providers",
            "forecast",
            "anomalies",
        }
        assert all(item["builtin"] and item["panels"] for item in by_id.values())

        cost = made(http, {"copy_of": "cost", "shared": True})
        assert (cost["name"], cost["shared"]) == ("Copy of Cost", True)
        assert cost["panels"] == by_id["cost"]["panels"]
        assert cost["description"] == by_id["cost"]["description"]
        workspace = http.get(f"/admin/api/workspaces/{slug}").json()
        assert cost["workspace_id"] == workspace["id"]  # the key's own workspace
        overview = made(http, {"copy_of": "Overview", "name": "Our overview", "description": ""})
        assert (overview["name"], overview["description"]) == ("Our overview", "")
        assert overview["panels"] == by_id["overview"]["panels"]
        # a copy is a dashboard like any other: changed without touching the built-in
        changed = http.put(
            f"{API}/{cost['id']}", json={**cost, "panels": cost["panels"][:1]}
        ).json()
        assert len(changed["panels"]) == 1
        assert http.get(f"{API}/builtin").json()["data"] == builtins.json()["data"]

        missing = http.post(API, json={"copy_of": "nonexistent"})
        error = error_of(missing, 404)
        assert (error["code"], error["param"]) == ("dashboard_not_found", "copy_of")
