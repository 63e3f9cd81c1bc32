"""Built-in rules and rules from the config file in a running gateway: every workspace has the
built-ins; an error burst through the mock provider fires "Error rate above 5 %" once a user
picks a channel for it, and recovery resolves it; rules and channels from the config file are
listed as such and refused changes through the API; a config entry that cannot be applied
stops the start with its path."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.test_alerts import SECRET, Hook, _wait, hook  # noqa: F401  (the fixture)

API = "/admin/api/alerts"
BUILT_IN_NAMES = {
    "budget_soft_limit": "Budget soft limit reached",
    "deployment_cooldown": "Deployment in cooldown",
    "error_rate": "Error rate above 5 %",
    "latency_last_week": "p95 latency above the same hour last week",
}
FROM_FILE = {
    "channels": [
        {
            "name": "file hook",
            "kind": "webhook",
            "settings": {"url": "https://hooks.example/steerway"},
            "secrets": {"signing_secret": "${E2E_HOOK_SECRET}"},
        }
    ],
    "rules": [
        {
            "name": "Errors from the file",
            "metric": "errors",
            "critical": 100,
            "channels": ["file hook"],
        }
    ],
}


def _rules(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = http.get(f"{API}/rules", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "alert_managed_by_config"
    assert "config file" in error["message"]


def test_built_ins_and_rules_from_the_config_file(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    gateway = start_gateway(
        backend_database,
        mock_config(mock_provider, alerts=FROM_FILE),
        master_key="sk-master-" + secrets.token_hex(8),
        env={"E2E_HOOK_SECRET": SECRET},
    )
    with gateway.http() as http:
        rules = _rules(http, workspace="default")
        built_in = {rule["built_in"]: rule for rule in rules if rule["built_in"]}
        assert {key: rule["name"] for key, rule in built_in.items()} == BUILT_IN_NAMES
        assert {tuple(rule["channels"]) for rule in built_in.values()} == {()}

        (from_file,) = [rule for rule in rules if rule["managed_by"] == "config"]
        channels = http.get(f"{API}/channels").json()["data"]
        (hook_channel,) = channels
        assert hook_channel["managed_by"] == "config"
        assert hook_channel["secrets"] == {"signing_secret": "${E2E_HOOK_SECRET}"}
        assert from_file["channels"] == [hook_channel["id"]]
        rule_path = f"{API}/rules/{from_file['id']}"
        body = {k: v for k, v in from_file.items() if k not in ("object", "id", "workspace_id")}
        _refused(http.put(rule_path, json=body | {"critical": 5}))
        _refused(http.delete(rule_path))
        _refused(http.post(f"{rule_path}/mute"))
        channel_path = f"{API}/channels/{hook_channel['id']}"
        _refused(http.put(channel_path, json={"name": "renamed"}))
        _refused(http.delete(channel_path))
        assert http.get(rule_path).json() == from_file

        for wrong, param in (
            ({"metric": "budget_used_pct", "window": "1h", "warning": 80}, "window"),
            ({"metric": "budget_used_pct", "condition": "change_pct", "warning": 50}, "condition"),
            ({"metric": "deployment_down", "group_by": ["key"], "warning": 0}, "group_by"),
        ):
            refused = http.post(f"{API}/rules", json={"name": "Wrong", **wrong})
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["param"] == param
        budgets = http.post(
            f"{API}/rules",
            json={
                "name": "Budgets",
                "metric": "budget_used_pct",
                "kind": "soft_limit",
                "warning": 100,
            },
        )
        assert budgets.status_code == 201, budgets.text
        assert (budgets.json()["kind"], budgets.json()["window"]) == ("soft_limit", 300)

        made = http.post("/admin/api/workspaces", json={"slug": "team-new"})
        assert made.status_code == 201, made.text
        fresh = _rules(http, workspace="team-new")
        assert {rule["built_in"]: rule["name"] for rule in fresh} == BUILT_IN_NAMES


def test_a_config_entry_that_cannot_be_applied_stops_the_start(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    alerts = {"rules": [{**FROM_FILE["rules"][0], "workspace": "nowhere", "channels": []}]}
    with pytest.raises(RuntimeError) as raised:
        start_gateway(backend_database, mock_config(mock_provider, alerts=alerts))
    assert "alerts.rules[0].workspace: no workspace 'nowhere'" in str(raised.value)


def test_an_error_burst_fires_the_built_in_error_rate_rule_and_recovery_resolves_it(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
    hook: Hook,  # noqa: F811
) -> None:
    gateway = start_gateway(
        backend_database,
        mock_config(mock_provider, alerts={"interval": 1}),
        master_key="sk-master-" + secrets.token_hex(8),
        env={"E2E_HOOK_SECRET": SECRET},
    )
    with gateway.http() as http:
        channel = http.post(
            f"{API}/channels",
            json={
                "kind": "webhook",
                "name": f"e2e hook {secrets.token_hex(3)}",
                "workspace": "default",
                "settings": {"url": hook.url, "max_attempts": 2, "timeout_s": 5},
                "secrets": {"signing_secret": "${E2E_HOOK_SECRET}"},
            },
        ).json()
        (rule,) = [r for r in _rules(http, workspace="default") if r["built_in"] == "error_rate"]
        body = {k: v for k, v in rule.items() if k not in ("object", "id", "workspace_id")}
        picked = http.put(f"{API}/rules/{rule['id']}", json=body | {"channels": [channel["id"]]})
        assert picked.status_code == 200, picked.text
        assert picked.json()["built_in"] == "error_rate"
    client = gateway.client(timeout=10)

    def ask(fail: bool) -> None:
        try:
            client.chat.completions.create(
                model="mock-gpt",
                messages=[{"role": "user", "content": "hello"}],
                extra_body={"mock": {"error": 500}} if fail else {},
            )
        except openai.APIStatusError:
            assert fail

    for _ in range(25):
        ask(fail=True)
    assert _wait(lambda: hook.states() == ["firing"], 30, lambda: time.sleep(0.2))
    (fired,) = hook.alerts
    assert (fired["rule_id"], fired["rule_name"]) == (rule["id"], "Error rate above 5 %")
    assert fired["labels"] == {"model": "mock-gpt"}
    assert (fired["severity"], fired["value"], fired["unit"]) == ("critical", 100, "%")

    # Healthy traffic dilutes the 25 errors of the 5-minute window: under 25 % the alert is
    # notified again as a warning, and under 5 % (past 500 requests) it resolves. The traffic
    # stops at 150 healthy requests (14 %) until the warning is in: a fast gateway would
    # otherwise pass both marks between two evaluations.
    for _ in range(150):
        ask(fail=False)
    assert _wait(lambda: hook.states() == ["firing", "firing"], 30, lambda: time.sleep(0.2))
    assert _wait(
        lambda: hook.states() == ["firing", "firing", "resolved"], 60, lambda: ask(fail=False)
    )
    assert [alert["severity"] for alert in hook.alerts] == ["critical", "warning", "warning"]
    assert {alert["fingerprint"] for alert in hook.alerts} == {fired["fingerprint"]}
    assert hook.refused == 0
