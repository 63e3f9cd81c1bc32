"""Requests refused before a key is accepted: counted in a metric, not stored one by one.

Thousands of requests with long random paths and random bad keys, without and with a valid key,
against a running gateway on SQLite and on Postgres: `/metrics` keeps its size, the database its
row counts, the process its memory and the log its length.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

HELLO = [{"role": "user", "content": "hello"}]
RECORD_TABLES = ("traces", "spans", "decisions", "ai_interactions", "guardrail_violations")
PATH_CHARS = string.ascii_letters + string.digits + "-._~"
FLOOD = 2400
WARM_UP = 240


class Attack:
    """The kinds of request the flood is made of, cycled in order."""

    def __init__(self, master_key: str, seed: int) -> None:
        self.master = master_key
        self.random = random.Random(seed)
        self.sent: dict[str, int] = {}

    def path(self) -> str:
        return "".join(self.random.choices(PATH_CHARS, k=self.random.randint(1000, 12000)))

    def bad_key(self) -> str:
        return "sk-" + "".join(self.random.choices(PATH_CHARS, k=self.random.randint(20, 200)))

    def request(self, index: int) -> tuple[str, str, dict[str, str], str | None]:
        """(method, path, headers, "route reason" it is counted under, if the proxy counts it)."""
        kind = index % 9
        master = {"Authorization": f"Bearer {self.master}"}
        if kind == 0:
            return "POST", f"/v1/{self.path()}", {}, "unmatched unknown_url"
        if kind == 1:
            headers = {"Authorization": f"Bearer {self.bad_key()}"}
            return "GET", f"/v1/{self.path()}", headers, "unmatched unknown_url"
        if kind == 2:
            return "POST", f"/v1/chat/{self.path()}", master, "unmatched unknown_url"
        if kind == 3:
            return (
                "DELETE",
                "/v1/chat/completions",
                master,
                "/v1/chat/completions method_not_allowed",
            )
        if kind == 4:
            headers = {"Authorization": f"Bearer {self.bad_key()}"}
            return "POST", "/v1/chat/completions", headers, "/v1/chat/completions invalid_api_key"
        if kind == 5:
            return "POST", "/v1/embeddings", {}, "/v1/embeddings missing_api_key"
        if kind == 6:
            headers = {"Authorization": f"Bearer {self.bad_key()}"}
            return "GET", "/v1/models", headers, "/v1/models invalid_api_key"
        if kind == 7:
            return "GET", f"/static-{self.path()}", {}, None  # outside /v1: the framework's 404
        headers = {"Authorization": f"Bearer {self.bad_key()}"}
        return "GET", f"/admin/api/traces/{self.path()[:64]}", headers, None

    async def send(self, base_url: str, count: int, start: int = 0) -> None:
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
            queue = list(range(start, start + count))

            async def worker() -> None:
                while queue:
                    method, path, headers, counted = self.request(queue.pop())
                    response = await http.request(
                        method, path, headers=headers, content=b"{}" if method == "POST" else None
                    )
                    assert 400 <= response.status_code < 500, (path[:80], response.text[:200])
                    assert response.json()["error"]["message"]
                    if counted is not None:
                        self.sent[counted] = self.sent.get(counted, 0) + 1

            await asyncio.gather(*(worker() for _ in range(8)))


_KNOWN_ROUTES = ("/v1/chat/completions", "/v1/embeddings", "/v1/models")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def row_counts(database: Database) -> dict[str, int]:
    return {
        table: int(database.rows(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])
        for table in RECORD_TABLES
    }


def served_and_recorded(gateway: GatewayProcess) -> str:
    """One served request; once its trace is stored, everything enqueued before it is too."""
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", json={"model": "mock-gpt", "messages": HELLO})
    assert response.status_code == 200, response.text
    trace_id = response.headers["x-steerway-trace-id"]
    rows = gateway.database.wait_rows("SELECT * FROM traces WHERE trace_id = :t", t=trace_id)
    assert len(rows) == 1
    return str(trace_id)


def unauthenticated_counts(text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "steerway_unauthenticated_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = sample.labels
                counts[f"{labels['route']} {labels['reason']}"] = sample.value
    return counts


def route_labels(text: str) -> set[str]:
    routes = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "route" in sample.labels:
                routes.add(sample.labels["route"])
    return routes


def test_random_paths_and_keys_leave_metrics_database_and_memory_bounded(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    master = "sk-flood-" + secrets.token_hex(8)
    gateway = start_gateway(backend_database, mock_config(mock_provider), master_key=master)
    attack = Attack(master, seed=13)
    asyncio.run(attack.send(gateway.url, WARM_UP))
    served_and_recorded(gateway)
    metrics_before = httpx.get(f"{gateway.url}/metrics").text
    rows_before = row_counts(gateway.database)
    rss_before = rss_bytes(gateway.process.pid)
    counted_before = unauthenticated_counts(metrics_before)
    sent_before = dict(attack.sent)

    asyncio.run(attack.send(gateway.url, FLOOD, start=WARM_UP))

    marker = served_and_recorded(gateway)
    metrics_after = httpx.get(f"{gateway.url}/metrics").text
    rss_after = rss_bytes(gateway.process.pid)
    rows_after = row_counts(gateway.database)
    # Only the marker request is new in the database (its trace, spans and interaction).
    assert rows_after["traces"] == rows_before["traces"] + 1
    assert rows_after["guardrail_violations"] == rows_before["guardrail_violations"]
    stored = gateway.database.rows("SELECT trace_id FROM traces WHERE api_key_id IS NULL")
    assert stored == []
    assert gateway.database.rows("SELECT trace_id FROM traces WHERE trace_id = :t", t=marker)
    # The exposition grows only by the digits of counters that went up.
    assert len(metrics_after) - len(metrics_before) < 1024, (
        len(metrics_before),
        len(metrics_after),
    )
    assert route_labels(metrics_after) <= {*_KNOWN_ROUTES, "unmatched"}
    counted_after = unauthenticated_counts(metrics_after)
    for label, sent in attack.sent.items():
        assert counted_after.get(label, 0) - counted_before.get(label, 0) == sent - (
            sent_before.get(label, 0)
        ), label
    growth = rss_after - rss_before
    assert growth < 12 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"
    log = gateway.stop()
    assert len(log.splitlines()) < 40, log[-4000:]


def test_a_configured_sample_of_refused_requests_is_stored(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    master = "sk-sample-" + secrets.token_hex(8)
    config: dict[str, Any] = mock_config(mock_provider)
    config["telemetry"] = {"unauthenticated_traces_per_minute": 3}
    gateway = start_gateway(backend_database, config, master_key=master)
    sent = []
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        for index in range(30):
            path = f"/v1/sampled-{index}-" + "x" * 5000
            response = http.post(path, headers={"Authorization": "Bearer sk-wrong"}, json={})
            assert response.status_code == 404
            assert "sampled-" in response.json()["error"]["message"]
            sent.append(response.headers["x-steerway-trace-id"])
    served_and_recorded(gateway)
    rows = gateway.database.rows("SELECT * FROM traces WHERE api_key_id IS NULL")
    assert len(rows) == 3
    assert {row["trace_id"] for row in rows} <= set(sent)
    for row in rows:
        assert (row["route"], row["http_status"], row["error_type"]) == (
            "unmatched",
            404,
            "unknown_url",
        )
        assert row["error_message"].startswith("Unknown request URL: POST /v1/sampled-")
        assert len(row["error_message"]) < 400
