"""The console's alert and channel pages over HTTP, against a running gateway on SQLite and
Postgres: each workspace sees its own alerts and channels only (another's is a 404 and never
listed), the filters read as the API's and refuse bad values with a 400, a secret is never on a
page, and the buttons of an alert change it through the API's operations, audit entry included,
for an admin of the workspace but not for a user of it."""

from __future__ import annotations

import re
import secrets

from tests.admin_ui.alert_fixtures import plant_instance
from tests.admin_ui.conftest import error_of, workspace_keys
from tests.admin_ui.console_fixtures import console_gateway
from tests.admin_ui.test_alerts_api import API, created, distinctive_secret, rule, webhook
from tests.e2e.conftest import GatewayProcess, backend_database, mock_provider

__all__ = ["backend_database", "console_gateway", "mock_provider"]


def test_each_workspace_sees_its_own_alerts_and_channels(console_gateway: GatewayProcess) -> None:
    slug, admin, _ = workspace_keys(console_gateway, "pages")
    _, other_admin, _ = workspace_keys(console_gateway, "elsewhere")
    secret = distinctive_secret()
    rule_name = f"Latency {secrets.token_hex(4)}"
    with console_gateway.http(admin) as http:
        channel = created(http, "channels", webhook(secret, name=f"pager {secrets.token_hex(3)}"))
        made = created(http, "rules", rule(name=rule_name, channels=[channel["id"]]))
    firing = plant_instance(console_gateway.database, made["id"], made["workspace_id"], "firing")
    pending = plant_instance(console_gateway.database, made["id"], made["workspace_id"], "pending")

    with console_gateway.http(admin) as http:
        page = http.get("/admin/alerts")
        assert page.status_code == 200
        assert f'id="alert-row-{firing}"' in page.text and f"alert-row-{pending}" not in page.text
        shown = " ".join(re.sub(r"<[^>]+>", " ", page.text).split())
        assert "40 % above 5 %" in shown  # a rate as the notifications write it
        both = http.get("/admin/alerts", params={"state": "all"}).text
        assert f"alert-row-{firing}" in both and f"alert-row-{pending}" in both
        assert "alert-row-" not in http.get("/admin/alerts", params={"severity": "warning"}).text
        by_severity = http.get(f"{API}/instances", params={"severity": "critical"}).json()
        assert {item["id"] for item in by_severity["data"]} == {firing, pending}
        assert http.get(f"{API}/instances", params={"severity": "warning"}).json()["data"] == []
        first = http.get("/admin/alerts", params={"state": "all", "limit": "1"}).text
        assert f"alert-row-{pending}" in first and f"alert-row-{firing}" not in first
        older = re.search(r'id="page-older" href="([^"]+)"', first)
        assert older is not None
        second = http.get(older.group(1).replace("&amp;", "&")).text
        assert f"alert-row-{firing}" in second and f"alert-row-{pending}" not in second
        assert 'id="page-older"' not in second and 'id="page-newest"' in second
        detail = http.get(f"/admin/alerts/{firing}")
        assert detail.status_code == 200 and rule_name in detail.text
        assert 'id="ack-alert"' in detail.text and 'id="alert-chart"' in detail.text
        channel_page = http.get(f"/admin/alerts/channels/{channel['id']}")
        assert channel_page.status_code == 200 and channel["name"] in channel_page.text
        listing = http.get("/admin/alerts/channels").text
        for text in (channel_page.text, listing, detail.text):
            assert secret not in text
        overview = http.get("/admin/analytics", params={"workspace": slug}).text
        assert f'id="firing-{firing}"' in overview

    with console_gateway.http(other_admin) as http:
        for path in (f"/admin/alerts/{firing}", f"/admin/alerts/channels/{channel['id']}"):
            assert http.get(path).status_code == 404
        assert http.post(f"/admin/alerts/{firing}/ack").status_code == 404
        assert http.post(f"/admin/alerts/channels/{channel['id']}/test").status_code == 404
        for path in ("/admin/alerts?state=all", "/admin/alerts/channels", "/admin/analytics"):
            text = http.get(path).text
            assert rule_name not in text and channel["name"] not in text


def test_bad_filters_are_a_400_naming_them(console_gateway: GatewayProcess) -> None:
    with console_gateway.http() as http:
        for params, name in (
            ({"state": "burning"}, "state"),
            ({"severity": "loud"}, "severity"),
            ({"rule": "not-an-id"}, "rule"),
            ({"cursor": "x" * 40}, "cursor"),
        ):
            page = http.get("/admin/alerts", params=params)
            assert page.status_code == 400, (params, page.status_code)
            assert f"&#39;{name}&#39;" in page.text or f"'{name}'" in page.text
        assert http.get("/admin/alerts/channels/new", params={"kind": "fax"}).status_code == 400
        loud = http.get(f"{API}/instances", params={"severity": "loud"})
        assert error_of(loud, 400)["param"] == "severity"
        assert http.get("/admin/alerts/" + "0" * 32).status_code == 404


def test_the_buttons_act_for_an_admin_of_the_workspace_only(
    console_gateway: GatewayProcess,
) -> None:
    _, admin, user = workspace_keys(console_gateway, "buttons")
    with console_gateway.http(admin) as http:
        made = created(http, "rules", rule())
    instance = plant_instance(console_gateway.database, made["id"], made["workspace_id"], "firing")
    with console_gateway.http(user) as http:
        assert http.post(f"/admin/alerts/{instance}/ack").status_code in (401, 403)
    with console_gateway.http(admin) as http:
        acked = http.post(f"/admin/alerts/{instance}/ack")
        assert acked.status_code == 303
        assert acked.headers["location"] == f"/admin/alerts/{instance}?done=acknowledged"
        resolved = http.post(f"/admin/alerts/{instance}/resolve")
        assert resolved.headers["location"] == f"/admin/alerts/{instance}?done=resolved"
        again = http.post(f"/admin/alerts/{instance}/resolve")
        assert again.headers["location"] == f"/admin/alerts/{instance}?problem=ended"
        state = http.get(f"{API}/instances/{instance}").json()
        assert state["state"] == "resolved" and state["acknowledged_by"] == "buttons-master"
        page = http.get(f"/admin/alerts/{instance}")
        assert re.search(r'id="alert-state"[^>]*>resolved<', page.text)
        assert 'id="resolve-alert"' not in page.text
    actions = console_gateway.database.rows(
        "SELECT action FROM audit_log WHERE target_id = :id ORDER BY audit_id", id=instance
    )
    assert [row["action"] for row in actions] == ["alert.acknowledge", "alert.resolve"]


def test_a_channel_is_made_edited_and_deleted_with_the_forms(
    console_gateway: GatewayProcess,
) -> None:
    _, admin, _ = workspace_keys(console_gateway, "forms")
    secret, replaced = distinctive_secret(), distinctive_secret()
    name = f"relay {secrets.token_hex(3)}"
    form = {
        "kind": "email",
        "name": name,
        "setting_host": "smtp.example.com",
        "setting_port": "2525",
        "setting_security": "starttls",
        "setting_username": "alerts",
        "setting_from_address": "Steerway <alerts@example.com>",
        "setting_to": "ops@example.com, oncall@example.com",
        "secret_password": secret,
    }
    with console_gateway.http(admin) as http:
        refused = http.post("/admin/alerts/channels/new", data={**form, "setting_to": "nobody"})
        assert refused.status_code == 400
        assert "is not an email address" in refused.text and secret not in refused.text
        made = http.post("/admin/alerts/channels/new", data=form)
        assert made.status_code == 303, made.text
        channel_id = made.headers["location"].split("/")[-1].split("?")[0]
        stored = http.get(f"{API}/channels/{channel_id}").json()
        assert stored["settings"]["to"] == ["ops@example.com", "oncall@example.com"]
        assert stored["settings"]["port"] == 2525 and stored["secrets"] == {"password": "(sealed)"}
        page = http.get(f"/admin/alerts/channels/{channel_id}").text
        assert secret not in page and 'id="field-setting_host" name="setting_host"' in page

        # an empty secret field keeps the secret; a new value replaces it; the box removes it
        edit = {key: value for key, value in form.items() if key not in ("kind", "secret_password")}
        kept = http.post(f"/admin/alerts/channels/{channel_id}", data={**edit, "setting_port": ""})
        assert kept.status_code == 303
        stored = http.get(f"{API}/channels/{channel_id}").json()
        assert "port" not in stored["settings"] and stored["secrets"] == {"password": "(sealed)"}
        http.post(
            f"/admin/alerts/channels/{channel_id}", data={**edit, "secret_password": replaced}
        )
        rows = console_gateway.database.rows(
            "SELECT secrets FROM notification_channels WHERE channel_id = :id", id=channel_id
        )
        assert secret not in str(rows) and replaced not in str(rows)
        removed = http.post(
            f"/admin/alerts/channels/{channel_id}",
            data={**edit, "setting_username": "", "remove_password": "1"},
        )
        assert removed.status_code == 303
        assert http.get(f"{API}/channels/{channel_id}").json()["secrets"] == {}

        deleted = http.post(f"/admin/alerts/channels/{channel_id}/delete")
        assert deleted.status_code == 303
        assert http.get(f"{API}/channels/{channel_id}").status_code == 404
        for kind, secret_name, value in (
            ("slack", "webhook_url", "https://hooks.slack.example/services/" + replaced),
            ("pagerduty", "routing_key", replaced),
        ):
            made = http.post(
                "/admin/alerts/channels/new",
                data={"kind": kind, "name": f"{kind} {name}", f"secret_{secret_name}": value},
            )
            assert made.status_code == 303, made.text
            made_id = made.headers["location"].split("/")[-1].split("?")[0]
            shown = http.get(f"{API}/channels/{made_id}").json()
            assert shown["kind"] == kind and shown["secrets"] == {secret_name: "(sealed)"}
            assert replaced not in http.get(f"/admin/alerts/channels/{made_id}").text
            missing = http.post(
                "/admin/alerts/channels/new", data={"kind": kind, "name": f"{kind} without"}
            )
            assert missing.status_code == 400 and secret_name in missing.text
    actions = console_gateway.database.rows(
        "SELECT action FROM audit_log WHERE target_id = :id ORDER BY audit_id", id=channel_id
    )
    assert [row["action"] for row in actions] == [
        "alert_channel.create",
        *["alert_channel.update"] * 3,
        "alert_channel.delete",
    ]
