"""A caller's `traceparent` through a real gateway, on SQLite and Postgres: every request keeps
its own trace, the caller's trace is its parent and continues upstream, and no workspace reads
another's rows through a shared trace id."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from telemetry.db import create_engine
from telemetry.writers import BatchWriter
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.telemetry import make_bundle

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _recorder_counters(gateway: GatewayProcess) -> dict[str, float]:
    """The recorder's counters: bundles dropped, write failures, and rows written per table."""
    found: dict[str, float] = {"dropped": 0.0, "failures": 0.0}
    text = httpx.get(f"{gateway.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "steerway_telemetry_dropped_total":
                found["dropped"] += sample.value
            elif sample.name == "steerway_telemetry_write_failures_total":
                found["failures"] += sample.value
            elif sample.name == "steerway_telemetry_rows_written_total":
                found[sample.labels["table"]] = sample.value
    return found


def _chat(
    gateway: GatewayProcess, mock: MockProcess, key: str, marker: str, *, stream: bool = False
) -> tuple[str, str]:
    """One chat through the openai SDK with the caller's traceparent; (our trace id, the
    traceparent the provider received)."""
    client = gateway.client(api_key=key)
    messages: Any = [{"role": "user", "content": f"please echo {marker}"}]
    headers = {"traceparent": TRACEPARENT}
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="mock-gpt", messages=messages, stream=True, extra_headers=headers
        ) as response:
            trace_id = response.headers["x-steerway-trace-id"]
            assert "data: [DONE]" in list(response.iter_lines())
    else:
        raw = client.chat.completions.with_raw_response.create(
            model="mock-gpt", messages=messages, extra_headers=headers
        )
        assert marker in (raw.parse().choices[0].message.content or "")
        trace_id = raw.headers["x-steerway-trace-id"]
    return trace_id, str(mock.last_request()["headers"]["traceparent"])


def _write(database: Database, bundles: list[Any]) -> None:
    async def write() -> None:
        engine = create_engine(database.url)
        try:
            await BatchWriter(engine).write(bundles)
        finally:
            await engine.dispose()

    asyncio.run(write())


@pytest.fixture
def traced(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> GatewayProcess:
    """A gateway of its own, so its recorder counters count only this test's requests."""
    return start_gateway(
        backend_database,
        mock_config(mock_provider),
        master_key="sk-master-" + secrets.token_hex(8),
    )


def test_requests_sharing_a_traceparent_keep_their_own_traces_and_workspaces(
    traced: GatewayProcess, mock_provider: MockProcess
) -> None:
    gateway, database = traced, traced.database
    with gateway.http() as master:
        spaces = {
            name: _created(
                master.post(
                    "/admin/api/workspaces", json={"slug": f"tp-{name}-{secrets.token_hex(4)}"}
                )
            )
            for name in ("a", "b")
        }
        app = {
            name: _created(
                master.post(
                    "/admin/api/keys", json={"name": f"app {name}", "workspace": space["slug"]}
                )
            )["key"]
            for name, space in spaces.items()
        }
        admin = {
            name: _created(
                master.post(
                    "/admin/api/keys",
                    json={"name": f"admin {name}", "workspace": space["slug"], "role": "master"},
                )
            )["key"]
            for name, space in spaces.items()
        }
    before = _recorder_counters(gateway)
    marker = {name: f"marker-{name}-{secrets.token_hex(6)}" for name in ("a", "b")}

    sent = [
        ("a", *_chat(gateway, mock_provider, app["a"], marker["a"])),
        ("b", *_chat(gateway, mock_provider, app["b"], marker["b"])),
        ("a", *_chat(gateway, mock_provider, app["a"], marker["a"], stream=True)),
    ]
    ours = [trace_id for _, trace_id, _ in sent]
    assert len(set(ours)) == 3 and CALLER_TRACE not in ours

    rows = database.wait_rows(
        "SELECT trace_id, workspace_id, parent_trace_id, parent_span_id FROM traces"
        " WHERE parent_trace_id = :t",
        count=3,
        t=CALLER_TRACE,
    )
    assert sorted((r["trace_id"], r["workspace_id"]) for r in rows) == sorted(
        (trace_id, spaces[name]["id"]) for name, trace_id, _ in sent
    )
    assert {(r["parent_trace_id"], r["parent_span_id"]) for r in rows} == {
        (CALLER_TRACE, CALLER_SPAN)
    }

    for name, trace_id, upstream in sent:
        version, upstream_trace, upstream_parent, flags = upstream.split("-")
        assert (version, upstream_trace, flags) == ("00", CALLER_TRACE, "01")
        (provider_span,) = database.wait_rows(
            "SELECT trace_id, workspace_id, name FROM spans WHERE span_id = :s", s=upstream_parent
        )
        assert provider_span == {
            "trace_id": trace_id,
            "workspace_id": spaces[name]["id"],
            "name": "provider.chat",
        }
        spans = database.wait_rows(
            "SELECT name, workspace_id, parent_span_id FROM spans WHERE trace_id = :t",
            count=5,
            t=trace_id,
        )
        assert {s["workspace_id"] for s in spans} == {spaces[name]["id"]}
        (root,) = [s for s in spans if s["name"] == "gateway.request"]
        assert root["parent_span_id"] == CALLER_SPAN
        (interaction,) = database.wait_rows(
            "SELECT workspace_id FROM ai_interactions WHERE trace_id = :t", t=trace_id
        )
        assert interaction["workspace_id"] == spaces[name]["id"]

    after = _recorder_counters(gateway)
    assert after["dropped"] == before["dropped"] == 0
    assert after["failures"] == before["failures"]
    assert after["traces"] - before.get("traces", 0.0) == 3
    assert after["ai_interactions"] - before.get("ai_interactions", 0.0) == 3

    # Defense in depth: rows of workspace A crafted to name B's trace id are never shown with it.
    (_, trace_b, _) = sent[1]
    crafted_marker = f"crafted-{secrets.token_hex(6)}"
    crafted = make_bundle(workspace_id=spaces["a"]["id"])
    for span in crafted.spans:
        span.trace_id = trace_b
    for decision in crafted.decisions:
        decision.trace_id = trace_b
    for attempt in crafted.interactions:
        attempt.trace_id = trace_b
    crafted.interactions[0].prompt = [{"role": "user", "content": crafted_marker}]
    _write(database, [crafted])
    crafted_ids = {
        *(s.span_id for s in crafted.spans),
        *(d.decision_id for d in crafted.decisions),
        *(i.interaction_id for i in crafted.interactions),
    }

    with gateway.http(admin["b"]) as http_b:
        for name, trace_id, _ in sent:
            response = http_b.get(f"/admin/api/traces/{trace_id}")
            if name == "a":
                assert response.status_code == 404, response.text
                assert marker["a"] not in response.text
        assert http_b.get(f"/admin/api/traces/{crafted.trace.trace_id}").status_code == 404
        own = http_b.get(f"/admin/api/traces/{trace_b}")
    assert own.status_code == 200, own.text
    with gateway.http() as master:
        as_operator = master.get(f"/admin/api/traces/{trace_b}")
    for response in (own, as_operator):
        body = response.json()
        children = [
            *body["spans"],
            *body["decisions"],
            *body["interactions"],
            *body["guardrail_violations"],
        ]
        assert {row["workspace_id"] for row in children} == {spaces["b"]["id"]}
        assert {row["trace_id"] for row in children} == {trace_b}
        shown = {
            *(s["span_id"] for s in body["spans"]),
            *(d["decision_id"] for d in body["decisions"]),
            *(i["interaction_id"] for i in body["interactions"]),
        }
        assert not crafted_ids & shown
        (interaction,) = body["interactions"]
        assert marker["b"] in str(interaction["prompt"])
        assert marker["a"] not in response.text
        assert crafted_marker not in response.text

    with gateway.http(admin["a"]) as http_a:
        assert http_a.get(f"/admin/api/traces/{trace_b}").status_code == 404
        assert http_a.get(f"/admin/api/traces/{sent[0][1]}").status_code == 200
