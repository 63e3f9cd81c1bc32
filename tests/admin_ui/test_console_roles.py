"""Roles in the admin API for console sessions, workspace isolation, and the audit log of every
change (with no secret in it), against a running gateway on SQLite and Postgres."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any

import httpx

from tests.admin_ui.conftest import error_of
from tests.admin_ui.console_fixtures import address, console_gateway
from tests.admin_ui.test_key_pages import key_form
from tests.admin_ui.test_workspaces_keys import chat, created, make_key, make_workspace
from tests.console_users import SignedIn, create_user, sign_in
from tests.e2e.conftest import GatewayProcess, backend_database, mock_provider

__all__ = ["backend_database", "console_gateway", "mock_provider"]


def session_of(gateway: GatewayProcess, **user: Any) -> SignedIn:
    return sign_in(gateway.url, create_user(gateway.database.url, **user), **address())


def key_names(http: httpx.Client, **params: str) -> set[str]:
    response = http.get("/admin/api/keys", params=params)
    assert response.status_code == 200, response.text
    return {key["name"] for key in response.json()["data"]}


def test_a_viewer_reads_but_changes_nothing(console_gateway: GatewayProcess) -> None:
    with console_gateway.http() as master:
        key = make_key(master, name="viewed")
        key.pop("key")
    viewer = session_of(console_gateway, role="viewer")
    with viewer.client() as http:
        assert "viewed" in key_names(http)
        assert http.get(f"/admin/api/keys/{key['id']}").status_code == 200
        assert http.get("/admin/api/workspaces/default").status_code == 200
        me = http.get("/admin/api/session").json()
        assert me["workspaces"][0]["permissions"] == ["read"]

        for response in (
            http.post("/admin/api/keys", json={"name": "by a viewer"}),
            http.patch(f"/admin/api/keys/{key['id']}", json={"rpm_limit": 1}),
            http.post(f"/admin/api/keys/{key['id']}/revoke"),
            http.delete(f"/admin/api/keys/{key['id']}"),
            http.patch("/admin/api/workspaces/default", json={"name": "Mine now"}),
            http.get("/admin/api/users"),
            http.post("/admin/api/users", json={"email": "x@example.com", "roles": {}}),
            http.get("/admin/api/audit"),
        ):
            assert error_of(response, 403)["code"] == "permission_denied", response.request.url
        for response in (
            http.post("/admin/api/workspaces", json={"slug": "viewer-made"}),
            http.get("/admin/api/rules"),
            http.post("/admin/api/rules/simulate", json={"request": {}}),
        ):
            assert error_of(response, 403)["code"] == "operator_required"
        denied = http.post("/admin/api/keys", json={"name": "by a viewer"})
        assert "cannot create, change or revoke keys" in error_of(denied, 403)["message"]
    with console_gateway.http() as master:
        assert master.get(f"/admin/api/keys/{key['id']}").json() == key
        assert "by a viewer" not in key_names(master)


def test_admins_manage_keys_and_settings_of_their_workspace(
    console_gateway: GatewayProcess,
) -> None:
    with console_gateway.http() as master:
        team = make_workspace(master, "admins")
    admin = session_of(console_gateway, role="admin", workspace=team["slug"])
    with admin.client() as http:
        key = make_key(http, name="team key", role="master")  # an admin key of its workspace
        assert key["workspace_id"] == team["id"]
        assert http.patch(f"/admin/api/keys/{key['id']}", json={"rpm_limit": 9}).status_code == 200
        revoked = http.post(f"/admin/api/keys/{key['id']}/revoke")
        assert revoked.json()["status"] == "revoked"
        changed = http.patch(
            f"/admin/api/workspaces/{team['slug']}", json={"settings": {"rpm_limit": 50}}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["settings"]["rpm_limit"] == 50
        for response in (
            http.patch("/admin/api/workspaces/default", json={"name": "x"}),
            http.post("/admin/api/keys", json={"name": "elsewhere", "workspace": "default"}),
        ):
            assert error_of(response, 404)["code"] == "workspace_not_found"
        made_user = http.post(
            "/admin/api/users", json={"email": "a@example.com", "roles": {team["slug"]: "viewer"}}
        )
        assert error_of(made_user, 403)["code"] == "permission_denied"
        listed = http.get("/admin/api/users", params={"workspace": team["slug"]})
        assert listed.status_code == 200
        audit = http.get("/admin/api/audit").json()["data"]
        assert audit and {row["workspace_id"] for row in audit} == {team["id"]}

    # An admin key of the default workspace acts as an operator: only operators make one.
    default_admin = session_of(console_gateway, role="admin")
    with default_admin.client() as http:
        refused = http.post("/admin/api/keys", json={"name": "would-be operator", "role": "master"})
        assert error_of(refused, 403)["code"] == "permission_denied"
        plain = make_key(http, name="plain default key")
        promoted = http.patch(f"/admin/api/keys/{plain['id']}", json={"role": "master"})
        assert error_of(promoted, 403)["code"] == "permission_denied"
    with console_gateway.http() as master:
        operator_key = make_key(master, name="ops key", role="master")
    with default_admin.client() as http:
        touched = http.post(f"/admin/api/keys/{operator_key['id']}/revoke")
        assert error_of(touched, 403)["code"] == "permission_denied"


def test_owners_manage_their_workspaces_users(console_gateway: GatewayProcess) -> None:
    with console_gateway.http() as master:
        team = make_workspace(master, "owned")
        other = make_workspace(master, "other")
    owner_user = create_user(console_gateway.database.url, role="owner", workspace=team["slug"])
    owner = sign_in(console_gateway.url, owner_user, **address())
    email = f"new-{secrets.token_hex(3)}@example.com"
    with owner.client() as http:
        new = created(
            http.post("/admin/api/users", json={"email": email, "roles": {team["slug"]: "viewer"}})
        )
        assert (new["status"], new["operator"]) == ("invited", False)
        assert new["workspaces"] == [
            {"workspace_id": team["id"], "slug": team["slug"], "role": "viewer"}
        ]
        link = new["password_link"]["url"]
        assert link.startswith(f"{console_gateway.url}/admin/reset?token=")

        for body, status, code in (
            ({"email": "b@example.com", "roles": {other["slug"]: "viewer"}}, 404,
             "workspace_not_found"),
            ({"email": "b@example.com", "operator": True}, 403, "permission_denied"),
            ({"email": "b@example.com"}, 400, "invalid_value"),
            ({"email": "b@example.com", "roles": {team["slug"]: "king"}}, 400, "invalid_value"),
            ({"email": "b@example.com", "roles": {team["slug"]: "viewer"}, "password": "short"},
             400, "invalid_value"),
            ({"email": email.upper(), "roles": {team["slug"]: "viewer"}}, 409, "user_exists"),
            ({"email": "b@example.com", "is_admin": True}, 400, "unknown_field"),
        ):  # fmt: skip
            assert error_of(http.post("/admin/api/users", json=body), status)["code"] == code

    token = link.split("token=", 1)[1]
    page = httpx.get(link)
    assert page.status_code == 200 and email in page.text
    assert page.headers["referrer-policy"] == "same-origin"
    mismatch = httpx.post(
        f"{console_gateway.url}/admin/reset",
        data={"token": token, "password": "the new password", "password_confirm": "other one!"},
    )
    assert mismatch.status_code == 400 and "the two passwords differ" in mismatch.text
    chosen = httpx.post(
        f"{console_gateway.url}/admin/reset",
        data={
            "token": token,
            "password": "the new password",
            "password_confirm": "the new password",
        },
    )
    assert chosen.status_code == 303
    newcomer = httpx.Client(base_url=console_gateway.url, cookies=chosen.cookies)
    csrf = newcomer.get("/admin/api/session").json()["csrf_token"]
    newcomer.headers["x-csrf-token"] = csrf
    denied = newcomer.post("/admin/api/keys", json={"name": "as viewer"})
    assert error_of(denied, 403)["code"] == "permission_denied"

    with owner.client() as http:
        promoted = http.patch(
            f"/admin/api/users/{new['id']}", json={"roles": {team["id"]: "admin"}}
        )
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["workspaces"][0]["role"] == "admin"
        # Roles are read at each request: the promotion applies to the live session.
        assert newcomer.post("/admin/api/keys", json={"name": "as admin"}).status_code == 201

        for body, code in (
            ({"disabled": True}, "own_account"),
            ({"roles": {team["slug"]: "viewer"}}, "own_account"),
        ):
            mine = http.patch(f"/admin/api/users/{owner_user.user_id}", json=body)
            assert error_of(mine, 400)["code"] == code
        renamed = http.patch(f"/admin/api/users/{owner_user.user_id}", json={"name": "Me, renamed"})
        assert renamed.json()["name"] == "Me, renamed"
        operator = http.patch(f"/admin/api/users/{new['id']}", json={"operator": True})
        assert error_of(operator, 403)["code"] == "permission_denied"

        fresh_link = http.post(f"/admin/api/users/{new['id']}/password-link")
        assert fresh_link.status_code == 201 and "/admin/reset?token=" in fresh_link.json()["url"]
        disabled = http.patch(f"/admin/api/users/{new['id']}", json={"disabled": True})
        assert disabled.json()["status"] == "disabled"
    ended = newcomer.get("/admin/api/session")
    assert error_of(ended, 401)["code"] == "session_expired"
    newcomer.close()

    # A user also in a workspace this owner does not own is beyond their reach, and shows
    # only this workspace's role.
    shared = create_user(console_gateway.database.url, role="viewer", workspace=other["slug"])
    with console_gateway.http() as master:
        added = master.patch(
            f"/admin/api/users/{shared.user_id}", json={"roles": {team["slug"]: "viewer"}}
        )
        assert added.status_code == 200
    with owner.client() as http:
        seen = http.get(f"/admin/api/users/{shared.user_id}").json()
        assert [w["workspace_id"] for w in seen["workspaces"]] == [team["id"]]
        refused = http.patch(f"/admin/api/users/{shared.user_id}", json={"disabled": True})
        assert error_of(refused, 403)["code"] == "permission_denied"
        removed = http.patch(
            f"/admin/api/users/{shared.user_id}", json={"roles": {team["id"]: None}}
        )
        assert removed.status_code == 200 and removed.json()["workspaces"] == []
        gone = http.get(f"/admin/api/users/{shared.user_id}")
        assert error_of(gone, 404)["code"] == "user_not_found"
        listed = {user["email"] for user in http.get("/admin/api/users").json()["data"]}
        assert email in listed and shared.email not in listed


def test_sessions_see_only_their_workspaces(console_gateway: GatewayProcess) -> None:
    with console_gateway.http() as master:
        alpha = make_workspace(master, "alpha")
        beta = make_workspace(master, "beta")
        alpha_key = make_key(master, name="alpha app", workspace=alpha["slug"])
        beta_key = make_key(master, name="beta app", workspace=beta["slug"])
        master.patch(f"/admin/api/workspaces/{beta['slug']}", json={"name": "Beta team"})
    alpha_trace = chat(console_gateway, alpha_key.pop("key"))
    beta_trace = chat(console_gateway, beta_key.pop("key"))

    owner = session_of(console_gateway, role="owner", workspace=alpha["slug"])
    with owner.client() as http:
        assert http.get("/admin/api/session").json()["workspace_scope"] == alpha["id"]
        assert key_names(http) == {"alpha app"}
        assert [w["id"] for w in http.get("/admin/api/workspaces").json()["data"]] == [alpha["id"]]
        assert http.get(f"/admin/api/traces/{alpha_trace}").status_code == 200
        for response, code in (
            (http.get(f"/admin/api/traces/{beta_trace}"), "trace_not_found"),
            (http.get(f"/admin/api/keys/{beta_key['id']}"), "key_not_found"),
            (http.post(f"/admin/api/keys/{beta_key['id']}/revoke"), "key_not_found"),
            (http.get(f"/admin/api/workspaces/{beta['slug']}"), "workspace_not_found"),
            (http.get("/admin/api/keys", params={"workspace": beta["id"]}), "workspace_not_found"),
            (http.get("/admin/api/audit", params={"workspace": beta["slug"]}),
             "workspace_not_found"),
        ):  # fmt: skip
            assert error_of(response, 404)["code"] == code
        audit = http.get("/admin/api/audit", params={"limit": "200"}).json()["data"]
        assert {row["workspace_id"] for row in audit} == {alpha["id"]}
        assert beta_key["id"] not in json.dumps(audit)

    both = create_user(console_gateway.database.url, role="viewer", workspace=alpha["slug"])
    with console_gateway.http() as master:
        master.patch(
            f"/admin/api/users/{both.user_id}", json={"roles": {beta["slug"]: "admin"}}
        ).raise_for_status()
    session = sign_in(console_gateway.url, both, **address())
    with session.client() as http:
        me = http.get("/admin/api/session").json()
        assert me["workspace_scope"] == alpha["id"]  # the first of the user's by slug
        chosen = http.get("/admin/api/session", params={"workspace": beta["slug"]}).json()
        assert chosen["workspace_scope"] == beta["id"]
        assert key_names(http) == {"alpha app", "beta app"}
        assert key_names(http, workspace=beta["slug"]) == {"beta app"}
        assert http.get(f"/admin/api/traces/{beta_trace}").status_code == 200
        assert make_key(http, name="beta by admin", workspace=beta["slug"])
        refused = http.post("/admin/api/keys", json={"name": "x", "workspace": alpha["slug"]})
        assert error_of(refused, 403)["code"] == "permission_denied"

    nowhere = session_of(console_gateway, role=None)
    with nowhere.client() as http:
        assert error_of(http.get("/admin/api/keys"), 403)["code"] == "no_workspace"


def test_every_change_is_audited_without_secrets(console_gateway: GatewayProcess) -> None:
    operator_user = create_user(console_gateway.database.url, role=None, operator=True)
    operator = sign_in(console_gateway.url, operator_user, **address())
    rule_id = f"audited-{secrets.token_hex(3)}"
    rule = {"id": rule_id, "when": {"tags": {"contains": rule_id}}, "then": {"route": "mock-gpt"}}
    email = f"audited-{secrets.token_hex(3)}@example.com"
    password = "a password of " + secrets.token_urlsafe(24)
    with console_gateway.http() as master:
        space = make_workspace(master, "audited")
        key = make_key(master, name="audited key", workspace=space["slug"])
        plaintext = key.pop("key")
        master.patch(f"/admin/api/keys/{key['id']}", json={"rpm_limit": 7}).raise_for_status()
        master.patch(f"/admin/api/keys/{key['id']}", json={"rpm_limit": 7}).raise_for_status()
    with operator.client() as http:
        http.post(f"/admin/api/keys/{key['id']}/revoke").raise_for_status()
        http.post(f"/admin/api/keys/{key['id']}/revoke").raise_for_status()  # no change: no row
        http.patch(
            f"/admin/api/workspaces/{space['slug']}", json={"settings": {"tpm_limit": 900}}
        ).raise_for_status()
        assert http.post("/admin/api/rules", json=rule).status_code == 201
        http.put(f"/admin/api/rules/{rule_id}", json={**rule, "priority": 5}).raise_for_status()
        http.post(f"/admin/api/rules/{rule_id}/disable").raise_for_status()
        http.post(f"/admin/api/rules/{rule_id}/enable").raise_for_status()
        http.post(f"/admin/api/rules/{rule_id}/rollback", json={"version": 1}).raise_for_status()
        assert http.delete(f"/admin/api/rules/{rule_id}").status_code == 204
        user = created(
            http.post(
                "/admin/api/users",
                json={"email": email, "password": password, "roles": {space["slug"]: "viewer"}},
            )
        )
        http.patch(
            f"/admin/api/users/{user['id']}", json={"roles": {space["slug"]: "admin"}}
        ).raise_for_status()
        link = http.post(f"/admin/api/users/{user['id']}/password-link").json()["url"]
        http.patch(f"/admin/api/users/{user['id']}", json={"disabled": True}).raise_for_status()
    link_token = link.split("token=", 1)[1]
    signed = sign_in(console_gateway.url, operator_user, **address())

    rows = console_gateway.database.rows(
        "SELECT * FROM audit_log WHERE target_id IN (:k, :w, :r, :u) ORDER BY audit_id",
        k=key["id"],
        w=space["id"],
        r=rule_id,
        u=user["id"],
    )
    actions = [(row["target_type"], row["action"], row["actor"]) for row in rows]
    assert actions == [
        ("workspace", "workspace.create", "master"),
        ("key", "key.create", "master"),
        ("key", "key.update", "master"),
        ("key", "key.revoke", operator_user.email),
        ("workspace", "workspace.update", operator_user.email),
        ("rule", "rule.create", operator_user.email),
        ("rule", "rule.update", operator_user.email),
        ("rule", "rule.disable", operator_user.email),
        ("rule", "rule.enable", operator_user.email),
        ("rule", "rule.rollback", operator_user.email),
        ("rule", "rule.delete", operator_user.email),
        ("user", "user.create", operator_user.email),
        ("user", "user.role_change", operator_user.email),
        ("user", "user.password_link", operator_user.email),
        ("user", "user.disable", operator_user.email),
    ]
    by_action = {row["action"]: row for row in rows}

    def document(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    update = by_action["key.update"]
    assert (document(update["before"])["rpm_limit"], document(update["after"])["rpm_limit"]) == (
        None,
        7,
    )
    assert document(by_action["key.revoke"]["after"])["status"] == "revoked"
    assert document(by_action["key.create"]["before"]) is None
    assert document(by_action["workspace.update"]["after"])["settings"]["tpm_limit"] == 900
    assert (
        document(by_action["rule.update"]["before"])["priority"],
        document(by_action["rule.update"]["after"])["priority"],
    ) == (100, 5)
    assert document(by_action["rule.delete"]["after"]) is None
    assert by_action["rule.create"]["workspace_id"] is None
    role_change = by_action["user.role_change"]
    assert (document(role_change["before"])["role"], document(role_change["after"])["role"]) == (
        "viewer",
        "admin",
    )
    assert by_action["key.revoke"]["actor_kind"] == "user"
    assert by_action["key.create"]["actor_kind"] == "key"
    assert all(row["address"] for row in rows)
    assert {row["workspace_id"] for row in rows if row["target_type"] != "rule"} == {space["id"]}

    # No secret anywhere in what the audit log stores. Each searched value is long and random
    # (no accidental hit), and each is shown to be the real stored secret first.
    (stored_key,) = console_gateway.database.rows(
        "SELECT key_hash FROM api_keys WHERE key_id = :k", k=key["id"]
    )
    assert stored_key["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    (stored_user,) = console_gateway.database.rows(
        "SELECT password_hash FROM users WHERE user_id = :u", u=user["id"]
    )
    assert stored_user["password_hash"].startswith("$argon2id$")
    everything = json.dumps(console_gateway.database.rows("SELECT * FROM audit_log"), default=str)
    assert key["id"] in everything and email in everything  # the search does see the log
    secrets_kept = {
        "key plaintext": plaintext,
        "key hash": stored_key["key_hash"],
        "password": password,
        "password hash": stored_user["password_hash"].rsplit("$", 1)[1],
        "link token": link_token,
        "link token hash": hashlib.sha256(link_token.encode()).hexdigest(),
        "session token": signed.token,
        "csrf token": signed.csrf_token,
    }
    for name, value in secrets_kept.items():
        assert len(value) >= 20, name
        assert value not in everything, f"the audit log holds the {name}"
        assert value[:16] not in everything, f"the audit log holds part of the {name}"

    # The log through the API: filters, newest first, pages by cursor.
    with operator.client() as http:
        page = http.get("/admin/api/audit", params={"target_id": key["id"], "limit": "2"}).json()
        assert [e["action"] for e in page["data"]] == ["key.revoke", "key.update"]
        assert page["has_more"] and re.fullmatch("[0-9a-f]{32}", page["next_cursor"])
        rest = http.get(
            "/admin/api/audit", params={"target_id": key["id"], "cursor": page["next_cursor"]}
        ).json()
        assert [e["action"] for e in rest["data"]] == ["key.create"]
        assert (rest["has_more"], rest["next_cursor"]) == (False, None)
        rules = http.get("/admin/api/audit", params={"action": "rule.", "target_id": rule_id})
        assert len(rules.json()["data"]) == 6
        mine = http.get(
            "/admin/api/audit", params={"actor": operator_user.email, "target_type": "user"}
        ).json()["data"]
        assert {e["action"] for e in mine} >= {"user.create", "user.disable"}
        later = http.get("/admin/api/audit", params={"since": "2999-01-01T00:00:00Z"}).json()
        assert later["data"] == []
        for params, param in (
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"limit": "0"}, "limit"),
            ({"limit": "201"}, "limit"),
            ({"limit": "many"}, "limit"),
            ({"since": "yesterday"}, "since"),
        ):
            assert error_of(http.get("/admin/api/audit", params=params), 400)["param"] == param


def test_changes_made_on_the_pages_are_checked_and_audited_like_the_apis(
    console_gateway: GatewayProcess,
) -> None:
    viewer = session_of(console_gateway, role="viewer")
    admin = session_of(console_gateway, role="admin")
    with viewer.client() as http:
        refused = http.post(
            "/admin/keys/new", data=key_form(csrf_token=viewer.csrf_token, name="viewer page key")
        )
        assert refused.status_code == 403
    with admin.client() as http:
        made = http.post(
            "/admin/keys/new", data=key_form(csrf_token=admin.csrf_token, name="admin page key")
        )
        assert made.status_code == 200, made.text[:500]
    rows = console_gateway.database.rows(
        "SELECT a.action, a.actor, a.actor_kind FROM audit_log a JOIN api_keys k "
        "ON a.target_id = k.key_id WHERE k.name IN ('viewer page key', 'admin page key')"
    )
    assert [(r["action"], r["actor"], r["actor_kind"]) for r in rows] == [
        ("key.create", admin.user["email"], "user")
    ]
