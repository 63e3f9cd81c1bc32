"""The live feed end to end: `GET /admin/api/live` read over httpx while requests are made with
the openai SDK, on SQLite and Postgres, one gateway per backend."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from telemetry.schema import money_from_sql
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.live_stream import LiveStream

HELLO = [{"role": "user", "content": "hi"}]
VIEWER_QUEUE = 8
MAX_VIEWERS = 6


@dataclass(frozen=True)
class Tenants:
    workspace_id: str
    workspace_admin: str
    workspace_user: str
    default_user: str


@pytest.fixture(scope="module")
def live_gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = mock_config(
        mock_provider,
        live={"viewer_queue": VIEWER_QUEUE, "rows_per_second": 0, "max_viewers": MAX_VIEWERS},
    )
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("live"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        log = process.stop()
        assert "Traceback" not in log, log[-4000:]


@pytest.fixture(scope="module")
def tenants(live_gateway: GatewayProcess) -> Tenants:
    with live_gateway.http() as admin:
        workspace = admin.post("/admin/api/workspaces", json={"slug": "live-a"}).json()

        def key(name: str, **fields: Any) -> str:
            created = admin.post("/admin/api/keys", json={"name": name, **fields})
            assert created.status_code == 201, created.text
            return str(created.json()["key"])

        return Tenants(
            workspace_id=workspace["id"],
            workspace_admin=key("live-a-admin", workspace="live-a", role="master"),
            workspace_user=key("live-a-user", workspace="live-a"),
            default_user=key("default-user"),
        )


def _chat(gateway: GatewayProcess, key: str, model: str = "mock-gpt", **extra: Any) -> str:
    """Make a chat request with the openai SDK; its trace id."""
    raw = gateway.client(key).chat.completions.with_raw_response.create(
        model=model, messages=HELLO, **extra
    )
    return str(raw.headers["x-steerway-trace-id"])


def _metric(gateway: GatewayProcess, name: str) -> float:
    for line in httpx.get(f"{gateway.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def _eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_viewer_receives_requests_made_while_it_watches(
    live_gateway: GatewayProcess, tenants: Tenants
) -> None:
    with LiveStream(live_gateway.url, live_gateway.master_key or "") as viewer:
        assert viewer.status == 200 and viewer.headers is not None
        assert viewer.headers["content-type"].startswith("text/event-stream")
        assert viewer.headers["cache-control"] == "no-store"
        hello = viewer.hello
        assert viewer.retry == 3000
        assert hello["workspace"] is None
        assert (hello["shared"], hello["complete"]) == (False, True)  # one worker, no Redis
        assert hello["viewer_queue"] == VIEWER_QUEUE and hello["filters"] == {}

        raw = live_gateway.client(tenants.default_user).chat.completions.with_raw_response.create(
            model="mock-gpt", messages=HELLO, user="eu-7"
        )
        completion = raw.parse()
        trace_id = raw.headers["x-steerway-trace-id"]
        event = viewer.trace(trace_id)
        assert event.id == trace_id
        trace = event.data
        assert trace["request_id"] == raw.headers["x-request-id"]
        assert trace["key_name"] == "default-user" and trace["end_user"] == "eu-7"
        assert trace["workspace_id"] == "0" * 32
        assert (trace["requested_model"], trace["served_model"]) == ("mock-gpt", "mock-gpt")
        assert (trace["provider"], trace["deployment"]) == ("mock", "mock/mock-gpt")
        assert (trace["status"], trace["http_status"], trace["error_type"]) == ("ok", 200, None)
        assert completion.usage is not None
        assert trace["prompt_tokens"] == completion.usage.prompt_tokens
        assert trace["completion_tokens"] == completion.usage.completion_tokens
        assert trace["total_tokens"] == completion.usage.total_tokens
        assert trace["stream"] is False and trace["cache_hit"] is False
        assert trace["attempts"] == 1 and trace["duration_ms"] > 0
        stored = live_gateway.database.wait_rows(
            "SELECT cost_usd FROM ai_interactions WHERE trace_id = :t", t=trace_id
        )
        dialect = "sqlite" if live_gateway.database.url.startswith("sqlite") else "postgresql"
        assert Decimal(trace["cost_usd"]) == money_from_sql(stored[0]["cost_usd"], dialect)
        assert Decimal(trace["cost_usd"]) > 0

        streamed = live_gateway.client(
            tenants.default_user
        ).chat.completions.with_raw_response.create(model="mock-gpt", messages=HELLO, stream=True)
        for _ in streamed.parse():
            pass
        trace = viewer.trace(streamed.headers["x-steerway-trace-id"]).data
        assert trace["stream"] is True and trace["ttft_ms"] > 0

        stats = viewer.next("stats").data
        assert stats["requests"] >= 2 and stats["p95_ms"] > 0 and stats["error_rate"] == 0


def test_a_workspace_admin_sees_its_own_workspace_only(
    live_gateway: GatewayProcess, tenants: Tenants
) -> None:
    with (
        LiveStream(live_gateway.url, tenants.workspace_admin) as theirs,
        LiveStream(live_gateway.url, live_gateway.master_key or "") as everyone,
    ):
        assert theirs.hello["workspace"] == tenants.workspace_id
        everyone.next("hello")
        own = _chat(live_gateway, tenants.workspace_user)
        other = _chat(live_gateway, tenants.default_user)
        everyone.trace(own)
        everyone.trace(other)
        seen = theirs.traces()
        assert [trace["trace_id"] for trace in seen] == [own]
        assert seen[0]["key_name"] == "live-a-user"

    refused = LiveStream(live_gateway.url, tenants.workspace_admin, {"workspace": "default"})
    assert refused.status == 404 and b"workspace_not_found" in refused.body
    user = LiveStream(live_gateway.url, tenants.workspace_user)
    assert user.status == 403
    anonymous = LiveStream(live_gateway.url, "sk-not-a-key")
    assert anonymous.status == 401


def test_filters(live_gateway: GatewayProcess, tenants: Tenants) -> None:
    key = live_gateway.master_key or ""
    filtered = {
        "embeddings": {"model": "mock-embedding"},
        "denied": {"status": "denied"},
        "by_key": {"key": "live-a-user", "min_duration_ms": "0"},
        "workspace": {"workspace": "live-a", "status": "ok,error"},
        "slow": {"min_duration_ms": "600000"},
    }
    viewers = {name: LiveStream(live_gateway.url, key, params) for name, params in filtered.items()}
    try:
        with LiveStream(live_gateway.url, key) as everything:
            everything.next("hello")
            for viewer in viewers.values():
                viewer.next("hello")
            chat = _chat(live_gateway, tenants.default_user)
            embedding = live_gateway.client(
                tenants.default_user
            ).embeddings.with_raw_response.create(model="mock-embedding", input="hi")
            with pytest.raises(openai.NotFoundError) as unknown:
                _chat(live_gateway, tenants.default_user, model="no-such-model")
            denied = unknown.value.response.headers["x-steerway-trace-id"]
            theirs = _chat(live_gateway, tenants.workspace_user)
            for trace_id in (chat, embedding.headers["x-steerway-trace-id"], denied, theirs):
                everything.trace(trace_id)
        received = {
            name: [trace["trace_id"] for trace in viewer.traces()]
            for name, viewer in viewers.items()
        }
    finally:
        for viewer in viewers.values():
            viewer.close()
    assert received == {
        "embeddings": [embedding.headers["x-steerway-trace-id"]],
        "denied": [denied],
        "by_key": [theirs],
        "workspace": [theirs],
        "slow": [],
    }


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"status": "bogus"}, "status"),
        ({"http_status": "abc"}, "http_status"),
        ({"http_status": "99"}, "http_status"),
        ({"min_duration_ms": "nan"}, "min_duration_ms"),
        ({"cache_hit": "maybe"}, "cache_hit"),
        ({"limit": "0"}, "limit"),
        ({"seconds": "-1"}, "seconds"),
        ({"modle": "mock-gpt"}, "modle"),
        ({"key": "no-such-key"}, "key"),
        ({"model": "x" * 300}, "model"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    live_gateway: GatewayProcess, params: dict[str, str], param: str
) -> None:
    with live_gateway.http() as admin:
        response = admin.get("/admin/api/live", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_a_worker_takes_so_many_viewers(live_gateway: GatewayProcess) -> None:
    key = live_gateway.master_key or ""
    _eventually(lambda: _metric(live_gateway, "steerway_live_viewers") == 0)
    viewers = [LiveStream(live_gateway.url, key) for _ in range(MAX_VIEWERS)]
    try:
        for viewer in viewers:
            assert viewer.hello["worker"]
        one_more = LiveStream(live_gateway.url, key)
        assert one_more.status == 503 and one_more.headers is not None
        assert one_more.headers["retry-after"] == "5"
        assert b'"code":"too_many_viewers"' in one_more.body
    finally:
        for viewer in viewers:
            viewer.close()
    _eventually(lambda: _metric(live_gateway, "steerway_live_viewers") == 0)
    with LiveStream(live_gateway.url, key) as again:
        assert again.status == 200


def test_the_stream_ends_after_its_limit_or_time(
    live_gateway: GatewayProcess, tenants: Tenants
) -> None:
    key = live_gateway.master_key or ""
    with LiveStream(live_gateway.url, key, {"limit": "1"}) as one:
        one.next("hello")
        first = _chat(live_gateway, tenants.default_user)
        _chat(live_gateway, tenants.default_user)
        assert one.next("trace").data["trace_id"] == first
        assert one.next().data == {"reason": "limit"}
        assert one.finished.wait(5)
    with LiveStream(live_gateway.url, key, {"seconds": "0"}) as brief:
        brief.next("hello")
        assert brief.next().data == {"reason": "seconds"}
        assert brief.finished.wait(5)


def test_a_viewer_that_stops_reading_is_dropped(
    live_gateway: GatewayProcess, tenants: Tenants
) -> None:
    _eventually(lambda: _metric(live_gateway, "steerway_live_viewers") == 0)
    dropped = _metric(live_gateway, "steerway_live_viewers_dropped_total")
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stuck.connect(("127.0.0.1", live_gateway.port))
        stuck.sendall(
            f"GET /admin/api/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {live_gateway.master_key}\r\n\r\n".encode()
        )
        _eventually(lambda: _metric(live_gateway, "steerway_live_viewers") == 1)
        served = 0
        with httpx.Client(
            base_url=live_gateway.url,
            headers={"Authorization": f"Bearer {tenants.default_user}"},
            timeout=10,
        ) as client:
            body = {"model": "mock-gpt", "messages": HELLO}
            for _ in range(40):
                for _ in range(50):
                    served += client.post("/v1/chat/completions", json=body).status_code == 200
                if _metric(live_gateway, "steerway_live_viewers") == 0:
                    break
        # The hub let go of it while its connection is still open and unread.
        assert _metric(live_gateway, "steerway_live_viewers") == 0
        assert _metric(live_gateway, "steerway_live_viewers_dropped_total") == dropped + 1
        assert served > VIEWER_QUEUE
        # With nobody watching, requests go on without being summarised.
        summarised = _metric(live_gateway, "steerway_live_summaries_total")
        for _ in range(5):
            _chat(live_gateway, tenants.default_user)
        assert _metric(live_gateway, "steerway_live_summaries_total") == summarised
    finally:
        stuck.close()


def test_nothing_is_summarised_while_nobody_watches(
    live_gateway: GatewayProcess, tenants: Tenants
) -> None:
    _eventually(lambda: _metric(live_gateway, "steerway_live_viewers") == 0)
    before = _metric(live_gateway, "steerway_live_summaries_total")
    for _ in range(3):
        _chat(live_gateway, tenants.default_user)
    assert _metric(live_gateway, "steerway_live_summaries_total") == before

    with LiveStream(live_gateway.url, live_gateway.master_key or "") as viewer:
        viewer.next("hello")
        viewer.trace(_chat(live_gateway, tenants.default_user))
    assert _metric(live_gateway, "steerway_live_summaries_total") == before + 1

    _eventually(lambda: _metric(live_gateway, "steerway_live_viewers") == 0)
    for _ in range(3):
        _chat(live_gateway, tenants.default_user)
    assert _metric(live_gateway, "steerway_live_summaries_total") == before + 1
