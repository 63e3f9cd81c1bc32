"""Two hubs, as two workers would have, sharing the live feed through a real Redis.

Pub/sub channels are not scoped by the Redis database number, so each test uses a prefix of its
own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from telemetry.live import LiveHub, Viewer
from telemetry.live_filter import LiveFilter
from telemetry.live_relay import LiveRelay
from telemetry.live_summary import LiveTrace
from tests.telemetry import eventually, make_bundle


async def collect(viewer: Viewer, count: int, within: float = 5.0) -> list[LiveTrace]:
    """At least `count` traces from the viewer; AssertionError if they take longer."""
    deadline = time.monotonic() + within
    received: list[LiveTrace] = []
    while len(received) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"{len(received)} of {count} traces arrived in {within} s"
        received += await viewer.next_batch(left)
    return received


@pytest.fixture
async def prefix(redis_url: str) -> str:
    return f"steerway-test:{uuid.uuid4().hex}"


@pytest.fixture
async def relays(redis_url: str, prefix: str) -> AsyncIterator[list[LiveRelay]]:
    hubs = (LiveHub(worker="worker-a"), LiveHub(worker="worker-b"))
    started = [LiveRelay(hub, redis_url, channel_prefix=prefix) for hub in hubs]
    for hub, relay in zip(hubs, started, strict=True):
        hub.start()
        await relay.start()
    await eventually(lambda: all(relay.connected for relay in started), within=5)
    yield started
    for relay in started:
        await relay.close()


@pytest.fixture
def workers(relays: list[LiveRelay]) -> tuple[LiveHub, LiveHub]:
    return relays[0]._hub, relays[1]._hub


async def test_a_viewer_on_one_worker_sees_the_other_workers_requests(
    workers: tuple[LiveHub, LiveHub],
) -> None:
    a, b = workers
    assert not a.watched and not b.watched
    viewer = a.attach(LiveFilter())
    assert a.shared
    await eventually(lambda: b.watched, within=5)  # a's announcement reached b

    theirs, ours = make_bundle(), make_bundle()
    b.publish(theirs)
    a.publish(ours)
    seen = [(t.worker, t.trace_id) for t in await collect(viewer, 2)]
    assert sorted(seen) == sorted(
        [("worker-a", ours.trace.trace_id), ("worker-b", theirs.trace.trace_id)]
    )
    await asyncio.sleep(0.3)
    assert await viewer.next_batch(0) == []  # each trace once: a ignores its own publication

    a.detach(viewer)
    await eventually(lambda: not b.watched, within=5)  # told at once, not after the TTL


async def test_viewers_on_both_workers(workers: tuple[LiveHub, LiveHub]) -> None:
    a, b = workers
    on_a = a.attach(LiveFilter(workspace_id="ws-1"))
    on_b = b.attach(LiveFilter())
    await eventually(lambda: a._remote_watching and b._remote_watching, within=5)
    bundle = make_bundle(workspace_id="ws-1")
    other = make_bundle(workspace_id="ws-2")
    a.publish(bundle)
    a.publish(other)
    received = await collect(on_b, 2)
    assert {t.trace_id for t in received} == {bundle.trace.trace_id, other.trace.trace_id}
    assert [t.trace_id for t in await collect(on_a, 1)] == [bundle.trace.trace_id]
    a.detach(on_a)
    b.detach(on_b)


async def test_redis_away_loses_only_the_sharing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="steerway.telemetry.live")
    hub = LiveHub(worker="alone")
    hub.start()
    relay = LiveRelay(hub, "redis://127.0.0.1:1/0", channel_prefix="unused", timeout=0.2)
    await relay.start()
    viewer = hub.attach(LiveFilter())
    await asyncio.sleep(2.0)  # several reconnection attempts
    hub.publish(make_bundle())
    assert len(await collect(viewer, 1)) == 1  # local viewers still see local requests
    assert not relay.connected and not hub.shared
    assert caplog.text.count("Redis is unavailable") == 1
    hub.detach(viewer)
    await relay.close()


async def test_messages_that_are_not_summaries_are_ignored(
    relays: list[LiveRelay], redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = relays[0]._hub
    viewer = a.attach(LiveFilter())
    await eventually(lambda: relays[0].subscribed, within=5)
    client = redis.Redis.from_url(redis_url)
    try:
        await client.publish(f"{prefix}:traces", b"not json")
        await client.publish(f"{prefix}:watching", b'{"worker": 3}')
    finally:
        await client.aclose()
    a.publish(make_bundle())
    assert len(await collect(viewer, 1)) == 1  # still listening
    assert "not a live summary" in caplog.text
    assert "Redis is unavailable" not in caplog.text
    a.detach(viewer)
