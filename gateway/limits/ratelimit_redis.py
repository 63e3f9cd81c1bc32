"""The rate limiter shared by every worker and replica through one Redis.

One `acquire` is one Lua script call (one round trip) covering every subject of the request and
requests, tokens and parallel slots together: the script measures every limit, then either
commits all of them or none. Per subject it keeps:

- `<prefix>:b:<scope>:<subject>`: a hash with the request debt and its update time (`rd`, `ru`)
  and the token debt and its update time (`td`, `tu`), as in `gateway.limits.ratelimit_gcra`; it
  expires a minute after the debts would be repaid (an absent hash is a full allowance).
- `<prefix>:p:<scope>:<subject>`: a sorted set of the leases holding a parallel slot, scored by
  the millisecond each frees by itself (`policy.lease_ttl` after it was taken), so a worker that
  dies holding slots leaks them for at most that long. The script drops expired leases before
  counting; `release` removes the lease.

Time is the caller's `now` (wall-clock epoch seconds), never Redis' TIME, so the in-process and
Redis backends compute exactly the same answers and a caller can drive time. The stored state is
GCRA's theoretical arrival time, so it means the same whichever worker's clock reads it: with
clocks d seconds apart, a charge made by the faster worker looks d * limit / 60 units larger to
the slower one and a charge made by the slower one that much smaller to the faster one. The
views shift but the rate does not multiply, however often the workers alternate. Keep clocks
within milliseconds (NTP). A state written more than a minute in a reader's future (a clock that
is badly wrong) is ignored as a full allowance: that worker may over-admit, but no worker can
lock a subject out until the wrong clock's time.

On a Redis error or timeout (`policy.timeout`: for connecting, for each reply, for a free
connection when all `policy.max_connections` are busy, and as a cap on the whole call) the
limiter follows `policy.on_redis_error`: "open" admits the request with
`degraded=True`, "closed" refuses it with `unavailable=True`. Either way the error is counted in
`steerway_redis_errors_total{concern="rate_limit"}`, logged once per outage, and nothing is
raised. A call that timed out may still have run on the server; what it counted then stays
counted (its slot frees after the lease TTL).

Every key of one request must live on the same server: this is not written for Redis Cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.limits import ratelimit_gcra as gcra
from gateway.limits.ratelimit_local import LeaseIds, checked, to_ms
from gateway.limits.ratelimit_model import (
    PERIOD_MS,
    UNLIMITED,
    Check,
    Lease,
    LimitSubject,
    RateDecision,
    RateLimitPolicy,
    decide,
)
from telemetry import metrics

logger = logging.getLogger("steerway.ratelimit")

Clock = Callable[[], float]

CONCERN = "rate_limit"

# Numbers written back go through '%.0f': Lua's default number formatting keeps 14 digits only.
_COMMON = """
local P = 60000
local now = tonumber(ARGV[1])

local function int(x)
    return string.format('%.0f', x)
end

local function debt_at(debt, updated, limit)
    if not debt then
        return 0
    end
    local elapsed = now - tonumber(updated)
    if elapsed < -P then
        return 0
    end
    debt = math.min(P * limit, tonumber(debt)) - elapsed * limit
    if debt < 0 then
        return 0
    end
    return debt
end

local function keep_for(key, ms)
    if redis.call('PTTL', key) < ms then
        redis.call('PEXPIRE', key, int(ms))
    end
end
"""

# KEYS: per subject, its bucket hash then its lease set.
# ARGV: now ms, tokens, lease id, lease expiry ms, lease set ttl ms, then per subject rpm, tpm,
#       max parallel (0: not limited).
# Returns {admitted 1|0, then per subject: request debt, token debt, slots in flight}: with the
# request counted when admitted, the unchanged state when refused.
_ACQUIRE_SCRIPT = (
    _COMMON
    + """
local cost = tonumber(ARGV[2])
local n = #KEYS / 2
local limits, debts, flights = {}, {}, {}
local admitted = 1
for i = 1, n do
    local rpm = tonumber(ARGV[3 + 3 * i])
    local tpm = tonumber(ARGV[4 + 3 * i])
    local slots = tonumber(ARGV[5 + 3 * i])
    local state = redis.call('HMGET', KEYS[2 * i - 1], 'rd', 'ru', 'td', 'tu')
    local rd, td, flight = 0, 0, 0
    if rpm > 0 then
        rd = debt_at(state[1], state[2], rpm)
        if rd + P > P * rpm then
            admitted = 0
        end
    end
    if tpm > 0 then
        td = debt_at(state[3], state[4], tpm)
        if cost > tpm or td + cost * P > P * tpm then
            admitted = 0
        end
    end
    if slots > 0 then
        redis.call('ZREMRANGEBYSCORE', KEYS[2 * i], '-inf', ARGV[1])
        flight = redis.call('ZCARD', KEYS[2 * i])
        if flight >= slots then
            admitted = 0
        end
    end
    limits[i] = {rpm, tpm, slots}
    debts[i] = {rd, td}
    flights[i] = flight
end
local reply = {admitted}
for i = 1, n do
    local rpm, tpm, slots = limits[i][1], limits[i][2], limits[i][3]
    local rd, td, flight = debts[i][1], debts[i][2], flights[i]
    if admitted == 1 then
        local bucket = KEYS[2 * i - 1]
        if rpm > 0 then
            rd = rd + P
            redis.call('HSET', bucket, 'rd', int(rd), 'ru', ARGV[1])
            keep_for(bucket, math.ceil(rd / rpm) + P)
        end
        if tpm > 0 then
            td = td + cost * P
            redis.call('HSET', bucket, 'td', int(td), 'tu', ARGV[1])
            keep_for(bucket, math.ceil(td / tpm) + P)
        end
        if slots > 0 then
            redis.call('ZADD', KEYS[2 * i], ARGV[4], ARGV[3])
            redis.call('PEXPIRE', KEYS[2 * i], ARGV[5])
            flight = flight + 1
        end
    end
    reply[#reply + 1] = rd
    reply[#reply + 1] = td
    reply[#reply + 1] = flight
end
return reply
"""
)

# KEYS: per subject, its bucket hash then its lease set.
# ARGV: now ms, lease id, token correction, then per subject tpm (0: not limited) and whether
#       the lease holds one of its slots (1|0).
_RELEASE_SCRIPT = (
    _COMMON
    + """
local delta = tonumber(ARGV[3])
for i = 1, #KEYS / 2 do
    local tpm = tonumber(ARGV[2 + 2 * i])
    if ARGV[3 + 2 * i] == '1' then
        redis.call('ZREM', KEYS[2 * i], ARGV[2])
    end
    if delta ~= 0 and tpm > 0 then
        local bucket = KEYS[2 * i - 1]
        local state = redis.call('HMGET', bucket, 'td', 'tu')
        local td = debt_at(state[1], state[2], tpm)
        td = math.min(P * tpm, math.max(0, td + delta * P))
        redis.call('HSET', bucket, 'td', int(td), 'tu', ARGV[1])
        keep_for(bucket, math.ceil(td / tpm) + P)
    end
end
return 1
"""
)

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class RedisRateLimiter:
    """Limits shared by every worker through one Redis, exact across all of them."""

    releases_in_place = False

    def __init__(
        self, url: str, policy: RateLimitPolicy | None = None, *, clock: Clock = time.time
    ) -> None:
        self._policy = policy or RateLimitPolicy()
        try:
            pool = redis.BlockingConnectionPool.from_url(
                url,
                max_connections=self._policy.max_connections,
                timeout=self._policy.timeout,
                socket_timeout=self._policy.timeout,
                socket_connect_timeout=self._policy.timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as error:
            raise ValueError(f"invalid Redis URL for rate limits: {error}") from None
        self._redis = redis.Redis.from_pool(pool)
        self._clock = clock
        self._lease_ttl_ms = max(1, round(self._policy.lease_ttl * 1000))
        self._prefix = self._policy.key_prefix
        self._acquire_script = self._redis.register_script(_ACQUIRE_SCRIPT)
        self._release_script = self._redis.register_script(_RELEASE_SCRIPT)
        self._lease_ids = LeaseIds()
        self._errors = metrics.redis_errors_total.labels(CONCERN)
        self._reachable = True
        self.redis_errors = 0
        """Redis calls that failed; each one followed `policy.on_redis_error`."""

    async def acquire(
        self, subjects: Sequence[LimitSubject], tokens: int, now: float | None = None
    ) -> RateDecision:
        limited = checked(subjects, tokens)
        if not limited:
            return UNLIMITED
        now_ms = to_ms(self._clock() if now is None else now)
        lease_id = self._lease_ids()
        keys: list[str] = []
        args: list[int | str] = [
            now_ms,
            tokens,
            lease_id,
            now_ms + self._lease_ttl_ms,
            self._lease_ttl_ms + PERIOD_MS,
        ]
        for subject in limited:
            keys += self._keys(subject)
            args += [subject.rpm or 0, subject.tpm or 0, subject.max_parallel or 0]
        try:
            async with asyncio.timeout(self._policy.timeout):
                reply = await self._acquire_script(keys=keys, args=args)
        except _REDIS_ERRORS as error:
            return self._failed(error)
        self._reached()
        admitted = reply[0] == 1
        checks: list[Check] = []
        for index, subject in enumerate(limited):
            request_debt, token_debt, in_flight = reply[1 + 3 * index : 4 + 3 * index]
            checks += gcra.subject_checks(
                subject, tokens, int(request_debt), int(token_debt), int(in_flight), admitted
            )
        lease = Lease(lease_id, tuple(limited), tokens) if admitted else None
        return decide(checks, tokens, lease)

    async def release(
        self, decision: RateDecision, actual_tokens: int | None = None, now: float | None = None
    ) -> None:
        lease = decision.lease
        if lease is None or lease.released:
            return
        lease.released = True
        delta = 0 if actual_tokens is None else max(actual_tokens, 0) - lease.estimated_tokens
        keys: list[str] = []
        args: list[int | str] = [
            to_ms(self._clock() if now is None else now),
            lease.lease_id,
            delta,
        ]
        for subject in lease.subjects:
            corrects = bool(delta) and subject.tpm is not None
            if corrects or subject.max_parallel is not None:
                keys += self._keys(subject)
                args += [subject.tpm or 0, 1 if subject.max_parallel is not None else 0]
        if not keys:
            return
        try:
            async with asyncio.timeout(self._policy.timeout):
                await self._release_script(keys=keys, args=args)
        except _REDIS_ERRORS as error:
            self._lost(error)
            return
        self._reached()

    async def start(self) -> None:
        """Load the scripts so the first request costs one round trip; never raises."""
        try:
            async with asyncio.timeout(self._policy.timeout):
                await self._redis.script_load(_ACQUIRE_SCRIPT)
                await self._redis.script_load(_RELEASE_SCRIPT)
        except _REDIS_ERRORS as error:
            self._lost(error)

    async def close(self) -> None:
        await self._redis.aclose()

    def _keys(self, subject: LimitSubject) -> list[str]:
        name = f"{subject.scope}:{subject.subject}"
        return [f"{self._prefix}:b:{name}", f"{self._prefix}:p:{name}"]

    def _failed(self, error: BaseException) -> RateDecision:
        self._lost(error)
        if self._policy.on_redis_error == "open":
            return RateDecision(allowed=True, degraded=True)
        return RateDecision(allowed=False, unavailable=True)

    def _lost(self, error: BaseException) -> None:
        self.redis_errors += 1
        self._errors.inc()
        if self._reachable:
            self._reachable = False
            logger.warning(
                "Redis is unreachable (%s); rate limits fail %s",
                type(error).__name__,
                self._policy.on_redis_error,
            )

    def _reached(self) -> None:
        if not self._reachable:
            self._reachable = True
            logger.info("Redis is reachable again; rate limits are enforced again")
