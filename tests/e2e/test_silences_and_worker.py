"""Silences and `steerway worker` with live traffic through the gateway and the mock provider,
on SQLite and Postgres, notifications to a webhook receiver that checks their signatures.

- An error burst matched by a silence is recorded as firing and not notified; expiring the
  silence through the admin API lets the firing through at the next evaluation.
- With `alerts.run_in_serve: false` the gateway evaluates nothing; a `steerway worker` sharing
  its database sends the burst's notification, once, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai

from tests.e2e.conftest import (
    STEERWAY,
    Database,
    GatewayProcess,
    MockProcess,
    backend_database,
    mock_config,
    mock_provider,
    stop,
)
from tests.e2e.test_alerts import SECRET, Hook, _add_rule, _wait, hook

__all__ = ["backend_database", "hook", "mock_provider"]

API = "/admin/api/alerts"
WINDOW_S = 120


def _burst(gateway: GatewayProcess) -> None:
    """Fifteen failing requests. The rule's window is two minutes (`WINDOW_S`): the burst stays
    in it for at least the minute after, whenever it is sent."""
    client = gateway.client()
    for _ in range(15):
        try:
            client.chat.completions.create(
                model="mock-gpt",
                messages=[{"role": "user", "content": "hello"}],
                extra_body={"mock": {"error": 500}},
            )
        except openai.APIStatusError:
            pass
        else:
            raise AssertionError("the mock was asked to fail")


def _start(
    start_gateway: Callable[..., GatewayProcess],
    database: Database,
    mock: MockProcess,
    **alerts: Any,
) -> GatewayProcess:
    config = mock_config(
        mock, alerts={"interval": 1, **alerts}, console={"public_url": "https://steerway.test"}
    )
    return start_gateway(
        database,
        config,
        master_key="sk-master-" + os.urandom(8).hex(),
        env={"E2E_HOOK_SECRET": SECRET},
    )


def test_a_silence_holds_an_error_burst_back_until_it_is_expired(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
    hook: Hook,
) -> None:
    rule = _add_rule(backend_database, hook.url, window_s=WINDOW_S)
    gateway = _start(start_gateway, backend_database, mock_provider)
    with gateway.http() as http:
        made = http.post(
            f"{API}/silences",
            json={
                "matchers": [f"alertname={rule.name}", "severity=~critical|warning"],
                "duration": "1h",
                "comment": "known provider incident",
            },
        )
        assert made.status_code == 201, made.text
        silence_id = made.json()["id"]

        _burst(gateway)

        def silenced_firing() -> list[dict[str, Any]]:
            return backend_database.rows(
                "SELECT instance_id FROM alert_instances WHERE rule_id = :rule"
                " AND state = 'firing' AND silenced_by = :silence",
                rule=rule.id,
                silence=silence_id,
            )

        assert _wait(lambda: bool(silenced_firing()), 20, lambda: time.sleep(0.2))
        time.sleep(3)  # three more rounds: still nothing sent
        assert hook.states() == []
        (row,) = silenced_firing()
        shown = http.get(f"{API}/instances/{row['instance_id']}").json()
        assert shown["silenced_by"] == silence_id
        assert f"silenced by {silence_id}" in [event["note"] for event in shown["events"]]

        expired = http.post(f"{API}/silences/{silence_id}/expire")
        assert expired.status_code == 200, expired.text
        assert _wait(lambda: hook.states() == ["firing"], 10, lambda: time.sleep(0.1))
    (fired,) = hook.alerts
    assert (fired["rule_id"], fired["value"]) == (rule.id, 100)
    time.sleep(2)
    assert hook.states() == ["firing"] and hook.refused == 0


def test_a_worker_evaluates_for_a_gateway_that_does_not(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
    hook: Hook,
    tmp_path: Path,
) -> None:
    rule = _add_rule(backend_database, hook.url, window_s=WINDOW_S)
    gateway = _start(start_gateway, backend_database, mock_provider, run_in_serve=False)
    _burst(gateway)
    time.sleep(3)  # three of the gateway's intervals: it evaluates nothing
    assert hook.states() == []
    assert (
        backend_database.rows(
            "SELECT state FROM alert_instances WHERE rule_id = :rule", rule=rule.id
        )
        == []
    )

    environ = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
        "STEERWAY_DATABASE_URL": backend_database.url,
        "STEERWAY_CONFIG": str(tmp_path / f"steerway-{gateway.port}.yaml"),  # the gateway's
        "STEERWAY_MASTER_KEY": gateway.master_key or "",
        "E2E_HOOK_SECRET": SECRET,
    }
    worker = subprocess.Popen(
        [STEERWAY, "worker"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environ
    )
    sent = _wait(lambda: hook.states() == ["firing"], 20, lambda: time.sleep(0.1))
    if sent:
        time.sleep(3)
    running = worker.poll() is None
    output = stop(worker)
    assert sent and running, output
    assert hook.states() == ["firing"] and hook.refused == 0
    assert worker.returncode == 0, output
    assert "evaluating alert rules every 1 s" in output
    assert output.rstrip().endswith("stopped"), output
    (fired,) = hook.alerts
    assert fired["rule_id"] == rule.id
    assert fired["console_url"].startswith("https://steerway.test/admin/alerts/")


def test_the_worker_refuses_a_database_not_migrated_and_stops_on_sigint(tmp_path: Path) -> None:
    environ = {
        **os.environ,
        "STEERWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "STEERWAY_CONFIG": "",
    }
    refused = subprocess.run(
        [STEERWAY, "worker"], capture_output=True, text=True, env=environ, timeout=60
    )
    assert refused.returncode == 1
    assert "run 'steerway migrate' first" in refused.stderr

    migrated = subprocess.run(
        [STEERWAY, "migrate"], capture_output=True, text=True, env=environ, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    worker = subprocess.Popen(
        [STEERWAY, "worker", "--log-level", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environ,
    )
    assert worker.stdout is not None
    first = worker.stdout.readline().decode()
    assert "steerway worker started" in first
    started = [worker.stdout.readline().decode() for _ in range(3)]
    assert any("evaluating alert rules every 30 s" in line for line in started), started
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=20) == 0
    rest = worker.stdout.read().decode()
    assert "stopping" in rest and rest.rstrip().endswith("stopped"), rest
    assert "Traceback" not in rest
