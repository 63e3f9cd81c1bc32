"""The Redis rate limiter when Redis is unreachable or silent: it follows the failure policy,
counts the error, and never hangs or raises into the request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis
from prometheus_client import REGISTRY

from gateway.limits.ratelimit import (
    LimitSubject,
    RateLimitPolicy,
    RedisRateLimiter,
    rate_limit_error,
)
from tests.ports import closed_port

T0 = 1_700_000_000.0
HANG_GUARD = 10.0
"""Seconds after which a call counts as hung; far above the limiter's own timeout."""

SUBJECTS = [
    LimitSubject("key", "k1", rpm=1, tpm=10, max_parallel=1),
    LimitSubject("workspace", "w1", rpm=1),
]


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A server that accepts connections and never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in connections:
        writer.close()
    server.close()
    await server.wait_closed()


def redis_errors() -> float:
    return (
        REGISTRY.get_sample_value("steerway_redis_errors_total", {"concern": "rate_limit"}) or 0.0
    )


async def within_guard(limiter: RedisRateLimiter, tokens: int = 5):
    return await asyncio.wait_for(limiter.acquire(SUBJECTS, tokens, T0), HANG_GUARD)


@pytest.mark.parametrize("where", ["closed port", "silent server"])
async def test_fail_open_admits_degraded_and_counts(
    where: str, silent_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = silent_redis if where == "silent server" else f"redis://127.0.0.1:{closed_port()}/0"
    limiter = RedisRateLimiter(url, RateLimitPolicy(on_redis_error="open", timeout=0.2))
    before = redis_errors()
    try:
        await asyncio.wait_for(limiter.start(), HANG_GUARD)
        decisions = [await within_guard(limiter) for _ in range(3)]
        assert all(decision.allowed and decision.degraded for decision in decisions)
        assert all(decision.headers() == {} for decision in decisions)
        assert all(rate_limit_error(decision) is None for decision in decisions)
        await asyncio.wait_for(limiter.release(decisions[0], actual_tokens=1), HANG_GUARD)
        assert redis_errors() >= before + 4
        assert limiter.redis_errors >= 4
        warnings = [r for r in caplog.records if r.name == "steerway.ratelimit"]
        assert len(warnings) == 1
    finally:
        await limiter.close()


@pytest.mark.parametrize("where", ["closed port", "silent server"])
async def test_fail_closed_refuses_as_unavailable(where: str, silent_redis: str) -> None:
    url = silent_redis if where == "silent server" else f"redis://127.0.0.1:{closed_port()}/0"
    limiter = RedisRateLimiter(url, RateLimitPolicy(on_redis_error="closed", timeout=0.2))
    before = redis_errors()
    try:
        decision = await within_guard(limiter)
        assert not decision.allowed
        assert decision.unavailable
        assert decision.refusal is None
        assert decision.lease is None
        error = rate_limit_error(decision)
        assert error is not None
        assert (error.status, error.code) == (503, "limits_unavailable")
        assert redis_errors() >= before + 1
    finally:
        await limiter.close()


async def test_fail_closed_changes_nothing_while_redis_answers(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url, RateLimitPolicy(on_redis_error="closed"))
    try:
        key = [LimitSubject("key", "k1", rpm=1)]
        assert (await limiter.acquire(key, 0, T0)).allowed
        refused = await limiter.acquire(key, 0, T0)
        assert not refused.allowed
        assert not refused.unavailable
        assert refused.retry_after == 60.0
    finally:
        await limiter.close()


async def test_every_redis_key_expires(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url, RateLimitPolicy(lease_ttl=30, key_prefix="rl-test"))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        decision = await limiter.acquire(SUBJECTS, 5, time.time())
        assert decision.allowed
        keys = sorted(str(key) for key in client.keys("rl-test:*"))
        assert keys == ["rl-test:b:key:k1", "rl-test:b:workspace:w1", "rl-test:p:key:k1"]
        ttls = {key: client.pttl(key) for key in keys}
        # A minute past the time the allowance is whole again; the lease set a minute past the TTL.
        assert 0 < ttls["rl-test:b:key:k1"] <= 120_000
        assert 0 < ttls["rl-test:b:workspace:w1"] <= 120_000
        assert 0 < ttls["rl-test:p:key:k1"] <= 90_000
        await limiter.release(decision, actual_tokens=8)
        assert not client.exists("rl-test:p:key:k1")  # the last lease gone, the set with it
        assert 0 < client.pttl("rl-test:b:key:k1") <= 120_000
    finally:
        client.close()
        await limiter.close()
