"""Alerts with live traffic: an error burst through the gateway and the mock provider fires an
error-rate rule within its `for` plus the evaluation interval, and recovery resolves it. Two
evaluating processes share each database — two gateways on Postgres, two workers of one
`steerway serve` on SQLite — and every notification is sent once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import openai
import pytest

from telemetry.alerts import AlertRule, ChannelConfig
from telemetry.alerts.rule_store import create_channel, create_rule
from telemetry.db import create_engine
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

SECRET = "e2e-hook-secret"


class Hook(ThreadingHTTPServer):
    """A webhook receiver on loopback that keeps the alerts of correctly signed requests."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.alerts: list[dict[str, Any]] = []
        self.refused = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def states(self) -> list[str]:
        with self.lock:
            return [alert["state"] for alert in self.alerts]


class _HookHandler(BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        timestamp = self.headers.get("X-Steerway-Timestamp", "")
        expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        signed = hmac.compare_digest(
            f"sha256={expected.hexdigest()}", self.headers.get("X-Steerway-Signature", "")
        )
        with self.server.lock:
            if signed:
                self.server.alerts.append(msgspec.json.decode(body)["alert"])
            else:
                self.server.refused += 1
        self.send_response(200 if signed else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


WINDOW_S = 120
"""A minute's window is the minute in progress (`telemetry.alerts.window`); two minutes keep a
burst in the window for at least a minute after it, wherever in its minute it fell."""


def _add_rule(database: Database, hook_url: str, *, window_s: int = WINDOW_S) -> AlertRule:
    """An error-rate rule notifying the hook: critical at 20 % errors of ten requests or more."""

    async def add() -> AlertRule:
        engine = create_engine(database.url)
        try:
            channel = await create_channel(
                engine,
                ChannelConfig(
                    kind="webhook",
                    name=f"e2e hook {secrets.token_hex(4)}",
                    settings={"url": hook_url, "max_attempts": 2, "timeout_s": 5},
                    secrets={"signing_secret": "${E2E_HOOK_SECRET}"},
                ),
                workspace_id=DEFAULT_WORKSPACE_ID,
            )
            return await create_rule(
                engine,
                AlertRule(
                    name=f"Error burst {secrets.token_hex(4)}",
                    metric="error_rate",
                    critical=0.2,
                    window_s=window_s,
                    for_s=2,
                    min_requests=10,
                    channel_ids=[channel.id],
                ),
            )
        finally:
            await engine.dispose()

    return asyncio.run(add())


def _wait(condition: Callable[[], bool], timeout: float, between: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        between()
    return condition()


def test_an_error_burst_fires_once_and_recovery_resolves(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
    hook: Hook,
) -> None:
    rule = _add_rule(backend_database, hook.url)
    master = "sk-master-" + secrets.token_hex(8)
    config = mock_config(
        mock_provider, alerts={"interval": 1}, console={"public_url": "https://steerway.test"}
    )
    options: dict[str, Any] = {"master_key": master, "env": {"E2E_HOOK_SECRET": SECRET}}
    if backend_database.url.startswith("sqlite"):
        gateways = [start_gateway(backend_database, config, workers=2, **options)]
    else:
        gateways = [start_gateway(backend_database, config, **options) for _ in range(2)]
    client = gateways[0].client()

    def ask(fail: bool) -> None:
        extra = {"mock": {"error": 500}} if fail else {}
        try:
            client.chat.completions.create(
                model="mock-gpt",
                messages=[{"role": "user", "content": "hello"}],
                extra_body=extra,
            )
        except openai.APIStatusError:
            assert fail

    for _ in range(15):
        ask(fail=True)
    burst_over = time.monotonic()
    assert _wait(lambda: hook.states() == ["firing"], 20, lambda: time.sleep(0.1))
    fired_after = time.monotonic() - burst_over
    (fired,) = hook.alerts
    assert (fired["rule_id"], fired["severity"], fired["value"]) == (rule.id, "critical", 100)
    assert fired["console_url"].startswith("https://steerway.test/admin/alerts/")
    time.sleep(3)  # three more rounds, in each process: nothing more is sent
    assert hook.states() == ["firing"], fired_after

    # Healthy traffic: once some 60 answers follow the 15 errors in the window (or the
    # burst's minute leaves it), the error rate is under 20 % and the alert resolves.
    assert _wait(lambda: hook.states() == ["firing", "resolved"], 90, lambda: ask(fail=False))
    time.sleep(3)
    assert hook.states() == ["firing", "resolved"]
    assert hook.alerts[1]["fingerprint"] == fired["fingerprint"]
    assert hook.refused == 0
    rows = backend_database.rows(
        "SELECT state FROM alert_instances WHERE rule_id = :rule", rule=rule.id
    )
    assert rows == [{"state": "resolved"}]
