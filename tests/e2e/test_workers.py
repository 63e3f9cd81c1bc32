"""Several workers: metrics summed across processes, every worker recording."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

HELLO = [{"role": "user", "content": "hi"}]


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_two_workers_share_metrics_and_record_everything(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    gateway = start_gateway(
        backend_database,
        mock_config(mock_provider),
        master_key="sk-workers-" + secrets.token_hex(8),
        workers=2,
    )
    trace_ids = set()
    requests = 40
    for _ in range(requests):
        # A new connection each time, so the kernel spreads requests over both workers.
        raw = gateway.client(http_client=httpx.Client()).chat.completions.with_raw_response.create(
            model="mock-gpt", messages=HELLO
        )
        trace_ids.add(raw.headers["x-steerway-trace-id"])
    assert len(trace_ids) == requests

    text = httpx.get(f"{gateway.url}/metrics").text
    served = _counter(
        text,
        "steerway_requests_total",
        route="/v1/chat/completions",
        model="mock-gpt",
        status_code="200",
    )
    assert served == requests
    assert _counter(text, "gen_ai_client_operation_duration_seconds_count") == requests

    placeholders = ",".join(f"'{t}'" for t in trace_ids)
    rows = gateway.database.wait_rows(
        f"SELECT trace_id FROM ai_interactions WHERE trace_id IN ({placeholders})",
        count=requests,
    )
    assert len(rows) == requests
