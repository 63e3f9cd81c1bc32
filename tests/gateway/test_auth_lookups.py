"""Key lookups under load, on SQLite and Postgres: requests share a lookup under way, and an
entry is looked up again before it runs out, without serving any answer past its TTL."""

from __future__ import annotations

import asyncio
import types

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import gateway.entry.auth as auth_module
from gateway.entry.auth import Authenticator
from gateway.errors import GatewayError
from gateway.keys.store import KeyInfo, KeyStore


class GatedStore(KeyStore):
    """The real store; each lookup by hash is counted and, while the gate is shut, waits."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.lookups = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.unavailable = False

    async def find_by_hash(self, key_hash: str) -> KeyInfo | None:
        self.lookups += 1
        await self.gate.wait()
        if self.unavailable:
            raise ConnectionRefusedError("the database is away")
        return await super().find_by_hash(key_hash)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def store(engine: AsyncEngine) -> GatedStore:
    return GatedStore(engine)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The authenticator's own clock (the event loop keeps the real one)."""
    clock = Clock()
    monkeypatch.setattr(auth_module, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    return clock


async def cached_key(store: GatedStore, name: str) -> tuple[Authenticator, str, str]:
    """A new key and an authenticator (TTL 4 s) that has just looked it up: the authenticator,
    the key's header and its id."""
    created = await store.create(name)
    header = f"Bearer {created.plaintext}"
    auth = Authenticator(store, ttl=4.0)
    await auth.authenticate(header)
    return auth, header, created.info.key_id


async def until_settled(auth: Authenticator) -> None:
    for _ in range(200):
        if not auth._lookups:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("a lookup never ended")


async def test_requests_for_a_key_with_no_fresh_entry_share_one_lookup(store: GatedStore) -> None:
    created = await store.create("shared")
    auth = Authenticator(store, ttl=60)
    store.gate.clear()
    waiting = [
        asyncio.create_task(auth.authenticate(f"Bearer {created.plaintext}")) for _ in range(20)
    ]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in waiting)
    store.gate.set()
    keys = await asyncio.gather(*waiting)
    assert {key.key_id for key in keys} == {created.info.key_id}
    assert store.lookups == 1


async def test_a_request_that_goes_away_leaves_the_lookup_to_the_others(
    store: GatedStore,
) -> None:
    created = await store.create("abandoned")
    auth = Authenticator(store, ttl=60)
    store.gate.clear()
    header = f"Bearer {created.plaintext}"
    first = asyncio.create_task(auth.authenticate(header))
    second = asyncio.create_task(auth.authenticate(header))
    await asyncio.sleep(0.05)
    first.cancel()
    store.gate.set()
    assert (await second).key_id == created.info.key_id
    assert first.cancelled()
    assert store.lookups == 1


async def test_an_entry_is_looked_up_again_before_it_runs_out(
    store: GatedStore, clock: Clock
) -> None:
    auth, header, key_id = await cached_key(store, "refreshed")
    assert store.lookups == 1

    clock.now += 2.9  # more than a quarter of the TTL left: the entry simply answers
    await auth.authenticate(header)
    assert store.lookups == 1

    store.gate.clear()
    clock.now += 0.2  # 0.9 s of 4 left: this request starts the next lookup, and does not wait
    assert (await auth.authenticate(header)).key_id == key_id
    await asyncio.sleep(0.05)
    assert store.lookups == 2
    assert (await auth.authenticate(header)).key_id == key_id
    await asyncio.sleep(0.05)
    assert store.lookups == 2  # one lookup ahead at a time
    store.gate.set()
    await until_settled(auth)

    clock.now += 1.0  # past the first entry's end: the refreshed one answers
    assert (await auth.authenticate(header)).key_id == key_id
    assert store.lookups == 2


async def test_a_revocation_is_seen_within_the_ttl_with_lookups_ahead(
    store: GatedStore, clock: Clock
) -> None:
    auth, header, key_id = await cached_key(store, "revoked-ahead")
    await store.revoke(key_id)

    store.gate.clear()
    clock.now += 3.5  # the lookup ahead starts; the entry, still fresh, answers
    assert (await auth.authenticate(header)).key_id == key_id
    store.gate.set()
    await until_settled(auth)

    with pytest.raises(GatewayError) as refused:
        await auth.authenticate(header)  # still within the first TTL: the new answer stands
    assert refused.value.code == "invalid_api_key"


async def test_an_entry_past_its_ttl_waits_for_the_lookup_under_way(
    store: GatedStore, clock: Clock
) -> None:
    """A lookup ahead that has not answered by the end of the TTL: the entry is not served
    stale; the request waits for that lookup instead of starting one more."""
    auth, header, key_id = await cached_key(store, "slow-lookup")
    store.gate.clear()
    clock.now += 3.5
    await auth.authenticate(header)
    clock.now += 1.0
    late = asyncio.create_task(auth.authenticate(header))
    await asyncio.sleep(0.05)
    assert not late.done()
    store.gate.set()
    assert (await late).key_id == key_id
    assert store.lookups == 2


async def test_a_lookup_ahead_that_finds_the_database_away_refuses_and_serves_nobody(
    store: GatedStore, clock: Clock
) -> None:
    auth, header, key_id = await cached_key(store, "refresh-outage")
    store.unavailable = True
    clock.now += 3.5
    assert (await auth.authenticate(header)).key_id == key_id  # fresh: answered
    await until_settled(auth)
    assert auth.outage.down
    assert (auth.outage.refusals, auth.outage.served_stale) == (0, 0)
    # Still within its TTL, the entry answers; no lookup is tried outside the outage's probes.
    assert (await auth.authenticate(header)).key_id == key_id
    assert store.lookups == 2
