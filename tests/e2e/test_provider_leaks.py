"""What clients, the database and the log learn about a failing provider, through a running
gateway on SQLite and Postgres: the provider's name and a generic reason, never the host and
port it is reached at, and none of its configured secrets (API key, header values, URL
credentials), even when the provider quotes everything it was sent."""

from __future__ import annotations

import base64
import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Database, GatewayProcess
from tests.echo_upstream import EchoUpstream

API_KEY = "sk-e2e-leak-" + secrets.token_hex(8)
HEADER_SECRET = "hdr-e2e-secret-" + secrets.token_hex(8)
TOKEN_SECRET = "tok-e2e-secret-" + secrets.token_hex(8)
URL_USER = "urluser" + secrets.token_hex(4)
URL_PASSWORD = "urlpass-e2e-" + secrets.token_hex(8)
BASIC = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode()).decode()
SECRETS = (API_KEY, HEADER_SECRET, TOKEN_SECRET, URL_PASSWORD, BASIC)
UNREACHABLE_HOST = "127.58.19.203"  # loopback: nothing listens there
HEADERS = {"X-Org-Token": HEADER_SECRET, "X-Upstream-Auth": f"Token {TOKEN_SECRET}"}
CHAT = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    with EchoUpstream() as upstream:
        yield upstream


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((UNREACHABLE_HOST, 0))
        return int(sock.getsockname()[1])


def leaky_config(echo: EchoUpstream, port: int) -> dict[str, Any]:
    with_credentials = echo.url.replace("http://", f"http://{URL_USER}:{URL_PASSWORD}@")
    secret = {"api_key": "${LEAK_TEST_KEY}", "headers": HEADERS}
    return {
        "providers": {
            "echo-openai": {"type": "openai", "base_url": f"{echo.url}/v1", **secret},
            "echo-anthropic": {
                "type": "anthropic",
                "base_url": f"{with_credentials}/v1",
                **secret,
            },
            "echo-gemini": {"type": "gemini", "base_url": f"{with_credentials}/v1beta", **secret},
            "nowhere": {
                "type": "openai",
                "base_url": f"http://{UNREACHABLE_HOST}:{port}/v1",
                "timeouts": {"connect": 2, "first_byte": 2, "total": 5},
                **secret,
            },
        },
        "models": {
            "openai-model": [{"provider": "echo-openai", "model": "gpt"}],
            "anthropic-model": [{"provider": "echo-anthropic", "model": "claude"}],
            "gemini-model": [{"provider": "echo-gemini", "model": "gemini"}],
            "nowhere-model": [{"provider": "nowhere", "model": "gpt"}],
        },
    }


def assert_nothing_leaks(text: str, port: int) -> None:
    for value in SECRETS:
        assert value not in text
    assert UNREACHABLE_HOST not in text
    assert f":{port}" not in text
    assert f", {port})" not in text


def test_a_failing_provider_shows_its_name_and_a_generic_reason_and_no_secret(
    backend_database: Database,
    echo: EchoUpstream,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    port = closed_port()
    master = "sk-master-" + secrets.token_hex(8)
    gateway = start_gateway(
        backend_database,
        leaky_config(echo, port),
        master_key=master,
        env={"LEAK_TEST_KEY": API_KEY},
    )
    prefix = f"leak-{uuid.uuid4().hex[:12]}-"
    calls = echo.calls
    answers: dict[str, httpx.Response] = {}
    with gateway.http(master) as http:
        for model in ("openai-model", "anthropic-model", "gemini-model", "nowhere-model"):
            for stream in (False, True):
                request_id = f"{prefix}{model}-{'stream' if stream else 'whole'}"
                answers[request_id] = http.post(
                    "/v1/chat/completions",
                    json={"model": model, "stream": stream, **CHAT},
                    headers={"x-request-id": request_id},
                )
    assert echo.calls == calls + 6, "every echoing provider was called, streamed and not"

    for response in answers.values():
        assert_nothing_leaks(response.text, port)
        assert_nothing_leaks(repr(dict(response.headers)), port)
    unreachable = answers[f"{prefix}nowhere-model-whole"]
    assert unreachable.status_code == 502
    assert unreachable.json()["error"]["message"] == (
        "The upstream provider 'nowhere' failed: cannot connect (connection refused)"
    )
    echoed = answers[f"{prefix}openai-model-whole"]
    assert echoed.status_code == 400
    assert "X-Org-Token: ***" in echoed.json()["error"]["message"]

    traces = backend_database.wait_rows(
        "SELECT * FROM traces WHERE request_id LIKE :prefix",
        count=len(answers),
        prefix=prefix + "%",
    )
    assert len(traces) == len(answers)
    assert all(row["status"] == "error" and row["error_message"] for row in traces)
    trace_ids = [row["trace_id"] for row in traces]
    for table in ("traces", "spans", "decisions", "ai_interactions"):
        rows = [
            row
            for row in backend_database.rows(f"SELECT * FROM {table}")
            if row["trace_id"] in trace_ids
        ]
        assert rows, table
        for row in rows:
            assert_nothing_leaks(repr(row), port)
    log = gateway.stop()
    assert "Steerway listening" in log
    assert_nothing_leaks(log, port)
