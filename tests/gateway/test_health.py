"""Deployment health (circuit breaker) in-process, through a real Redis, and with Redis down.

The breaker semantics run against every backend. In-process and "Redis down" use an injected
clock; the Redis backend runs on real time with sub-second windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis

from gateway.upstream.health import (
    CooldownPolicy,
    DeploymentHealth,
    InProcessHealth,
    RedisHealth,
    create_health,
)
from tests.ports import closed_port

POLICY = CooldownPolicy(failures=3, window=0.3, period=0.3)
DEPLOYMENT = "openai/gpt-4o-mini#0"


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Breaker:
    health: DeploymentHealth
    clock: Callable[[], float]
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["in-process", "redis", "redis-down"])
async def breaker(request: pytest.FixtureRequest) -> AsyncIterator[Breaker]:
    fake = FakeClock()

    async def advance_the_fake_clock(seconds: float) -> None:
        fake.now += seconds

    if request.param == "redis":
        health: DeploymentHealth = RedisHealth(request.getfixturevalue("redis_url"))
        subject = Breaker(health, time.time, asyncio.sleep)
    elif request.param == "in-process":
        subject = Breaker(InProcessHealth(clock=fake), fake, advance_the_fake_clock)
    else:
        health = RedisHealth(f"redis://127.0.0.1:{closed_port()}/0", clock=fake)
        subject = Breaker(health, fake, advance_the_fake_clock)
    await subject.health.start()
    try:
        yield subject
    finally:
        await subject.health.close()


async def fail(health: DeploymentHealth, times: int, policy: CooldownPolicy = POLICY) -> list:
    return [await health.failure(DEPLOYMENT, policy) for _ in range(times)]


async def test_trips_after_the_threshold_and_not_before(breaker: Breaker) -> None:
    health = breaker.health
    assert await fail(health, 2) == [None, None]
    assert health.available(DEPLOYMENT)
    assert health.cooling_down() == {}

    before = breaker.clock()
    ends = await health.failure(DEPLOYMENT, POLICY)

    assert ends is not None
    assert before + POLICY.period - 0.01 <= ends <= breaker.clock() + POLICY.period + 0.01
    assert not health.available(DEPLOYMENT)
    assert health.cooling_down() == {DEPLOYMENT: pytest.approx(ends, abs=0.002)}
    assert health.available("another-deployment")


async def test_failures_during_a_cooldown_neither_trip_nor_extend_it(breaker: Breaker) -> None:
    health = breaker.health
    *_, ends = await fail(health, 3)
    assert ends is not None

    assert await fail(health, 5) == [None] * 5
    assert health.cooling_down()[DEPLOYMENT] == pytest.approx(ends, abs=0.002)


async def test_a_streak_older_than_the_window_is_forgotten(breaker: Breaker) -> None:
    health = breaker.health
    await fail(health, 2)
    await breaker.advance(POLICY.window + 0.1)

    assert await fail(health, 2) == [None, None]
    assert health.available(DEPLOYMENT)
    assert await health.failure(DEPLOYMENT, POLICY) is not None


async def test_the_deployment_is_available_again_when_the_cooldown_ends(breaker: Breaker) -> None:
    health = breaker.health
    ends = (await fail(health, 3))[-1]
    assert ends is not None
    assert not health.available(DEPLOYMENT, now=ends - 0.01)
    assert health.available(DEPLOYMENT, now=ends)

    await breaker.advance(POLICY.period + 0.05)

    assert health.available(DEPLOYMENT)
    assert health.cooling_down() == {}


async def test_a_failed_probe_trips_again_at_once(breaker: Breaker) -> None:
    health = breaker.health
    first = (await fail(health, 3))[-1]
    assert first is not None
    await breaker.advance(POLICY.period + 0.05)

    again = await health.failure(DEPLOYMENT, POLICY)

    assert again is not None and again > first
    assert not health.available(DEPLOYMENT)


async def test_a_successful_probe_closes_the_breaker(breaker: Breaker) -> None:
    health = breaker.health
    await fail(health, 3)
    await breaker.advance(POLICY.period + 0.05)

    await health.success(DEPLOYMENT)

    assert await fail(health, 2) == [None, None]
    assert health.available(DEPLOYMENT)


async def test_success_resets_the_streak(breaker: Breaker) -> None:
    health = breaker.health
    await fail(health, 2)
    await health.success(DEPLOYMENT)

    assert await fail(health, 2) == [None, None]
    assert health.available(DEPLOYMENT)
    assert await health.failure(DEPLOYMENT, POLICY) is not None


async def test_a_success_during_a_cooldown_does_not_cancel_the_half_open_probe(
    breaker: Breaker,
) -> None:
    health = breaker.health
    await fail(health, 3)
    await health.success(DEPLOYMENT)
    await breaker.advance(POLICY.period + 0.05)

    assert await health.failure(DEPLOYMENT, POLICY) is not None


async def test_a_single_failure_threshold_trips_on_the_first_failure(breaker: Breaker) -> None:
    policy = CooldownPolicy(failures=1, window=0.3, period=0.3)
    assert await breaker.health.failure(DEPLOYMENT, policy) is not None
    assert not breaker.health.available(DEPLOYMENT)


# Redis: two workers sharing one Redis.


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[tuple[RedisHealth, RedisHealth]]:
    first, second = RedisHealth(redis_url), RedisHealth(redis_url)
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def wait_until(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {within} s"
        await asyncio.sleep(0.02)


async def test_a_trip_in_one_worker_reaches_the_other(
    workers: tuple[RedisHealth, RedisHealth],
) -> None:
    first, second = workers
    policy = CooldownPolicy(failures=2, window=5.0, period=1.2)
    await first.failure(DEPLOYMENT, policy)
    ends = await first.failure(DEPLOYMENT, policy)
    assert ends is not None
    assert not first.available(DEPLOYMENT)

    await wait_until(lambda: not second.available(DEPLOYMENT), within=1.0)
    assert second.cooling_down() == {DEPLOYMENT: pytest.approx(ends, abs=0.002)}
    assert await second.failure(DEPLOYMENT, policy) is None

    await asyncio.sleep(max(0.0, ends - time.time()) + 0.05)
    assert second.available(DEPLOYMENT)
    assert await second.failure(DEPLOYMENT, policy) is not None, "the probe failed in any worker"


async def test_workers_count_one_shared_streak(
    workers: tuple[RedisHealth, RedisHealth],
) -> None:
    first, second = workers
    policy = CooldownPolicy(failures=3, window=5.0, period=5.0)
    await first.failure(DEPLOYMENT, policy)
    await second.failure(DEPLOYMENT, policy)

    assert await first.failure(DEPLOYMENT, policy) is not None


async def test_concurrent_failures_trip_exactly_once(
    workers: tuple[RedisHealth, RedisHealth],
) -> None:
    first, second = workers
    policy = CooldownPolicy(failures=3, window=5.0, period=5.0)

    results = await asyncio.gather(
        *(worker.failure(DEPLOYMENT, policy) for worker in (first, second) * 10)
    )

    assert sum(result is not None for result in results) == 1


async def test_shared_state_lives_under_documented_keys(redis_url: str) -> None:
    health = RedisHealth(redis_url)
    await health.start()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        policy = CooldownPolicy(failures=2, window=5.0, period=2.0)
        await health.failure(DEPLOYMENT, policy)
        assert client.get(f"steerway:health:{DEPLOYMENT}:failures") == "1"

        ends = await health.failure(DEPLOYMENT, policy)
        assert ends is not None
        cooldown_key = f"steerway:health:{DEPLOYMENT}:cooldown"
        assert int(client.get(cooldown_key) or 0) == round(ends * 1000)
        assert 0 < int(client.pttl(cooldown_key)) <= 2000
        assert 5000 < int(client.pttl(f"steerway:health:{DEPLOYMENT}:cooled")) <= 7000
        assert client.exists(f"steerway:health:{DEPLOYMENT}:failures") == 0
        assert client.zscore("steerway:health:cooling", DEPLOYMENT) == round(ends * 1000)
    finally:
        await health.close()
        client.close()


async def test_success_touches_redis_only_after_failures_this_worker_saw(
    workers: tuple[RedisHealth, RedisHealth],
    redis_url: str,
) -> None:
    first, second = workers
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    counter = f"steerway:health:{DEPLOYMENT}:failures"
    try:
        await first.failure(DEPLOYMENT, POLICY)

        await second.success(DEPLOYMENT)
        assert client.get(counter) == "1"

        await first.success(DEPLOYMENT)
        assert client.exists(counter) == 0
    finally:
        client.close()


# Redis unreachable, and coming back.


class LoopbackRelay:
    """A TCP relay to Redis that the test can take down and bring back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self._writers.update({writer, upstream_writer})

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))
        self._writers.difference_update({writer, upstream_writer})


async def test_an_outage_degrades_to_the_local_view_and_recovers(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs
    relay = LoopbackRelay(int(target.get("port", 6379)))
    await relay.up()
    db = target.get("db", 0)
    health = RedisHealth(f"redis://127.0.0.1:{relay.port}/{db}", refresh_interval=0.05)
    policy = CooldownPolicy(failures=2, window=5.0, period=5.0)
    await health.start()
    try:
        assert await health.failure(DEPLOYMENT, policy) is None
        assert not health.degraded

        await relay.down()
        with caplog.at_level(logging.WARNING, logger="steerway.health"):
            results = [await health.failure(f"other-{i}", policy) for i in range(2)]
            results += [await health.failure("other-0", policy)]
            await health.success("other-1")
        assert results[:2] == [None, None] and results[2] is not None
        assert health.degraded
        assert health.redis_errors >= 1
        assert not health.available("other-0")
        unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(unreachable) == 1

        await relay.up()
        await wait_until(lambda: not health.degraded, within=2.0)
        assert await health.failure(DEPLOYMENT, policy) is not None, "the shared streak resumed"
    finally:
        await health.close()
        with contextlib.suppress(AssertionError):
            await relay.down()


# Construction and input.


def test_create_health_picks_the_backend() -> None:
    assert isinstance(create_health(None), InProcessHealth)
    assert isinstance(create_health(""), InProcessHealth)
    assert isinstance(create_health("redis://127.0.0.1:6379/15"), RedisHealth)


def test_a_malformed_redis_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid Redis URL for deployment health"):
        create_health("http://user:secret@example.invalid/0")


@pytest.mark.parametrize(
    "fields",
    [
        {"failures": 0},
        {"failures": 2.5},
        {"failures": True},
        {"window": 0},
        {"window": -1.0},
        {"period": float("nan")},
        {"period": "30"},
    ],
)
def test_an_invalid_policy_is_a_clear_error(fields: dict) -> None:
    with pytest.raises(ValueError, match="cooldown"):
        CooldownPolicy(**fields)


async def test_in_process_available_reads_the_injected_clock() -> None:
    clock = FakeClock()
    health = InProcessHealth(clock=clock)
    ends = (await fail(health, 3))[-1]
    assert ends == clock.now + POLICY.period

    assert not health.available(DEPLOYMENT)
    clock.now = ends
    assert health.available(DEPLOYMENT)
