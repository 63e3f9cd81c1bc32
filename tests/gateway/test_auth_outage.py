"""Key lookups while the database is away, on SQLite and Postgres: 503 with `retry-after`, one
warning per outage, one probe at a time, and the stale key cache.

Postgres goes away behind a TCP forwarder the test cuts (connections dropped, new ones
refused). The SQLite file is moved away with a directory left in its place, and the engine's
pool is emptied, as it is for every new connection: no connection to the database can be made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gateway.entry.auth import Authenticator
from gateway.errors import GatewayError
from gateway.keys.store import KeyStore
from telemetry.db import create_engine
from telemetry.db_outage import DatabaseOutage, is_unavailable
from tests.forwarder import TcpForwarder

OUTAGE_LOGGER = "steerway.database"


class Outage:
    """Takes a test database away from an engine and gives it back."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.forwarder: TcpForwarder | None = None
        self.engine_url = database_url
        if not database_url.startswith("sqlite"):
            self.forwarder = TcpForwarder.for_url(database_url).start()
            self.engine_url = self.forwarder.url(database_url)
        self.path = Path(database_url.removeprefix("sqlite:///"))
        self.engine = create_engine(self.engine_url)
        self.connection_attempts = 0
        event.listen(self.engine.sync_engine, "do_connect", self._count_attempt)

    def _count_attempt(self, *_: Any) -> None:
        self.connection_attempts += 1

    async def begin(self) -> None:
        if self.forwarder is not None:
            await asyncio.to_thread(self.forwarder.cut)
            return
        self.path.rename(self.path.with_name("moved-away.db"))
        self.path.mkdir()
        await self.engine.dispose()

    async def end(self) -> None:
        if self.forwarder is not None:
            await asyncio.to_thread(self.forwarder.restore)
            return
        self.path.rmdir()
        self.path.with_name("moved-away.db").rename(self.path)

    async def close(self) -> None:
        await self.engine.dispose()
        if self.forwarder is not None:
            await asyncio.to_thread(self.forwarder.close)


@pytest.fixture
async def outage(migrated_database_url: str) -> AsyncIterator[Outage]:
    outage = Outage(migrated_database_url)
    yield outage
    await outage.close()


async def unavailable(auth: Authenticator, key: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await auth.authenticate(f"Bearer {key}")
    error = caught.value
    assert error.status == 503
    assert error.type == "server_error"
    assert error.code == "service_unavailable"
    assert set(error.headers) == {"retry-after"}
    assert int(error.headers["retry-after"]) >= 1
    assert key not in error.message
    return error


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == OUTAGE_LOGGER]


async def test_a_lookup_during_an_outage_is_503_and_logged_once_per_outage(
    outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    store = KeyStore(outage.engine)
    key = (await store.create("outage")).plaintext
    tracker = DatabaseOutage(probe_interval=0.05)
    auth = Authenticator(store, ttl=0.0, outage=tracker)
    assert (await auth.authenticate(f"Bearer {key}")).name == "outage"

    caplog.set_level(logging.WARNING, OUTAGE_LOGGER)
    for _ in range(3):
        await outage.begin()
        for _ in range(20):
            await unavailable(auth, key)
            await asyncio.sleep(0.005)
        assert tracker.down
        await outage.end()
        await asyncio.sleep(0.06)
        assert (await auth.authenticate(f"Bearer {key}")).name == "outage"
        assert not tracker.down
    lines = outage_lines(caplog)
    assert len(lines) == 6, lines
    assert all(line.startswith("database unavailable (") for line in lines[::2]), lines
    assert all(line.startswith("database available again after ") for line in lines[1::2])
    assert "requests answered 503 meanwhile: 20;" in lines[-1]


async def test_during_an_outage_one_probe_at_a_time_goes_to_the_database(
    outage: Outage,
) -> None:
    store = KeyStore(outage.engine)
    key = (await store.create("probe")).plaintext
    auth = Authenticator(store, ttl=0.0, outage=DatabaseOutage(probe_interval=3600))
    await outage.begin()
    before = outage.connection_attempts
    await unavailable(auth, key)
    found_out = outage.connection_attempts
    assert found_out > before
    results = await asyncio.gather(
        *(auth.authenticate(f"Bearer {key}") for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(result, GatewayError) and result.status == 503 for result in results)
    assert outage.connection_attempts == found_out
    await outage.end()


async def test_a_recently_verified_key_is_served_stale_and_an_unverified_one_is_not(
    outage: Outage,
) -> None:
    store = KeyStore(outage.engine)
    verified = (await store.create("verified")).plaintext
    unverified = (await store.create("unverified")).plaintext
    tracker = DatabaseOutage(probe_interval=0.05)
    auth = Authenticator(store, ttl=0.0, stale_ttl=300, outage=tracker)
    info = await auth.authenticate(f"Bearer {verified}")
    with pytest.raises(GatewayError) as unknown:
        await auth.authenticate("Bearer sk-sw-never-issued")
    assert unknown.value.status == 401

    await outage.begin()
    for _ in range(5):
        assert await auth.authenticate(f"Bearer {verified}") == info
        with pytest.raises(GatewayError) as still_unknown:
            await auth.authenticate("Bearer sk-sw-never-issued")
        assert still_unknown.value.status == 401
    await unavailable(auth, unverified)
    assert tracker.served_stale == 10
    assert tracker.refusals == 1
    await outage.end()
    await asyncio.sleep(0.06)
    assert (await auth.authenticate(f"Bearer {unverified}")).name == "unverified"


async def test_without_a_stale_ttl_a_cached_key_is_not_served_past_its_ttl(
    outage: Outage,
) -> None:
    store = KeyStore(outage.engine)
    key = (await store.create("short")).plaintext
    auth = Authenticator(store, ttl=0.05, outage=DatabaseOutage(probe_interval=0.05))
    await auth.authenticate(f"Bearer {key}")
    await outage.begin()
    await asyncio.sleep(0.06)
    await unavailable(auth, key)
    await outage.end()


async def test_errors_about_the_request_are_not_an_outage(outage: Outage) -> None:
    store = KeyStore(outage.engine)
    created = await store.create("twice")
    with pytest.raises(Exception) as duplicate:
        await store.create("twice", plaintext=created.plaintext)
    assert not is_unavailable(duplicate.value)

    await outage.begin()
    with pytest.raises(Exception) as away:
        await store.find_by_hash("0" * 64)
    assert is_unavailable(away.value)
    await outage.end()


async def test_a_dropped_connection_in_the_pool_is_an_outage_not_a_crash(
    migrated_postgres_url: str,
) -> None:
    """Connections already in the pool when Postgres goes away fail mid-use."""
    outage = Outage(migrated_postgres_url)
    try:
        store = KeyStore(outage.engine)
        key = (await store.create("pooled")).plaintext
        auth = Authenticator(store, ttl=0.0, outage=DatabaseOutage(probe_interval=0.05))
        await asyncio.gather(*(auth.authenticate(f"Bearer {key}") for _ in range(5)))
        await outage.begin()
        await unavailable(auth, key)
        await outage.end()
    finally:
        await outage.close()


async def test_a_database_that_stops_answering_is_an_outage_after_the_lookup_deadline(
    migrated_postgres_url: str,
) -> None:
    """Postgres that stops answering without dropping a connection (a frozen host, a network
    partition) leaves a key lookup waiting on its pooled connection: without a deadline of its
    own it waits out the driver's 60 s command timeout, and every request behind it too. SQLite
    has no such state: its readers never wait (WAL), whoever holds the file."""
    outage = Outage(migrated_postgres_url)
    assert outage.forwarder is not None
    try:
        store = KeyStore(outage.engine)
        key = (await store.create("stalled")).plaintext
        tracker = DatabaseOutage(probe_interval=0.05)
        auth = Authenticator(store, ttl=0.0, lookup_timeout=0.5, outage=tracker)
        await asyncio.gather(*(auth.authenticate(f"Bearer {key}") for _ in range(3)))

        await asyncio.to_thread(outage.forwarder.stall)
        async with asyncio.timeout(20):
            results = await asyncio.gather(
                *(auth.authenticate(f"Bearer {key}") for _ in range(5)), return_exceptions=True
            )
        assert all(isinstance(r, GatewayError) and r.status == 503 for r in results), results
        assert tracker.down

        await asyncio.to_thread(outage.forwarder.restore)
        await asyncio.sleep(0.06)
        async with asyncio.timeout(20):
            assert (await auth.authenticate(f"Bearer {key}")).name == "stalled"
        assert not tracker.down
    finally:
        await outage.close()
