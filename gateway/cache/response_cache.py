"""The exact-match response cache: its key, its policy, its entries and its two backends.

Key. A SHA-256 over a canonical encoding (sorted keys) of the workspace, the resolved model (the
route after steering), the operation and every request field that can change the answer. Fields
are counted unless they are known not to matter (`IGNORED_FIELDS`): an unknown field counts, so
a parameter the gateway has never heard of can never make two different requests share an
answer. The key is computed on the payload after steering rules changed it.

Policy. `resolve_policy` combines the configuration (`enabled`, `default_ttl`), the steering
rules (`cache: on|off|{mode, ttl}`) and the client's `x-steerway-cache` header:

- a rule with `mode: off` bypasses the cache; a rule with `mode: on` turns it on even where the
  configuration leaves it off;
- the header only narrows: `no-cache` (do not read), `no-store` (do not write), `ttl=<s>`; it
  cannot switch on a cache the configuration and rules leave off;
- a sampled chat request (temperature > 0, or absent: OpenAI's default is 1) is cached only when
  a rule turned the cache on or the header gave a `ttl`: reusing a sampled answer is a choice;
- the TTL is the header's, else the rule's, else the default.

Backends. `InProcessCache` is an LRU bounded by bytes (one worker's memory); `RedisCache` shares
entries between workers with one GET or one SET (PX) per request. Redis calls have a short
timeout and never raise into the request path: with `on_error="open"` a failed lookup is a miss
flagged `degraded`; with `"closed"` it is `refused` (the proxy answers 503). After an error the
Redis cache stops calling Redis for `pause` seconds, so an outage costs one timeout, not one per
request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final, Literal, Protocol

import msgspec
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from providers.usage import Usage
from rules.actions import CachePolicy
from telemetry import metrics

logger = logging.getLogger("steerway.cache")

HIT: Final = "HIT"
MISS: Final = "MISS"
BYPASS: Final = "BYPASS"

HEADER: Final = "x-steerway-cache"
MAX_TTL_SECONDS: Final = 30 * 24 * 3600
MAX_HEADER_LENGTH: Final = 256
KEY_VERSION: Final = 1

IGNORED_FIELDS: Final = frozenset(
    {
        "model",  # replaced by the resolved model
        "user",  # end-user id: attribution, not output
        "safety_identifier",  # the same, under its newer name
        "stream",  # a stored answer is replayed as a stream when asked
        "stream_options",
        "metadata",  # labels for stored completions
        "store",  # whether the provider keeps the completion: a hit is not stored there
        "service_tier",  # latency and price class, same model and answer
        "prompt_cache_key",  # the provider's prompt-cache routing hint
        "prompt_cache_retention",
    }
)
"""Request fields that never change the answer. Every other field is part of the key."""

OnError = Literal["open", "closed"]

_encode_canonical = msgspec.json.Encoder(order="sorted").encode


def cache_key(
    workspace_id: str, resolved_model: str, operation: str, payload: Mapping[str, Any]
) -> str:
    """The cache key of a request: hex SHA-256, never shared between workspaces."""
    fields = {
        name: _canonical_number(value)
        for name, value in payload.items()
        if name not in IGNORED_FIELDS
    }
    document = (KEY_VERSION, workspace_id, resolved_model, operation, fields)
    return hashlib.sha256(_encode_canonical(document)).hexdigest()


def _canonical_number(value: Any) -> Any:
    """`0` and `0.0` are the same temperature: whole floats count as integers."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# --- policy -----------------------------------------------------------------------------------


class CacheDirectives(msgspec.Struct, frozen=True):
    """The client's `x-steerway-cache` header."""

    no_cache: bool = False
    no_store: bool = False
    ttl: int | None = None


NO_DIRECTIVES: Final = CacheDirectives()


def parse_cache_header(value: str | None) -> CacheDirectives:
    """Read `no-cache`, `no-store` and `ttl=<seconds>`, comma separated, in any case.

    An unknown directive, a repeated `ttl` or a TTL that is not a whole number of seconds in
    1..MAX_TTL_SECONDS raises ValueError (the proxy answers 400).
    """
    if value is None or not value.strip():
        return NO_DIRECTIVES
    if len(value) > MAX_HEADER_LENGTH:
        raise ValueError(f"The {HEADER} header is longer than {MAX_HEADER_LENGTH} characters.")
    no_cache = no_store = False
    ttl: int | None = None
    for raw in value.split(","):
        directive = raw.strip().lower()
        name, equals, argument = directive.partition("=")
        if directive == "no-cache":
            no_cache = True
        elif directive == "no-store":
            no_store = True
        elif equals and name.rstrip() == "ttl":
            if ttl is not None:
                raise ValueError(f"The {HEADER} header gives 'ttl' more than once.")
            ttl = _header_ttl(argument.strip())
        else:
            shown = raw.strip()[:40]
            raise ValueError(
                f"Invalid {HEADER} directive '{shown}': use no-cache, no-store or ttl=<seconds>."
            )
    return CacheDirectives(no_cache, no_store, ttl)


def _header_ttl(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_TTL_SECONDS:
        raise ValueError(
            f"Invalid {HEADER} ttl '{text[:20]}': a whole number of seconds "
            f"from 1 to {MAX_TTL_SECONDS}."
        )
    return int(text)


class CacheDecision(msgspec.Struct, frozen=True):
    """What the cache does for one request, and why (the `cache_decision` row).

    `status` is the `x-steerway-cache` response header before the lookup: BYPASS when the
    cache is not read, MISS otherwise (the proxy answers HIT when the lookup finds an entry).
    """

    read: bool
    write: bool
    ttl: int
    reason: str
    status: str

    @property
    def active(self) -> bool:
        return self.read or self.write


def resolve_policy(
    *,
    operation: str,
    default_ttl: int,
    enabled: bool,
    rule: CachePolicy | None,
    header: str | None,
    payload: Mapping[str, Any],
) -> CacheDecision:
    """Decide whether this request reads and writes the cache. Raises ValueError for an invalid
    `x-steerway-cache` header, whatever else applies."""
    directives = parse_cache_header(header)
    if rule is not None and rule.mode == "off":
        return _bypass(default_ttl, "a steering rule turned the cache off")
    by_rule = rule is not None and rule.mode == "on"
    if not enabled and not by_rule:
        return _bypass(default_ttl, "the cache is off in the configuration")
    if directives.no_cache and directives.no_store:
        return _bypass(default_ttl, f"{HEADER}: no-cache, no-store")
    sampling = _sampling(operation, payload)
    if sampling is not None and not by_rule and directives.ttl is None:
        return _bypass(
            default_ttl,
            f"{sampling} samples the answer: cached only when a rule turns the cache on or "
            f"the {HEADER} header gives a ttl",
        )
    if directives.ttl is not None:
        ttl, ttl_from = directives.ttl, f"{HEADER} ttl"
    elif rule is not None and rule.ttl is not None:
        ttl, ttl_from = rule.ttl, "the rule's ttl"
    else:
        ttl, ttl_from = default_ttl, "the default ttl"
    parts = ["a steering rule turned the cache on" if by_rule else "the cache is on"]
    if sampling is not None:
        parts.append(f"sampled answer ({sampling}) cached on request")
    if directives.no_cache:
        parts.append(f"{HEADER}: no-cache (not read)")
    if directives.no_store:
        parts.append(f"{HEADER}: no-store (not written)")
    parts.append(f"ttl {ttl}s from {ttl_from}")
    read = not directives.no_cache
    return CacheDecision(
        read=read,
        write=not directives.no_store,
        ttl=ttl,
        reason="; ".join(parts),
        status=MISS if read else BYPASS,
    )


def _bypass(ttl: int, reason: str) -> CacheDecision:
    return CacheDecision(read=False, write=False, ttl=ttl, reason=reason, status=BYPASS)


def _sampling(operation: str, payload: Mapping[str, Any]) -> str | None:
    """Why a chat request's answer is sampled ("temperature 0.7"), None when it is meant to be
    reproducible (temperature 0, or not a chat request)."""
    if operation != "chat":
        return None
    value = payload.get("temperature")
    if value is None:
        return "no temperature (OpenAI's default is 1)"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"temperature {repr(value)[:20]}"
    return f"temperature {value:g}" if value > 0 else None


# --- entries ----------------------------------------------------------------------------------


class CachedResponse(msgspec.Struct, frozen=True, kw_only=True):
    """One stored answer: the non-streamed OpenAI JSON body and what it cost to make."""

    body: bytes
    provider: str
    provider_model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: Decimal | None = None
    created_at: float = msgspec.field(default_factory=time.time)

    @property
    def usage(self) -> Usage:
        total = None
        if self.prompt_tokens is not None:
            total = self.prompt_tokens + (self.completion_tokens or 0)
        return Usage(self.prompt_tokens, self.completion_tokens, self.cached_tokens, total)


class CacheLookup(msgspec.Struct, frozen=True):
    """The answer to `get`: the entry on a hit; `degraded` when the backend failed and the
    lookup counts as a miss; `refused` when it failed under the fail-closed policy."""

    entry: CachedResponse | None
    degraded: bool = False
    refused: bool = False

    @property
    def hit(self) -> bool:
        return self.entry is not None


_encode_entry = msgspec.msgpack.Encoder().encode
_decode_entry = msgspec.msgpack.Decoder(CachedResponse).decode
_MISS: Final = CacheLookup(None)


class ResponseCache(Protocol):
    backend: str

    async def get(self, key: str) -> CacheLookup: ...

    async def set(self, key: str, entry: CachedResponse, ttl: float) -> bool:
        """Store `entry` for `ttl` seconds; False when it was not stored. Never raises."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


# --- in-process -------------------------------------------------------------------------------


class _Slot(msgspec.Struct):
    entry: CachedResponse
    expires: float
    size: int


class InProcessCache:
    """One worker's LRU cache, bounded by the bytes of its entries' encodings plus their keys."""

    backend = "memory"

    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache max_bytes must not be negative, got {max_bytes}")
        self.max_bytes = max_bytes
        self._clock = clock
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._bytes = 0

    @property
    def bytes_in_use(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._slots)

    async def get(self, key: str) -> CacheLookup:
        slot = self._slots.get(key)
        if slot is None:
            return _MISS
        if slot.expires <= self._clock():
            self._drop(key)
            self._report()
            return _MISS
        self._slots.move_to_end(key)
        return CacheLookup(slot.entry)

    async def set(self, key: str, entry: CachedResponse, ttl: float) -> bool:
        if key in self._slots:
            self._drop(key)
        size = len(key) + len(_encode_entry(entry))
        if ttl <= 0 or size > self.max_bytes:
            self._report()
            return False
        self._slots[key] = _Slot(entry, self._clock() + ttl, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._slots)))
        self._report()
        return True

    async def start(self) -> None:
        self._report()

    async def close(self) -> None:
        self._slots.clear()
        self._bytes = 0
        self._report()

    def _drop(self, key: str) -> None:
        self._bytes -= self._slots.pop(key).size

    def _report(self) -> None:
        metrics.cache_bytes.set(self._bytes)


# --- Redis ------------------------------------------------------------------------------------

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class RedisCache:
    """Entries shared through one Redis: msgpack values under `<prefix><key>`, expiring by PX."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.2,
        on_error: OnError = "open",
        key_prefix: str = "steerway:cache:",
        pause: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if on_error not in ("open", "closed"):
            raise ValueError(f"cache on_redis_error must be 'open' or 'closed', got {on_error!r}")
        if not timeout > 0:
            raise ValueError(f"cache Redis timeout must be positive, got {timeout!r}")
        try:
            self._redis = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as error:
            raise ValueError(f"invalid Redis URL for the cache: {error}") from None
        self._on_error = on_error
        self._prefix = key_prefix
        self._pause = pause
        self._clock = clock
        # A connect and a read, each bounded by `timeout`: the whole call never takes longer.
        self._deadline = 2 * timeout
        self._quiet_until = 0.0
        self._reachable = True
        self.redis_errors = 0
        """Redis calls that failed."""

    @property
    def degraded(self) -> bool:
        """True from a failed call until the next successful one."""
        return not self._reachable

    async def get(self, key: str) -> CacheLookup:
        if self._quiet_until > self._clock():
            return self._failed_lookup()
        try:
            async with asyncio.timeout(self._deadline):
                raw = await self._redis.get(self._prefix + key)
        except _REDIS_ERRORS as error:
            self._lost(error)
            return self._failed_lookup()
        self._found()
        if not isinstance(raw, bytes):
            return _MISS
        try:
            return CacheLookup(_decode_entry(raw))
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.warning("unreadable cache entry %s…; treated as a miss", key[:12])
            return _MISS

    async def set(self, key: str, entry: CachedResponse, ttl: float) -> bool:
        if ttl <= 0 or self._quiet_until > self._clock():
            return False
        value = _encode_entry(entry)
        try:
            async with asyncio.timeout(self._deadline):
                await self._redis.set(self._prefix + key, value, px=max(1, round(ttl * 1000)))
        except _REDIS_ERRORS as error:
            self._lost(error)
            return False
        self._found()
        return True

    async def start(self) -> None:
        """Check Redis once so an outage shows in the log at start; never raises."""
        try:
            async with asyncio.timeout(self._deadline):
                await self._redis.ping()
        except _REDIS_ERRORS as error:
            self._lost(error)

    async def close(self) -> None:
        await self._redis.aclose()

    def _failed_lookup(self) -> CacheLookup:
        return CacheLookup(None, degraded=True, refused=self._on_error == "closed")

    def _found(self) -> None:
        if not self._reachable:
            self._reachable = True
            logger.info("Redis is reachable again; the response cache is shared again")

    def _lost(self, error: BaseException) -> None:
        self.redis_errors += 1
        metrics.redis_errors_total.labels("cache").inc()
        self._quiet_until = self._clock() + self._pause
        if self._reachable:
            self._reachable = False
            logger.warning(
                "Redis is unreachable for the response cache (%s); lookups are %s",
                type(error).__name__,
                "refused" if self._on_error == "closed" else "misses",
            )


def create_cache(
    redis_url: str | None,
    max_bytes: int,
    *,
    timeout: float = 0.2,
    on_error: OnError = "open",
) -> ResponseCache:
    """Redis when a URL is configured (`max_bytes` is then Redis's business), else in-process."""
    if redis_url:
        return RedisCache(redis_url, timeout=timeout, on_error=on_error)
    return InProcessCache(max_bytes)


# --- metrics ----------------------------------------------------------------------------------

_requests = metrics.Labelled(metrics.cache_requests_total)
_saved = metrics.Labelled(metrics.cache_saved_usd_total)


def count_request(operation: str, status: str) -> None:
    """Count one request's cache outcome: `status` is HIT, MISS or BYPASS."""
    _requests(operation, status.lower()).inc()


def count_saved(provider: str, model: str, cost_usd: Decimal | None) -> None:
    """Count the provider cost a hit saved; `model` is the public model (a bounded label)."""
    if cost_usd is not None and cost_usd > 0:
        _saved(provider, model).inc(float(cost_usd))
