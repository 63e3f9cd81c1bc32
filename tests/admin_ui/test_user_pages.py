"""The Users and Audit log pages over HTTP with real console sessions, against a running gateway
on SQLite and Postgres: an owner adds a user whose one-time link works once, changes a role and
disables the account; a viewer and an admin are refused; the audit page shows a key made earlier
with its values and never a secret; one workspace never sees another's users or changes."""

from __future__ import annotations

import html
import re
import secrets
from typing import Any

import httpx

from admin_ui.console_auth import SESSION_COOKIE
from tests.admin_ui.console_fixtures import address, console_gateway
from tests.admin_ui.test_workspaces_keys import make_key, make_workspace
from tests.console_users import SignedIn, create_user, sign_in
from tests.e2e.conftest import GatewayProcess, backend_database, mock_provider

__all__ = ["backend_database", "console_gateway", "mock_provider"]

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LINK = re.compile(r'id="password-link">([^<]+)</code>')


def session_of(gateway: GatewayProcess, **user: Any) -> SignedIn:
    return sign_in(gateway.url, create_user(gateway.database.url, **user), **address())


def browser_like(session: SignedIn) -> httpx.Client:
    """A client that sends only the cookie, as a browser does: forms carry the CSRF token."""
    client = httpx.Client(base_url=session.base_url, timeout=30)
    client.cookies.set(SESSION_COOKIE, session.token, domain="127.0.0.1", path="/admin")
    return client


def form_token(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def team_with_owner(gateway: GatewayProcess, slug: str) -> tuple[dict[str, Any], SignedIn]:
    with gateway.http() as master:
        team = make_workspace(master, slug)
    return team, session_of(gateway, role="owner", workspace=team["slug"])


def test_an_owner_adds_a_user_whose_link_works_once(console_gateway: GatewayProcess) -> None:
    team, owner = team_with_owner(console_gateway, "people")
    email = f"new-{secrets.token_hex(3)}@example.com"
    with browser_like(owner) as http:
        listing = http.get("/admin/users")
        assert listing.status_code == 200 and html.escape(owner.user["email"]) in listing.text
        form = http.get("/admin/users/new")
        token = form_token(form)
        assert f'value="{team["slug"]}"' in form.text and 'name="operator"' not in form.text

        refused = http.post("/admin/users/new", data={"email": "not an email", "role": "viewer"})
        assert refused.status_code == 403  # no CSRF token: refused before anything else
        bad = http.post(
            "/admin/users/new",
            data={"csrf_token": token, "email": "not an email", "workspace": team["slug"],
                  "role": "viewer"},
        )  # fmt: skip
        assert bad.status_code == 400 and 'id="error-email"' in bad.text

        made = http.post(
            "/admin/users/new",
            data={"csrf_token": token, "email": email, "name": "Ada", "workspace": team["slug"],
                  "role": "viewer"},
        )  # fmt: skip
        assert made.status_code == 200, made.text
        assert made.headers["cache-control"] == "no-store"
        found = _LINK.search(made.text)
        assert found is not None
        link = html.unescape(found.group(1))
        assert link.startswith(f"{console_gateway.url}/admin/reset?token=")
        user_id = re.search(r'href="/admin/users/([0-9a-f]{32})"', made.text).group(1)  # type: ignore[union-attr]

        listing = http.get("/admin/users")
        row = re.search(rf'<tr id="user-row-{user_id}".*?</tr>', listing.text, re.S)
        assert row is not None and email in row.group(0) and "invited" in row.group(0)
        assert f"{team['name']}: viewer" in row.group(0)
        assert link.split("token=")[1] not in listing.text

    token_value = link.split("token=", 1)[1]
    new_password = {"token": token_value, "password": "a long new password", "password_confirm":
                    "a long new password"}  # fmt: skip
    first = httpx.post(f"{console_gateway.url}/admin/reset", data=new_password)
    assert first.status_code == 303
    again = httpx.post(f"{console_gateway.url}/admin/reset", data=new_password)
    assert again.status_code == 410

    with browser_like(owner) as http:
        page = http.get(f"/admin/users/{user_id}")
        token = form_token(page)
        assert "active" in page.text and 'id="disable-user"' in page.text
        changed = http.post(
            f"/admin/users/{user_id}/roles",
            data={"csrf_token": token, "workspace": team["id"], "role": "admin"},
        )
        assert changed.status_code == 303
        assert changed.headers["location"] == f"/admin/users/{user_id}?saved=roles"
        page = http.get(f"/admin/users/{user_id}")
        assert re.search(r'<option value="admin" selected>', page.text)
        disabled = http.post(f"/admin/users/{user_id}/disable", data={"csrf_token": token})
        assert disabled.status_code == 303
        page = http.get(f"/admin/users/{user_id}?saved=disabled")
        assert 'id="user-status">disabled' in page.text and 'id="enable-user"' in page.text
        assert 'id="password-link"' not in page.text
        refused = http.post(f"/admin/users/{user_id}/password-link", data={"csrf_token": token})
        assert refused.status_code == 400 and "enable it first" in refused.text
        assert (
            http.post(f"/admin/users/{user_id}/enable", data={"csrf_token": token}).status_code
            == 303
        )
        relinked = http.post(f"/admin/users/{user_id}/password-link", data={"csrf_token": token})
        assert relinked.status_code == 200 and relinked.headers["cache-control"] == "no-store"
        assert _LINK.search(relinked.text) is not None

        own = http.post(
            f"/admin/users/{owner.user['id']}/roles",
            data={"csrf_token": token, "workspace": team["id"], "role": "viewer"},
        )
        assert own.status_code == 400 and "cannot change your own roles" in own.text


def test_viewers_and_admins_cannot_manage_users(console_gateway: GatewayProcess) -> None:
    team, owner = team_with_owner(console_gateway, "guarded")
    viewer = session_of(console_gateway, role="viewer", workspace=team["slug"])
    admin = session_of(console_gateway, role="admin", workspace=team["slug"])
    with browser_like(viewer) as http:
        token = form_token(http.get("/admin/keys"))
        assert http.get("/admin/users").status_code == 403
        assert http.get("/admin/audit").status_code == 403
        made = http.post(
            "/admin/users/new",
            data={"csrf_token": token, "email": "v@example.com", "workspace": team["slug"],
                  "role": "owner"},
        )  # fmt: skip
        assert made.status_code == 403 and "text/html" in made.headers["content-type"]
    with browser_like(admin) as http:
        listing = http.get("/admin/users")
        assert listing.status_code == 200 and 'id="new-user-link"' not in listing.text
        token = form_token(http.get(f"/admin/users/{owner.user['id']}"))
        assert http.get("/admin/users/new").status_code == 403
        for action in ("disable", "password-link"):
            response = http.post(
                f"/admin/users/{owner.user['id']}/{action}", data={"csrf_token": token}
            )
            assert response.status_code == 403, action
        promoted = http.post(
            f"/admin/users/{viewer.user['id']}/roles",
            data={"csrf_token": token, "workspace": team["id"], "role": "owner"},
        )
        assert promoted.status_code == 403
    with console_gateway.http() as master:
        users = master.get("/admin/api/users", params={"workspace": team["slug"]}).json()["data"]
        assert {u["email"]: u["workspaces"][0]["role"] for u in users}[
            viewer.user["email"]
        ] == "viewer"
        assert all(u["status"] != "disabled" for u in users)


def test_the_audit_log_shows_changes_in_scope_without_secrets(
    console_gateway: GatewayProcess,
) -> None:
    team, owner = team_with_owner(console_gateway, "audited")
    other, stranger = team_with_owner(console_gateway, "elsewhere")
    with owner.client() as http:
        key = make_key(http, name="audited-key", rpm_limit=7)
        secret = key["key"]
        renamed = http.patch(f"/admin/api/keys/{key['id']}", json={"name": "renamed-key"})
        assert renamed.status_code == 200
    with stranger.client() as http:
        make_key(http, name="strangers-key")

    with browser_like(owner) as http:
        page = http.get("/admin/audit")
        assert page.status_code == 200
        text = page.text
        assert secret not in text and secret[:16] not in text
        rows = re.findall(
            r'<tr id="audit-([0-9a-f]{32})" data-action="([^"]+)">(.*?)</tr>', text, re.S
        )
        actions = [action for _, action, _ in rows]
        assert actions[:2] == ["key.update", "key.create"]  # newest first
        update, create = rows[0][2], rows[1][2]
        assert "&#34;audited-key&#34;" in update and "&#34;renamed-key&#34;" in update
        assert "rpm_limit" not in update  # unchanged values are left out
        assert "rpm_limit" in create and html.escape(owner.user["email"]) in create
        assert f'href="/admin/keys/{key["id"]}"' in create
        assert f'<td class="nowrap">{team["slug"]}</td>' in create
        assert "strangers-key" not in text and other["slug"] not in text

        only_creates = http.get("/admin/audit", params={"action": "key.create", "last": "1h"})
        kinds = set(re.findall(r'data-action="([^"]+)"', only_creates.text))
        assert kinds == {"key.create"}
        assert 'name="last" value="1h"' in only_creates.text  # the top bar's range is kept

        first = http.get("/admin/audit", params={"limit": "1"})
        older = re.search(r'id="audit-older" href="([^"]+)"', first.text)
        assert older is not None
        second = http.get(html.unescape(older.group(1)))
        assert re.findall(r'data-action="([^"]+)"', second.text) == ["key.create"]
        assert 'id="audit-newest"' in second.text

        foreign = http.get("/admin/audit", params={"workspace": other["slug"]})
        assert foreign.status_code == 404
        empty = http.get("/admin/audit", params={"actor": "nobody@example.com"})
        assert 'id="audit-empty"' in empty.text

        users_page = http.get("/admin/users")
        assert html.escape(stranger.user["email"]) not in users_page.text
        assert http.get(f"/admin/users/{stranger.user['id']}").status_code == 404
