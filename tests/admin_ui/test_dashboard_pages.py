"""The saved dashboards' pages over HTTP with real console sessions, against a running gateway on
SQLite and Postgres: the panel editor adds, moves and removes panels and keeps the focus where
the keyboard was; problems come back next to their fields with what was typed; a save, a stale
save (409), a copy and a delete; a viewer sees shared dashboards and changes only its own."""

from __future__ import annotations

import secrets

import httpx

from tests.admin_ui.console_fixtures import console_gateway
from tests.admin_ui.html_page import Page
from tests.admin_ui.test_dashboards_api import body, made, session_of
from tests.admin_ui.test_user_pages import browser_like
from tests.admin_ui.test_workspaces_keys import make_workspace
from tests.e2e.conftest import GatewayProcess, backend_database, mock_provider

__all__ = ["backend_database", "console_gateway", "mock_provider"]

BASE = "/admin/dashboards"
API = "/admin/api/dashboards"
FORM = "dashboard-form"


def submit(
    http: httpx.Client, page: Page, path: str, action: str, **changes: str
) -> httpx.Response:
    """Send the editor as it stands with `changes` typed in, pressing the `action` button."""
    values = dict(page.form_values(FORM))
    values.update(changes)
    return http.post(path, data={**values, "action": action})


def opened(response: httpx.Response, status: int = 200) -> Page:
    assert response.status_code == status, response.text[:2000]
    return Page(response.text)


def team(gateway: GatewayProcess) -> str:
    with gateway.http() as master:
        return str(make_workspace(master, f"dash-{secrets.token_hex(3)}")["slug"])


def test_the_editor_builds_a_dashboard_panel_by_panel(console_gateway: GatewayProcess) -> None:
    slug = team(console_gateway)
    owner = session_of(console_gateway, role="owner", workspace=slug)
    with browser_like(owner) as http:
        listing = opened(http.get(BASE))
        assert "dashboards-empty" in listing

        editor = opened(http.get(f"{BASE}/new"))
        assert editor.value("field-panel-0-metric") == "requests"
        assert "field-shared" in editor  # an owner may share
        editor = opened(
            submit(
                http,
                editor,
                f"{BASE}/new",
                "add",
                name="Team view",
                **{"panel-0-title": "Requests", "panel-0-group_by_1": "model"},
            )
        )
        assert editor.value("field-panel-0-title") == "Requests"  # kept
        assert "autofocus" in editor.element("field-panel-1-title").attributes
        editor = opened(
            submit(
                http,
                editor,
                f"{BASE}/new",
                "up-1",
                **{"panel-1-title": "Cost", "panel-1-metric": "cost", "panel-1-chart": "bar"},
            )
        )
        assert [editor.value(f"field-panel-{n}-title") for n in (0, 1)] == ["Cost", "Requests"]
        assert "autofocus" in editor.element("edit-panel-0-down").attributes  # the top: no more up
        assert "disabled" in editor.element("edit-panel-0-up").attributes

        editor = opened(submit(http, editor, f"{BASE}/new", "add"))
        editor = opened(submit(http, editor, f"{BASE}/new", "remove-2"))
        assert "edit-panel-2" not in editor

        # what cannot be read or shown comes back next to its field, everything typed kept
        refused = opened(
            submit(
                http,
                editor,
                f"{BASE}/new",
                "save",
                **{
                    "panel-0-title": "",
                    "panel-1-filters": "no equals sign here",
                    "panel-1-group_by_2": "tag",
                },
            ),
            400,
        )
        assert "error-form" in refused
        assert "error-panel-0-title" in refused
        assert "Line 1" in refused.text("error-panel-1-filters")
        assert "error-panel-1-group_by" in refused  # model and tag: not one query
        assert refused.value("field-panel-1-filters") == "no equals sign here"
        unknown = opened(
            submit(
                http,
                refused,
                f"{BASE}/new",
                "save",
                **{
                    "panel-0-title": "Cost",
                    "panel-1-filters": "colour=red",
                    "panel-1-group_by_2": "",
                },
            ),
            400,
        )
        assert "colour" in unknown.text("error-panel-1-filters")

        preview = opened(submit(http, unknown, f"{BASE}/new", "preview", **{"panel-1-filters": ""}))
        assert "dashboard-preview" in preview and "Requests" in preview.text("dashboard-preview")

        saved = submit(http, preview, f"{BASE}/new", "save", shared="on")
        assert saved.status_code == 303, saved.text[:2000]
        location = saved.headers["location"]
        dashboard_id = location.split("/")[-1].split("?")[0]
        stored = http.get(f"{API}/{dashboard_id}", headers={"x-csrf-token": owner.csrf_token})
        item = stored.json()
        assert [panel["title"] for panel in item["panels"]] == ["Cost", "Requests"]
        assert item["panels"][1]["group_by"] == ["model"]
        assert item["shared"] is True and item["owner_user_id"] == owner.user["id"]
        view = opened(http.get(location, follow_redirects=True))
        assert "edit-dashboard" in view and "Saved" in view.text("notice")

        # an edit made from a version someone else has changed since is refused, not lost
        editor = opened(http.get(f"{BASE}/{dashboard_id}/edit"))
        assert editor.value("field-name") == "Team view"
        with owner.client() as api:
            changed = api.put(f"{API}/{dashboard_id}", json={**item, "name": "Renamed"})
            assert changed.status_code == 200, changed.text
        stale = opened(
            submit(http, editor, f"{BASE}/{dashboard_id}/edit", "save", name="Mine"), 409
        )
        assert "version 2, not 1" in stale.text("error-form")
        assert stale.value("field-name") == "Mine"

        confirm = opened(http.get(f"{BASE}/{dashboard_id}/delete"))
        gone = http.post(
            f"{BASE}/{dashboard_id}/delete", data=dict(confirm.form_values("delete-form"))
        )
        assert gone.status_code == 303 and "deleted=Renamed" in gone.headers["location"]
        assert http.get(f"{BASE}/{dashboard_id}").status_code == 404


def test_a_viewer_sees_shared_dashboards_and_changes_its_own(
    console_gateway: GatewayProcess,
) -> None:
    slug = team(console_gateway)
    owner = session_of(console_gateway, role="owner", workspace=slug)
    viewer = session_of(console_gateway, role="viewer", workspace=slug)
    with owner.client() as api:
        shared = made(api, body("For everyone", shared=True))
        private = made(api, body("The owner's own"))
    with browser_like(viewer) as http:
        listing = opened(http.get(BASE))
        assert listing.ids_with_prefix("dashboard-row-") == {shared["id"]}
        view = opened(http.get(f"{BASE}/{shared['id']}", follow_redirects=True))
        assert "edit-dashboard" not in view and "copy-dashboard" in view
        assert http.get(f"{BASE}/{shared['id']}/edit").status_code == 403
        assert http.get(f"{BASE}/{shared['id']}/delete").status_code == 403
        assert http.get(f"{BASE}/{private['id']}").status_code == 404

        editor = opened(http.get(f"{BASE}/new"))
        assert "field-shared" not in editor  # a viewer keeps private dashboards only
        copied = http.post(
            f"{BASE}/copy",
            data={"csrf_token": viewer.csrf_token, "copy_of": shared["id"]},
        )
        assert copied.status_code == 303, copied.text
        assert copied.headers["location"].endswith("/edit?copied=1")
        copy = opened(http.get(copied.headers["location"]))
        assert copy.value("field-name") == "Copy of For everyone"
        assert "notice" in copy

        without_token = http.post(f"{BASE}/copy", data={"copy_of": shared["id"]})
        assert without_token.status_code == 403
