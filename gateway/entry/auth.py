"""Authentication on the hot path: a bearer key, resolved through a short-TTL in-process cache.

The TTL bounds how long a revoked key keeps working on any worker (one second by default), and
the cache keeps the database off the hot path for every request after the first in that window.
A cached key carries its own limits and its workspace's (`KeyInfo.workspace_limits`, read in the
same query), so a changed limit, like a revocation, is in force everywhere within the TTL.

Keys that exist and hashes that match no key are remembered apart: anyone can send wrong keys,
as many as they like, so those are held in a small map of their own that forgets the oldest
first, and a flood of them can neither grow memory nor push real keys out of the cache.

Under load, an entry must not simply run out: every request in flight at that moment would look
the key up at once, and on a busy database each would wait behind the others (on SQLite behind
the telemetry writer too: 150 ms, once a second, for every request then in flight). So the first
request in the last quarter of an entry's TTL looks the key up again in the background while the
entry still answers, and requests that find no fresh entry share the lookup already under way.
Neither lengthens the TTL: an answer is served only while it is younger than the TTL.

When the database is away, a key that is not in the cache is answered 503 with `retry-after`;
so is one whose lookup takes longer than `lookup_timeout` (a database that stopped answering).
With a stale TTL, a key verified within that time keeps being served from the cache meanwhile
(nobody can revoke a key while the database is away, but a revocation made just before the
outage may not have been seen yet: the stale TTL bounds that window).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import time
from datetime import UTC, datetime

from gateway.errors import database_unavailable, invalid_key, missing_key
from gateway.keys.limits import NO_LIMITS
from gateway.keys.store import KeyInfo, KeyStore
from telemetry.db_outage import DatabaseOutage, is_unavailable
from telemetry.schema import DEFAULT_WORKSPACE_ID

MASTER_KEY_INFO = KeyInfo(
    key_id="master",
    workspace_id=DEFAULT_WORKSPACE_ID,
    name="master key",
    role="master",
    display_prefix="(STEERWAY_MASTER_KEY)",
    workspace_limits=NO_LIMITS,  # the operator's key: no workspace limit applies to it
)

KEY_LOOKUP_TIMEOUT_SECONDS = 5.0
"""A key lookup that takes longer finds the database unavailable: one that stopped answering
without dropping its connections would otherwise hold the request for the driver's command
timeout (60 s), and every request queued behind it for a connection."""

REFRESH_AHEAD = 0.25
"""The share of an entry's TTL left when the first request to see it starts the next lookup."""

_NEVER = (0.0, 0.0)
_Entry = tuple[float, float, KeyInfo | None]  # fresh until, usable during an outage until, key


class Authenticator:
    def __init__(
        self,
        store: KeyStore,
        *,
        master_key: str | None = None,
        ttl: float = 1.0,
        stale_ttl: float = 0.0,
        max_entries: int = 100_000,
        max_unknown: int = 10_000,
        outage: DatabaseOutage | None = None,
        lookup_timeout: float = KEY_LOOKUP_TIMEOUT_SECONDS,
    ) -> None:
        self._store = store
        self._master_hash = hashlib.sha256(master_key.encode()).digest() if master_key else None
        self._ttl = ttl
        self._refresh_within = ttl * REFRESH_AHEAD
        self._stale_ttl = max(ttl, stale_ttl)
        self._max_entries = max_entries
        self._max_unknown = max_unknown
        self._cache: dict[str, _Entry] = {}
        self._unknown: dict[str, tuple[float, float]] = {}
        """Hashes no key has, with when to look them up again and until when an outage may still
        answer them as wrong; oldest first."""
        self.outage = outage or DatabaseOutage()
        self._lookup_timeout = lookup_timeout
        self._lookups: dict[str, asyncio.Task[KeyInfo | None]] = {}
        """Lookups under way, by key hash: whoever needs the same key meanwhile waits for it."""

    async def authenticate(self, authorization: str | None) -> KeyInfo:
        """The key behind an `Authorization` header value, or a 401 GatewayError (503 when the
        database is away and the key cannot be verified)."""
        if not authorization:
            raise missing_key()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise missing_key()
        digest = hashlib.sha256(token.encode()).digest()
        if self._master_hash is not None and hmac.compare_digest(digest, self._master_hash):
            return MASTER_KEY_INFO
        key_hash = digest.hex()
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            info = cached[2]
            if (
                cached[0] - now < self._refresh_within
                and key_hash not in self._lookups
                and self.outage.may_try()
            ):
                self._start_look_up(key_hash, now)
        elif self._unknown.get(key_hash, _NEVER)[0] > now:
            info = None
        else:
            info = await self._answer(key_hash, cached, now)
        if info is None or not _in_force(info):
            raise invalid_key()
        return info

    async def _answer(self, key_hash: str, cached: _Entry | None, now: float) -> KeyInfo | None:
        """The database's answer for a key with no fresh entry; during an outage, the stale one
        or a 503, except for the one request at a time that probes the database."""
        lookup = self._lookups.get(key_hash)
        if lookup is None or self.outage.down:
            if not self.outage.may_try():
                return self._during_outage(key_hash, cached, now)
            lookup = self._start_look_up(key_hash, now)
        try:
            # Shielded: a request that goes away does not end the lookup others wait for.
            return await asyncio.shield(lookup)
        except _Unavailable:
            return self._during_outage(key_hash, cached, time.monotonic())

    def _start_look_up(self, key_hash: str, now: float) -> asyncio.Task[KeyInfo | None]:
        """Look the key up; the caller has the outage's leave (`may_try`)."""
        lookup = asyncio.get_running_loop().create_task(self._look_up(key_hash, now))
        self._lookups[key_hash] = lookup
        lookup.add_done_callback(functools.partial(self._looked_up, key_hash))
        return lookup

    def _looked_up(self, key_hash: str, lookup: asyncio.Task[KeyInfo | None]) -> None:
        if self._lookups.get(key_hash) is lookup:
            del self._lookups[key_hash]
        if not lookup.cancelled():
            lookup.exception()  # a refresh nobody awaited fails quietly; the next request sees

    def _remember_unknown(self, key_hash: str, now: float) -> None:
        if self._stale_ttl <= 0 or self._max_unknown <= 0:
            return
        unknown = self._unknown
        unknown.pop(key_hash, None)
        while len(unknown) >= self._max_unknown:
            del unknown[next(iter(unknown))]
        unknown[key_hash] = (now + self._ttl, now + self._stale_ttl)

    async def _look_up(self, key_hash: str, now: float) -> KeyInfo | None:
        """The key from the database, cached; `_Unavailable` when the database is away."""
        outage = self.outage
        try:
            async with asyncio.timeout(self._lookup_timeout):
                info = await self._store.find_by_hash(key_hash)
        except Exception as error:
            if not is_unavailable(error):
                outage.abandoned()
                raise
            outage.failed(error, "a key lookup")
            raise _Unavailable from None
        except BaseException:
            outage.abandoned()
            raise
        outage.answered()
        if info is None:
            self._remember_unknown(key_hash, now)
            return None
        if len(self._cache) >= self._max_entries:
            self._evict(now)
        self._cache[key_hash] = (now + self._ttl, now + self._stale_ttl, info)
        return info

    def _during_outage(self, key_hash: str, cached: _Entry | None, now: float) -> KeyInfo | None:
        """The cached answer (a key, or a hash known to match none) while it may be served
        stale, else a 503."""
        if cached is not None and cached[1] > now:
            self.outage.served_stale += 1
            return cached[2]
        if self._unknown.get(key_hash, _NEVER)[1] > now:
            self.outage.served_stale += 1
            return None
        self.outage.refusals += 1
        raise database_unavailable(self.outage.retry_after)

    def _evict(self, now: float) -> None:
        expired = [key for key, (_, until, _) in self._cache.items() if until <= now]
        for key in expired:
            del self._cache[key]
        if len(self._cache) >= self._max_entries:
            self._cache.clear()


class _Unavailable(Exception):
    """A lookup found the database away: each request waiting for it answers as an outage
    allows (a background refresh just ends)."""


def _in_force(info: KeyInfo) -> bool:
    """`info.active(now)`, with the clock read only for a key that can expire."""
    if info.expires_at is None:
        return info.revoked_at is None
    return info.active(datetime.now(UTC))
