"""`/admin/api/alerts` against a running gateway on SQLite and Postgres: channels, rules and
alert instances read and changed within the caller's workspaces; secrets sealed and never
shown; the test notification sent to a real receiver; every bad input a 4xx naming where."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx

from tests.admin_ui.alert_fixtures import plant_instance, webhook_receiver
from tests.admin_ui.conftest import error_of, workspace_keys
from tests.admin_ui.console_fixtures import CONSOLE, address, console_gateway
from tests.console_users import create_user, sign_in
from tests.e2e.conftest import (
    Database,
    GatewayProcess,
    MockProcess,
    backend_database,
    mock_config,
    mock_provider,
)

__all__ = ["backend_database", "console_gateway", "mock_provider"]

API = "/admin/api/alerts"


def webhook(
    secret: str, url: str = "https://hooks.example/steerway", **changes: Any
) -> dict[str, Any]:
    return {
        "kind": "webhook",
        "name": f"Hook {secrets.token_hex(3)}",
        "settings": {"url": url},
        "secrets": {"signing_secret": secret},
        **changes,
    }


def rule(name: str = "Errors", **changes: Any) -> dict[str, Any]:
    return {
        "name": f"{name} {secrets.token_hex(3)}",
        "metric": "error_rate",
        "group_by": ["model"],
        "window": "5m",
        "condition": "above",
        "warning": 0.02,
        "critical": 0.05,
        "for": "1m",
        "min_requests": 20,
        **changes,
    }


def created(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"{API}/{path}", json=body)
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


def made_by_users(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules that are not built in (every workspace has those)."""
    return [rule for rule in rules if rule["built_in"] is None]


def listed(http: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    response = http.get(f"{API}/{path}", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def audit_rows(gateway: GatewayProcess, target_id: str) -> list[dict[str, Any]]:
    return gateway.database.rows(
        "SELECT action, before, after FROM audit_log WHERE target_id = :id ORDER BY audit_id",
        id=target_id,
    )


def distinctive_secret() -> str:
    return "whsec-" + secrets.token_hex(16)


def test_a_channel_is_created_read_replaced_and_deleted_without_showing_its_secret(
    console_gateway: GatewayProcess,
) -> None:
    secret, replaced = distinctive_secret(), distinctive_secret()
    shown: list[str] = []
    with console_gateway.http() as http:
        item = created(http, "channels", webhook(secret))
        shown.append(json.dumps(item))
        assert item["object"] == "alert_channel"
        assert item["secrets"] == {"signing_secret": "(sealed)"}
        channel_id = item["id"]
        read = http.get(f"{API}/channels/{channel_id}")
        shown.append(read.text)
        assert read.json() == item
        assert channel_id in {c["id"] for c in listed(http, "channels")}

        # what was read goes back as it is: "(sealed)" keeps the stored secret
        renamed = http.put(f"{API}/channels/{channel_id}", json={**item, "name": "Renamed"})
        shown.append(renamed.text)
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "Renamed"
        stored = console_gateway.database.rows(
            "SELECT secrets FROM notification_channels WHERE channel_id = :id", id=channel_id
        )[0]["secrets"]
        stored_before = stored

        changed = http.put(
            f"{API}/channels/{channel_id}",
            json={"name": "Renamed", "secrets": {"signing_secret": replaced}},
        )
        shown.append(changed.text)
        assert changed.status_code == 200, changed.text
        stored = console_gateway.database.rows(
            "SELECT secrets FROM notification_channels WHERE channel_id = :id", id=channel_id
        )[0]["secrets"]
        assert stored != stored_before
        assert "sealed:v1:" in str(stored) and replaced not in str(stored)

        referenced = http.put(
            f"{API}/channels/{channel_id}",
            json={"name": "Renamed", "secrets": {"signing_secret": "${HOOK_SECRET}"}},
        )
        assert referenced.json()["secrets"] == {"signing_secret": "${HOOK_SECRET}"}

        taken = created(http, "channels", webhook(distinctive_secret()))
        clash = http.put(f"{API}/channels/{taken['id']}", json={"name": "Renamed"})
        assert error_of(clash, 409)["param"] == "name"
        assert error_of(http.post(f"{API}/channels", json=webhook(secret, name="Renamed")), 409)

        assert http.delete(f"{API}/channels/{channel_id}").status_code == 204
        error_of(http.get(f"{API}/channels/{channel_id}"), 404)
    actions = [row["action"] for row in audit_rows(console_gateway, channel_id)]
    assert actions == [
        "alert_channel.create",
        *["alert_channel.update"] * 3,
        "alert_channel.delete",
    ]
    everything = "\n".join(shown) + json.dumps(audit_rows(console_gateway, channel_id), default=str)
    assert secret not in everything and replaced not in everything


def test_the_test_action_sends_a_signed_notification_to_a_real_receiver(
    console_gateway: GatewayProcess,
) -> None:
    secret = distinctive_secret()
    with webhook_receiver(secret) as receiver, console_gateway.http() as http:
        item = created(http, "channels", webhook(secret, url=f"{receiver.url}/hook"))
        response = http.post(f"{API}/channels/{item['id']}/test")
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["status"], result["http_status"], result["channel_id"]) == (
            "sent",
            200,
            item["id"],
        )
        assert secret not in response.text
    assert len(receiver.received) == 1
    assert receiver.received[0].problem is None  # the signature checks out
    assert receiver.received[0].json()["test"] is True
    assert [row["action"] for row in audit_rows(console_gateway, item["id"])][-1] == (
        "alert_channel.test"
    )


def test_a_rule_is_created_read_replaced_muted_and_deleted(
    console_gateway: GatewayProcess,
) -> None:
    with console_gateway.http() as http:
        channel = created(http, "channels", webhook(distinctive_secret()))
        item = created(http, "rules", rule(channels=[channel["id"]]))
        assert item["object"] == "alert_rule"
        assert (item["window"], item["for"], item["channels"]) == (300, 60, [channel["id"]])
        rule_id = item["id"]
        assert http.get(f"{API}/rules/{rule_id}").json() == item
        assert rule_id in {r["id"] for r in listed(http, "rules")}

        muted = http.post(f"{API}/rules/{rule_id}/mute")
        assert muted.status_code == 200 and muted.json()["muted"] is True
        replaced = http.put(
            f"{API}/rules/{rule_id}",
            json={k: v for k, v in {**item, "critical": 0.1}.items() if k != "muted"},
        )
        assert replaced.status_code == 200, replaced.text
        assert (replaced.json()["critical"], replaced.json()["muted"]) == (0.1, True)
        assert http.post(f"{API}/rules/{rule_id}/unmute").json()["muted"] is False

        # a channel a rule notifies cannot be deleted; the name of a rule is unique
        error_of(http.delete(f"{API}/channels/{channel['id']}"), 409)
        clash = http.post(f"{API}/rules", json={**rule(), "name": item["name"]})
        assert error_of(clash, 409)["param"] == "name"

        assert http.delete(f"{API}/rules/{rule_id}").status_code == 204
        error_of(http.get(f"{API}/rules/{rule_id}"), 404)
        assert http.delete(f"{API}/channels/{channel['id']}").status_code == 204
    actions = [row["action"] for row in audit_rows(console_gateway, rule_id)]
    assert actions == [
        "alert_rule.create",
        "alert_rule.mute",
        "alert_rule.update",
        "alert_rule.unmute",
        "alert_rule.delete",
    ]


def test_rule_errors_name_the_field(console_gateway: GatewayProcess) -> None:
    cases = {
        "window": rule(window="soon"),
        "metric": rule(metric="no_such_metric"),
        "critical": rule(condition="below", warning=0.02, critical=0.05),
        "channels": rule(channels=["0" * 32]),
        "colour": rule(colour="red"),
        "name": {"metric": "error_rate"},
        "labels": rule(labels={"team": 3}),
    }
    with console_gateway.http() as http:
        for field, body in cases.items():
            error = error_of(http.post(f"{API}/rules", json=body), 400)
            assert error["param"] == field, (field, error)


def test_alerts_are_listed_acknowledged_and_resolved_by_hand(
    console_gateway: GatewayProcess,
) -> None:
    database = console_gateway.database
    with console_gateway.http() as http:
        item = created(http, "rules", rule())
        rule_id, workspace_id = item["id"], item["workspace_id"]
        older = plant_instance(database, rule_id, workspace_id, "resolved")
        newer = plant_instance(database, rule_id, workspace_id, "firing")

        page = http.get(f"{API}/instances", params={"rule": rule_id, "limit": "1"}).json()
        assert [i["id"] for i in page["data"]] == [newer] and page["has_more"] is True
        rest = http.get(
            f"{API}/instances", params={"rule": rule_id, "cursor": page["next_cursor"]}
        ).json()
        assert [i["id"] for i in rest["data"]] == [older] and rest["has_more"] is False
        firing = listed(http, "instances", rule=rule_id, state="firing")
        assert [i["id"] for i in firing] == [newer]
        assert listed(http, "instances", rule=rule_id, since="2999-01-01T00:00:00Z") == []

        acked = http.post(f"{API}/instances/{newer}/ack")
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged_by"] == "master"
        assert acked.json()["state"] == "firing"
        resolved = http.post(f"{API}/instances/{newer}/resolve")
        assert resolved.status_code == 200, resolved.text
        detail = resolved.json()
        assert detail["state"] == "resolved" and detail["resolved_at"]
        assert [(e["from_state"], e["to_state"]) for e in detail["events"]] == [
            ("firing", "firing"),
            ("firing", "resolved"),
        ]
        assert "acknowledged by master" in detail["events"][0]["note"]
        assert detail["deliveries"] == []
        error_of(http.post(f"{API}/instances/{newer}/resolve"), 409)
        error_of(http.post(f"{API}/instances/{older}/ack"), 409)
    actions = [row["action"] for row in audit_rows(console_gateway, newer)]
    assert actions == ["alert.acknowledge", "alert.resolve"]


def test_another_workspace_sees_and_changes_nothing(console_gateway: GatewayProcess) -> None:
    slug, admin, _ = workspace_keys(console_gateway, "alerts")
    other_slug, other_admin, _ = workspace_keys(console_gateway, "elsewhere")
    secret = distinctive_secret()
    with console_gateway.http(admin) as http:
        channel = created(http, "channels", webhook(secret))
        made = created(http, "rules", rule(channels=[channel["id"]]))
        assert made["workspace_id"] == channel["workspace_id"] != "default"
    instance = plant_instance(console_gateway.database, made["id"], made["workspace_id"], "firing")
    with console_gateway.http(other_admin) as http:
        for path in (
            f"channels/{channel['id']}",
            f"rules/{made['id']}",
            f"instances/{instance}",
        ):
            assert error_of(http.get(f"{API}/{path}"), 404)["code"].startswith("alert_")
            error_of(http.delete(f"{API}/{path}"), 405 if "instances" in path else 404)
        error_of(http.put(f"{API}/rules/{made['id']}", json=rule()), 404)
        error_of(http.post(f"{API}/rules/{made['id']}/mute"), 404)
        error_of(http.post(f"{API}/channels/{channel['id']}/test"), 404)
        error_of(http.post(f"{API}/instances/{instance}/ack"), 404)
        assert listed(http, "channels") == [] == made_by_users(listed(http, "rules"))
        assert {rule["workspace_id"] for rule in listed(http, "rules")} != {made["workspace_id"]}
        assert listed(http, "instances") == []
        error_of(http.get(f"{API}/rules", params={"workspace": slug}), 404)
        error_of(http.post(f"{API}/rules", json={**rule(), "workspace": slug}), 404)
        # its own channel cannot be named by a rule of the other workspace, nor the reverse
        bad = http.post(f"{API}/rules", json=rule(channels=[channel["id"]]))
        assert error_of(bad, 400)["param"] == "channels"
    with console_gateway.http() as http:  # an operator sees every workspace, or one
        assert made["id"] in {r["id"] for r in listed(http, "rules")}
        assert {r["id"] for r in made_by_users(listed(http, "rules", workspace=slug))} == {
            made["id"]
        }
        assert made_by_users(listed(http, "rules", workspace=other_slug)) == []


def test_a_viewer_reads_alerts_and_an_admin_of_the_workspace_changes_them(
    console_gateway: GatewayProcess,
) -> None:
    slug, _, _ = workspace_keys(console_gateway, "roles")
    url = console_gateway.database.url
    viewer = sign_in(
        console_gateway.url, create_user(url, role="viewer", workspace=slug), **address()
    )
    admin = sign_in(
        console_gateway.url, create_user(url, role="admin", workspace=slug), **address()
    )
    with admin.client() as http:
        made = created(http, "rules", rule())
        channel = created(http, "channels", webhook(distinctive_secret()))
    with viewer.client() as http:
        assert http.get(f"{API}/rules/{made['id']}").json() == made
        assert {c["id"] for c in listed(http, "channels")} == {channel["id"]}
        assert error_of(http.post(f"{API}/rules/{made['id']}/mute"), 403)["code"] == (
            "permission_denied"
        )
        error_of(http.delete(f"{API}/channels/{channel['id']}"), 403)
        error_of(http.post(f"{API}/rules", json=rule()), 403)
    with console_gateway.http() as http:  # the admin's rule went to the admin's workspace
        assert [r["id"] for r in made_by_users(listed(http, "rules", workspace=slug))] == [
            made["id"]
        ]


def test_bad_input_is_a_4xx_naming_where(console_gateway: GatewayProcess) -> None:
    with console_gateway.http() as http:
        for path in ("channels", "rules"):
            for content in (b"{", b"[]", b"null", b'"text"'):
                response = http.post(
                    f"{API}/{path}", content=content, headers={"Content-Type": "application/json"}
                )
                assert error_of(response, 400)["param"] is not None
        for path in ("channels", "rules", "instances"):
            for given in ("nope", "0" * 32, "../x", "%00"):
                assert 400 <= http.get(f"{API}/{path}/{given}").status_code < 500
        bodies = {
            "kind": webhook("s3cret", kind=["webhook"]),
            "name": webhook("s3cret", name=""),
            "settings": webhook("s3cret", settings=[1]),
            "secrets": webhook("s3cret", secrets="text"),
            "secrets.signing_secret": webhook("s3cret", secrets={"signing_secret": 7}),
            "workspace": webhook("s3cret", workspace=12),
        }
        for param, body in bodies.items():
            error = error_of(http.post(f"{API}/channels", json=body), 400)
            assert error["param"] == param, (param, error)
        missing = webhook("s3cret", secrets={})
        assert error_of(http.post(f"{API}/channels", json=missing), 400)["param"] == "secrets"
        for params in (
            {"limit": "0"},
            {"limit": "x"},
            {"state": "on"},
            {"since": "soon"},
            {"rule": "x"},
        ):
            name = next(iter(params))
            assert error_of(http.get(f"{API}/instances", params=params), 400)["param"] == name
        error_of(http.put(f"{API}/rules/{'0' * 32}", json=rule()), 404)


def test_a_secret_is_never_in_the_gateways_log(
    backend_database: Database, mock_provider: MockProcess, tmp_path: Path
) -> None:
    secret = distinctive_secret()
    gateway = GatewayProcess(
        backend_database,
        mock_config(mock_provider, console=CONSOLE),
        tmp_path,
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        with gateway.http() as http:
            refused = http.post(
                f"{API}/channels", json=webhook(secret, secrets={"signing_sekret": secret})
            )
            assert secret not in error_of(refused, 400)["message"]
            unreachable = webhook(
                secret,
                settings={"max_attempts": 1, "timeout_s": 2},
                secrets={"signing_secret": secret, "url": f"http://127.0.0.1:9/{secret}"},
            )
            item = created(http, "channels", unreachable)
            tested = http.post(f"{API}/channels/{item['id']}/test")
            assert tested.json()["status"] == "failed"
            assert secret not in tested.text
    finally:
        log = gateway.stop()
    assert f"channel {item['name']!r} failed" in log  # the failure is logged, masked
    assert secret not in log
