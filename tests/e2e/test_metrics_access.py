"""Who may read `/metrics`: the serving port by default, a bearer token, or a listener of its own.

Each choice is tried over real HTTP against `steerway serve`, with one and with two workers.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, free_port, mock_config

HELLO = [{"role": "user", "content": "hi"}]
ERROR_FIELDS = {"message", "type", "param", "code"}


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == ERROR_FIELDS
    return dict(error)


def served_requests(text: str) -> float:
    """`steerway_requests_total` of successful chat completions, parsed as Prometheus does."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "steerway_requests_total" and labels["status_code"] == "200":
                total += sample.value if labels["route"] == "/v1/chat/completions" else 0
    return total


def loop_lag_wakeups(text: str) -> float:
    """Wake-ups of the event-loop lag probe, with its worst-lag gauge present beside them."""
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("steerway_event_loop_lag")
    }
    assert samples["steerway_event_loop_lag_max_seconds"] >= 0.0
    return samples["steerway_event_loop_lag_seconds_count"]


def chat(gateway: GatewayProcess, count: int = 1) -> None:
    for _ in range(count):
        # A new connection each time, so that with several workers each gets some.
        gateway.client(http_client=httpx.Client()).chat.completions.create(
            model="mock-gpt", messages=HELLO
        )


def test_by_default_metrics_are_on_the_serving_port(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    gateway = start_gateway(
        backend_database, mock_config(mock_provider), master_key="sk-m-" + secrets.token_hex(8)
    )
    chat(gateway)
    response = httpx.get(f"{gateway.url}/metrics")
    assert response.status_code == 200
    assert served_requests(response.text) == 1
    assert loop_lag_wakeups(response.text) > 0


def test_a_bearer_token_guards_metrics(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    token = "metrics-" + secrets.token_hex(16)
    config = mock_config(mock_provider, metrics={"bearer_token": "${STEERWAY_METRICS_TOKEN}"})
    gateway = start_gateway(
        backend_database,
        config,
        master_key="sk-m-" + secrets.token_hex(8),
        env={"STEERWAY_METRICS_TOKEN": token},
    )
    chat(gateway)
    refusals = [
        httpx.get(f"{gateway.url}/metrics"),
        httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {token}x"}),
        httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {token[:-1]}"}),
        httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Basic {token}"}),
        httpx.get(f"{gateway.url}/metrics", headers={"Authorization": token}),
        # The gateway's own master key is not the metrics token.
        httpx.get(
            f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {gateway.master_key}"}
        ),
    ]
    for refused in refusals:
        assert error_of(refused, 401)["code"] == "invalid_metrics_token"
        assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
        assert token not in refused.text and "steerway_requests_total" not in refused.text
    allowed = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200
    assert served_requests(allowed.text) == 1
    lowercase = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"bearer {token}"})
    assert lowercase.status_code == 200
    log = gateway.stop()
    assert token not in log and token[8:24] not in log


@pytest.mark.parametrize("workers", [1, 2])
def test_a_separate_listener_serves_only_metrics(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
    workers: int,
) -> None:
    port = free_port()
    config = mock_config(mock_provider, metrics={"listen": f"127.0.0.1:{port}"})
    gateway = start_gateway(
        backend_database, config, master_key="sk-m-" + secrets.token_hex(8), workers=workers
    )
    listener = f"http://127.0.0.1:{port}"
    requests = 20
    chat(gateway, requests)

    assert error_of(httpx.get(f"{gateway.url}/metrics"), 404)
    # Every scrape, whichever worker takes it, sees what all workers counted.
    for _ in range(6):
        with httpx.Client() as fresh:
            scraped = fresh.get(f"{listener}/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert served_requests(scraped.text) == requests
        assert loop_lag_wakeups(scraped.text) > 0
    head = httpx.head(f"{listener}/metrics")
    assert head.status_code == 200 and head.content == b""
    assert error_of(httpx.get(f"{listener}/v1/models"), 404)["code"] == "unknown_url"
    assert error_of(httpx.get(f"{listener}/healthz"), 404)["code"] == "unknown_url"
    assert error_of(httpx.post(f"{listener}/metrics", content=b"x"), 405)
    garbage = socket.create_connection(("127.0.0.1", port), timeout=5)
    garbage.sendall(b"\x16\x03\x01 not http\r\n\r\n")
    assert garbage.recv(100) == b""  # closed without an answer
    garbage.close()
    assert httpx.get(f"{listener}/metrics").status_code == 200


def test_the_listener_takes_the_token_and_drops_slow_peers(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    port = free_port()
    token = "metrics-" + secrets.token_hex(16)
    config = mock_config(
        mock_provider, metrics={"listen": f"127.0.0.1:{port}", "bearer_token": token}
    )
    gateway = start_gateway(backend_database, config, master_key="sk-m-" + secrets.token_hex(8))
    listener = f"http://127.0.0.1:{port}/metrics"
    assert error_of(httpx.get(listener), 401)["code"] == "invalid_metrics_token"
    assert httpx.get(listener, headers={"Authorization": f"Bearer {token}"}).status_code == 200

    # Peers that never finish their headers, more than the listener takes at once: the serving
    # port is not affected, and each is closed once the header timeout passes.
    slow = []
    for _ in range(40):
        peer = socket.create_connection(("127.0.0.1", port), timeout=30)
        peer.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        slow.append(peer)
    assert httpx.get(f"{gateway.url}/healthz").status_code == 200
    chat(gateway)
    for peer in slow:  # a peer left open would time out its recv (30 s) and fail the test
        with contextlib.suppress(ConnectionResetError):  # refused at once: past the cap
            assert peer.recv(100) == b""
        peer.close()
    assert httpx.get(listener, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_listener_address_in_use_stops_the_start_with_its_name(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = mock_config(mock_provider, metrics={"listen": f"127.0.0.1:{port}"})
        with pytest.raises(RuntimeError) as caught:
            start_gateway(backend_database, config, master_key="sk-m-" + secrets.token_hex(8))
    assert f"metrics.listen 127.0.0.1:{port}: cannot listen" in str(caught.value)
