"""Authenticator with a real KeyStore, on SQLite and Postgres: headers, keys, revocation, cache."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.entry.auth import MASTER_KEY_INFO, Authenticator
from gateway.errors import GatewayError
from gateway.keys.store import KeyStore
from telemetry.schema import DEFAULT_WORKSPACE_ID, api_keys

MASTER = "sk-master-unit-test-0123456789"


@pytest.fixture
def store(engine: AsyncEngine) -> KeyStore:
    return KeyStore(engine)


async def rejected(auth: Authenticator, header: str | None) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await auth.authenticate(header)
    assert caught.value.status == 401
    assert caught.value.type == "invalid_request_error"
    return caught.value


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer    ", "Basic c2stc3c6eA==", "Token abc", MASTER],
    ids=["none", "empty", "scheme-only", "blank-token", "basic", "other-scheme", "no-scheme"],
)
async def test_a_header_without_a_bearer_key_is_missing_key(
    store: KeyStore, header: str | None
) -> None:
    auth = Authenticator(store, master_key=MASTER)
    error = await rejected(auth, header)
    assert error.code == "missing_api_key"
    assert MASTER not in error.message


async def test_an_unknown_key_is_invalid_and_not_echoed(store: KeyStore) -> None:
    auth = Authenticator(store, master_key=MASTER)
    error = await rejected(auth, "Bearer sk-sw-unknown-key-123")
    assert error.code == "invalid_api_key"
    assert "sk-sw-unknown-key-123" not in error.message


async def test_the_master_key_from_the_environment(store: KeyStore) -> None:
    auth = Authenticator(store, master_key=MASTER)
    for header in (f"Bearer {MASTER}", f"bearer {MASTER}", f"BEARER  {MASTER}  "):
        info = await auth.authenticate(header)
        assert info is MASTER_KEY_INFO
    assert MASTER_KEY_INFO.role == "master"
    assert MASTER_KEY_INFO.workspace_id == DEFAULT_WORKSPACE_ID
    assert (await rejected(auth, f"Bearer {MASTER}x")).code == "invalid_api_key"

    without = Authenticator(store)
    assert (await rejected(without, f"Bearer {MASTER}")).code == "invalid_api_key"


async def test_a_created_key_authenticates_and_is_stored_hashed(
    store: KeyStore, engine: AsyncEngine
) -> None:
    workspace = await store.ensure_workspace("team-a")
    created = await store.create("ci", workspace_id=workspace)
    auth = Authenticator(store)
    info = await auth.authenticate(f"Bearer {created.plaintext}")
    assert info.key_id == created.info.key_id
    assert info.workspace_id == workspace
    assert info.name == "ci"
    assert info.role == "user"
    assert info.display_prefix == created.plaintext[:12] + "..."

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(api_keys))).all()
    assert len(rows) == 1
    assert rows[0].key_hash == hashlib.sha256(created.plaintext.encode()).hexdigest()
    assert all(created.plaintext not in str(value) for value in rows[0])


async def test_the_generated_master_key_is_a_stored_key(store: KeyStore) -> None:
    assert await store.has_master_key() is False
    created = await store.create("master key", role="master")
    assert await store.has_master_key() is True
    info = await Authenticator(store).authenticate(f"Bearer {created.plaintext}")
    assert info.role == "master"
    await store.revoke(created.info.key_id)
    assert await store.has_master_key() is False


async def test_revocation_applies_once_the_cache_entry_expires(store: KeyStore) -> None:
    created = await store.create("to-revoke")
    header = f"Bearer {created.plaintext}"
    cached = Authenticator(store, ttl=60)
    uncached = Authenticator(store, ttl=0)
    assert (await cached.authenticate(header)).key_id == created.info.key_id
    assert (await uncached.authenticate(header)).key_id == created.info.key_id

    revoked = await store.revoke(created.info.key_id)
    assert revoked is not None and revoked.revoked_at is not None

    assert (await rejected(uncached, header)).code == "invalid_api_key"
    # Within its TTL the cached answer stands: the TTL bounds how long a revoked key lives.
    assert (await cached.authenticate(header)).key_id == created.info.key_id
    assert (await rejected(Authenticator(store, ttl=60), header)).code == "invalid_api_key"


async def test_short_ttl_picks_up_revocation(store: KeyStore) -> None:
    created = await store.create("short-ttl")
    header = f"Bearer {created.plaintext}"
    auth = Authenticator(store, ttl=0.2)
    await auth.authenticate(header)
    await store.revoke(created.info.key_id)
    await asyncio.sleep(0.25)
    await rejected(auth, header)


@pytest.mark.parametrize("how", ["key_id", "prefix", "plaintext"])
async def test_revoke_by_id_prefix_or_plaintext(store: KeyStore, how: str) -> None:
    created = await store.create("revoke-me")
    keep = await store.create("keep-me")
    handle = {
        "key_id": created.info.key_id,
        "prefix": created.info.display_prefix,
        "plaintext": created.plaintext,
    }[how]
    revoked = await store.revoke(handle)
    assert revoked is not None and revoked.key_id == created.info.key_id
    auth = Authenticator(store, ttl=0)
    await rejected(auth, f"Bearer {created.plaintext}")
    assert (await auth.authenticate(f"Bearer {keep.plaintext}")).key_id == keep.info.key_id
    assert [k.key_id for k in await store.list()] == [keep.info.key_id]
    assert {k.key_id for k in await store.list(include_revoked=True)} == {
        created.info.key_id,
        keep.info.key_id,
    }


async def test_revoke_matches_exactly_one_key(store: KeyStore) -> None:
    await store.create("a", plaintext="sk-sw-sameprefix-aaaaaaaaaaaa")
    await store.create("b", plaintext="sk-sw-sameprefix-bbbbbbbbbbbb")
    assert await store.revoke("sk-sw-samepr...") is None
    assert await store.revoke("no-such-key") is None
    assert len(await store.list()) == 2


async def test_expiry(store: KeyStore) -> None:
    now = datetime.now(UTC)
    expired = await store.create("old", expires_at=now - timedelta(seconds=1))
    current = await store.create("current", expires_at=now + timedelta(hours=1))
    auth = Authenticator(store, ttl=0)
    assert (await rejected(auth, f"Bearer {expired.plaintext}")).code == "invalid_api_key"
    info = await auth.authenticate(f"Bearer {current.plaintext}")
    assert info.expires_at is not None and info.expires_at.tzinfo is not None
    assert abs((info.expires_at - (now + timedelta(hours=1))).total_seconds()) < 1


async def test_a_key_created_after_a_failed_attempt(store: KeyStore) -> None:
    plaintext = "sk-sw-created-later-0123456789"
    auth = Authenticator(store, ttl=0)
    await rejected(auth, f"Bearer {plaintext}")
    await store.create("later", plaintext=plaintext)
    assert (await auth.authenticate(f"Bearer {plaintext}")).name == "later"


async def test_a_full_cache_is_evicted_and_stays_correct(store: KeyStore) -> None:
    keys = [await store.create(f"k{i}") for i in range(3)]
    auth = Authenticator(store, ttl=60, max_entries=2)
    for key in keys[:2]:
        await auth.authenticate(f"Bearer {key.plaintext}")
    await store.revoke(keys[0].info.key_id)
    await auth.authenticate(f"Bearer {keys[2].plaintext}")  # the cache is full: evict
    await rejected(auth, f"Bearer {keys[0].plaintext}")
    assert (await auth.authenticate(f"Bearer {keys[1].plaintext}")).name == "k1"


async def test_workspaces_resolve_by_slug_or_id(store: KeyStore) -> None:
    first = await store.ensure_workspace("team-b")
    assert await store.ensure_workspace("team-b") == first
    assert await store.workspace_id("team-b") == first
    assert await store.workspace_id(first) == first
    assert await store.workspace_id("default") == DEFAULT_WORKSPACE_ID
    created = await store.create("in-b", workspace_id=first)
    assert [k.key_id for k in await store.list(workspace_id=first)] == [created.info.key_id]


async def test_wrong_keys_cannot_push_real_keys_out_or_pile_up(store: KeyStore) -> None:
    real = await store.create("real")
    auth = Authenticator(store, ttl=60, max_entries=64, max_unknown=64)
    assert (await auth.authenticate(f"Bearer {real.plaintext}")).name == "real"
    await store.revoke(real.info.key_id)  # from now on only the cache still says yes
    first_wrong = "sk-sw-wrong-key-0000"
    await rejected(auth, f"Bearer {first_wrong}")
    for index in range(1, 300):
        await rejected(auth, f"Bearer sk-sw-wrong-key-{index:04d}")
    # The real key is still the cached one: the wrong keys did not evict it.
    assert (await auth.authenticate(f"Bearer {real.plaintext}")).name == "real"
    # The first wrong key was forgotten (64 remembered at most): made a key now, it works at
    # once instead of after the 60 s TTL.
    await store.create("later", plaintext=first_wrong)
    assert (await auth.authenticate(f"Bearer {first_wrong}")).name == "later"
    # A recent wrong key is still remembered as wrong for its TTL.
    recent = "sk-sw-wrong-key-0299"
    await store.create("recent", plaintext=recent)
    assert (await rejected(auth, f"Bearer {recent}")).code == "invalid_api_key"
