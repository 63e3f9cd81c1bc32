"""The live feed with two workers sharing it through Redis: a viewer connected to one worker
receives the requests the other serves, and nothing is summarised once nobody watches."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

import migrations
from tests.e2e.conftest import (
    Database,
    GatewayProcess,
    MockProcess,
    _create_postgres,
    _drop_postgres,
    mock_config,
)
from tests.e2e.live_stream import LiveStream

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[Database]:
    url = _create_postgres()
    try:
        migrations.upgrade(url)
        yield Database(url)
    finally:
        _drop_postgres(url)


def _requests(gateway: GatewayProcess) -> Callable[[], str]:
    """A chat request with the openai SDK, each on a connection of its own (so the kernel may
    hand it to either worker); its trace id."""
    client = gateway.client(
        http_client=httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
    )

    def request() -> str:
        raw = client.chat.completions.with_raw_response.create(model="mock-gpt", messages=HELLO)
        return str(raw.headers["x-steerway-trace-id"])

    return request


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


def test_a_viewer_receives_what_the_other_worker_serves(
    postgres_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
    redis_url: str,
) -> None:
    gateway = start_gateway(
        postgres_database,
        mock_config(mock_provider, live={"channel_prefix": f"steerway-test:{uuid.uuid4().hex}"}),
        master_key="sk-live-workers-" + secrets.token_hex(8),
        workers=2,
        env={"STEERWAY_REDIS_URL": redis_url},
    )
    request = _requests(gateway)
    viewer = LiveStream(gateway.url, gateway.master_key or "")
    deadline = time.monotonic() + 10
    while not viewer.hello["shared"]:  # a worker still starting has not reached Redis yet
        viewer.close()
        assert time.monotonic() < deadline, "the live feed is not shared through Redis"
        time.sleep(0.2)
        viewer = LiveStream(gateway.url, gateway.master_key or "")
    with viewer:
        assert viewer.hello["complete"] is True
        here = viewer.hello["worker"]

        # Until the other worker has heard that someone watches, what it serves is not shown.
        other = None
        deadline = time.monotonic() + 20
        while other is None:
            assert time.monotonic() < deadline, "nothing the other worker served was shown"
            try:
                event = viewer.trace(request(), within=1.0)
            except AssertionError:
                continue  # served by the other worker before it heard
            if event.data["worker"] != here:
                other = event.data["worker"]

        # From then on every request shows up once, whichever worker served it.
        made = [request() for _ in range(20)]
        shown = [event.data for event in viewer.each_trace(made, within=20.0)]
        assert [trace["trace_id"] for trace in shown] == made
        assert {trace["worker"] for trace in shown} <= {here, other}
        assert viewer.traces() == []  # no duplicates followed

    _eventually(lambda: _metric(gateway, "steerway_live_viewers") == 0)
    time.sleep(0.5)  # the last viewer's goodbye reaches the other worker
    summarised = _metric(gateway, "steerway_live_summaries_total")
    for _ in range(10):
        request()
    assert _metric(gateway, "steerway_live_summaries_total") == summarised
    log = gateway.stop()
    assert "Traceback" not in log and "Redis is unavailable" not in log, log[-3000:]
