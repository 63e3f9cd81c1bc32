"""Console sessions (database on SQLite and Postgres, and Redis) and sign-in throttling
(in-process and Redis), with a clock the tests move."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
import redis
import sqlalchemy as sa

from admin_ui.audit import CLI_ACTOR
from admin_ui.sessions import DatabaseSessions, RedisSessions, SessionPolicy, SessionStore
from admin_ui.throttle import MemoryThrottle, RedisThrottle, SigninThrottle, ThrottleLimits
from admin_ui.users import UserStore
from gateway.errors import GatewayError
from telemetry.db import create_engine
from telemetry.schema import console_sessions
from tests.ports import closed_port

T = TypeVar("T")
POLICY = SessionPolicy(idle=timedelta(minutes=30), lifetime=timedelta(hours=8))
LIMITS = ThrottleLimits(per_account=3, per_address=5, window_seconds=900)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()

    def advance(self, **amount: float) -> None:
        self.now += timedelta(**amount)


async def exercise_sessions(store: SessionStore, clock: Clock, user_id: str) -> None:
    token, session = await store.create(user_id, address="10.1.2.3", user_agent="tests/1.0")
    assert session.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert len(token) >= 43 and len(session.csrf_token) >= 43
    assert session.expires_at == clock.now + POLICY.lifetime
    found = await store.find(token)
    assert found is not None
    assert (found.user_id, found.csrf_token) == (user_id, session.csrf_token)
    assert await store.find(token + "x") is None
    assert await store.find("") is None
    assert await store.find("t" * 1000) is None

    # Used every 20 minutes, a session outlives the 30-minute idle time...
    for _ in range(4):
        clock.advance(minutes=20)
        assert await store.find(token) is not None
    # ...and then 31 idle minutes end it.
    clock.advance(minutes=31)
    assert await store.find(token) is None
    assert await store.find(token) is None

    # However busy, a session ends at its absolute expiry.
    token, _ = await store.create(user_id, address=None, user_agent=None)
    for _ in range(8 * 4):
        assert await store.find(token) is not None
        clock.advance(minutes=15)
    assert await store.find(token) is None

    token, _ = await store.create(user_id, address=None, user_agent=None)
    other, _ = await store.create(user_id, address=None, user_agent=None)
    await store.delete(token)
    assert await store.find(token) is None
    assert await store.find(other) is not None


def test_database_sessions_expire_when_idle_or_old_and_end_at_sign_out(
    migrated_database_url: str,
) -> None:

    async def run() -> None:
        engine = create_engine(migrated_database_url)
        try:
            user = await UserStore(engine).create(
                email="s@example.com", name="S", is_operator=True, actor=CLI_ACTOR
            )
            clock = Clock()
            await exercise_sessions(DatabaseSessions(engine, POLICY, clock), clock, user.user_id)
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.select(console_sessions))).all()
            # Only hashes are stored; sessions that ended were cleared at a later sign-in.
            assert all(len(row.token_hash) == 64 for row in rows)
            assert len(rows) == 1
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_redis_sessions_expire_when_idle_or_old_and_end_at_sign_out(redis_url: str) -> None:
    async def run() -> None:
        clock = Clock()
        store = RedisSessions(redis_url, POLICY, clock, prefix="test:console:session:")
        await store.start()
        try:
            await exercise_sessions(store, clock, "u" * 32)
        finally:
            await store.close()

    asyncio.run(run())
    client = redis.Redis.from_url(redis_url)
    try:
        keys = client.keys("test:console:session:*")
        assert len(keys) == 1  # the one session still live
        ttl = client.pttl(keys[0])
        assert 0 < ttl <= POLICY.idle.total_seconds() * 1000 + 1
        stored = client.hgetall(keys[0])
        assert set(stored) >= {b"user_id", b"csrf_token", b"expires_at", b"last_seen_at"}
    finally:
        client.close()


async def exercise_throttle(throttle: SigninThrottle, advance: Callable[[float], None]) -> None:
    assert await throttle.retry_after("ada@example.com", "10.0.0.1") is None
    for _ in range(3):
        await throttle.failed("Ada@Example.com", "10.0.0.1")
        advance(60)
    wait = await throttle.retry_after("ada@example.com ", "10.0.0.9")
    assert wait is not None and wait == pytest.approx(900 - 180, abs=1)
    # Another account from the same address may still try, until the address's limit.
    assert await throttle.retry_after("bob@example.com", "10.0.0.1") is None
    await throttle.failed("bob@example.com", "10.0.0.1")
    await throttle.failed("carol@example.com", "10.0.0.1")
    wait = await throttle.retry_after("dave@example.com", "10.0.0.1")
    assert wait is not None and wait == pytest.approx(900 - 180, abs=1)
    assert await throttle.retry_after("dave@example.com", "10.0.0.2") is None
    # The oldest failure leaves the window: one more try each.
    advance(900 - 180 + 1)
    assert await throttle.retry_after("ada@example.com", "10.0.0.1") is None
    await throttle.failed("ada@example.com", "10.0.0.7")
    assert await throttle.retry_after("ada@example.com", "10.0.0.8") is not None
    # Success clears the account, not the address.
    await throttle.succeeded("ADA@example.com")
    assert await throttle.retry_after("ada@example.com", "10.0.0.8") is None
    for account in ("e@x.io", "f@x.io", "g@x.io", "h@x.io", "i@x.io"):
        await throttle.failed(account, "10.0.0.5")
    await throttle.succeeded("i@x.io")
    assert await throttle.retry_after("i@x.io", "10.0.0.5") is not None


def test_memory_throttle_counts_failures_per_account_and_address() -> None:
    now = [1000.0]
    throttle = MemoryThrottle(LIMITS, clock=lambda: now[0])

    def advance(seconds: float) -> None:
        now[0] += seconds

    asyncio.run(exercise_throttle(throttle, advance))


def test_redis_throttle_counts_failures_per_account_and_address(redis_url: str) -> None:
    now = [1_900_000_000.0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    async def run() -> None:
        throttle = RedisThrottle(redis_url, LIMITS, clock=lambda: now[0], prefix="test:signin:")
        await throttle.start()
        try:
            await exercise_throttle(throttle, advance)
        finally:
            await throttle.close()

    asyncio.run(run())
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key.decode() for key in client.keys("test:signin:*")]
        assert keys and not any("@" in key for key in keys)  # accounts are kept hashed
        assert all(0 < client.ttl(key) <= 901 for key in keys)
    finally:
        client.close()


def test_an_unreachable_redis_is_a_503_not_a_sign_in_let_through() -> None:
    nowhere = f"redis://127.0.0.1:{closed_port()}/0"

    async def run() -> list[int]:
        sessions = RedisSessions(nowhere, POLICY, timeout=0.2)
        throttle = RedisThrottle(nowhere, LIMITS, timeout=0.2)
        await sessions.start()
        await throttle.start()
        statuses = []
        try:
            for call in (
                lambda: sessions.create("u" * 32, address=None, user_agent=None),
                lambda: sessions.find("some-token"),
                lambda: sessions.delete("some-token"),
                lambda: throttle.retry_after("a@example.com", "10.0.0.1"),
                lambda: throttle.failed("a@example.com", "10.0.0.1"),
                lambda: throttle.succeeded("a@example.com"),
            ):
                with pytest.raises(GatewayError) as refused:
                    await call()
                assert refused.value.headers["retry-after"]
                statuses.append(refused.value.status)
        finally:
            await sessions.close()
            await throttle.close()
        return statuses

    assert asyncio.run(run()) == [503] * 6
