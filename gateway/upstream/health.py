"""Deployment health: the circuit breaker that takes a failing deployment out of rotation.

After `policy.failures` consecutive failed attempts within `policy.window` seconds (counted from
the first of them), a deployment cools down for `policy.period` seconds: `available()` says False
and routing skips it. When the period ends the breaker is half-open: the deployment is offered
again, and for `window` seconds after the end a single failure trips it again at once. A success
outside a cooldown closes the breaker (the failure count and the half-open mark are forgotten).
Failures and successes reported while a cooldown is running change nothing: they come from
attempts that started before the trip, and the probe after the period decides.

`available()` is on the hot path: a dict read, no I/O. Cooldown ends are epoch seconds from
`time.time()` (or the injected clock) so every process reads them the same way.

`InProcessHealth` is one worker's view. `RedisHealth` shares the breaker through one Redis:

- `steerway:health:<deployment>:failures` counts the streak; it expires `window` after its first
  failure.
- `steerway:health:<deployment>:cooldown` holds the cooldown end (epoch ms) and expires with it.
- `steerway:health:<deployment>:cooled` marks the half-open time; it expires `window` after the
  cooldown ends.
- `steerway:health:cooling` is a sorted set of deployment ids scored by cooldown end (epoch ms).
  Each worker reads it every `refresh_interval` seconds (one pipelined round trip, no SCAN, and it
  covers deployments the worker has never called), so a trip seen by one worker reaches all of
  them within about that interval. Expired members are pruned by the same round trip.

A failure is one atomic Lua script (one round trip). A success costs a round trip only when this
worker has seen the deployment fail recently or cool down since its last success; healthy traffic
never touches Redis. When Redis is unreachable the store logs once, counts the error, and carries
on with its local view (counting failures in-process) until the background refresh reaches
Redis again; nothing is raised into the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = logging.getLogger("steerway.health")

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class CooldownPolicy:
    """When a deployment is taken out of rotation, and for how long."""

    failures: int = 3
    """Consecutive failed attempts (within `window`) that trip the breaker."""
    window: float = 60.0
    """Seconds; a streak older than this is forgotten."""
    period: float = 30.0
    """Seconds out of rotation once tripped."""

    def __post_init__(self) -> None:
        if isinstance(self.failures, bool) or not isinstance(self.failures, int):
            raise ValueError(f"cooldown failures must be an integer, got {self.failures!r}")
        if self.failures < 1:
            raise ValueError(f"cooldown failures must be at least 1, got {self.failures}")
        for name in ("window", "period"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"cooldown {name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"cooldown {name} must be a positive number of seconds")


class DeploymentHealth(Protocol):
    def available(self, deployment: str, now: float | None = None) -> bool:
        """False while `deployment` is cooling down. A local read: no I/O, safe on the hot path."""
        ...

    def cooling_down(self) -> dict[str, float]:
        """Deployments cooling down now, with the epoch second each cooldown ends."""
        ...

    async def failure(self, deployment: str, policy: CooldownPolicy) -> float | None:
        """Count one failed attempt; the cooldown end if this failure tripped the breaker."""
        ...

    async def success(self, deployment: str) -> None:
        """Count one successful attempt: the failure streak is forgotten."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Streak:
    count: int
    forgotten_at: float


class InProcessHealth:
    """The breaker for one worker, held in dicts."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._cooling: dict[str, float] = {}
        self._streaks: dict[str, _Streak] = {}
        self._half_open_until: dict[str, float] = {}

    def available(self, deployment: str, now: float | None = None) -> bool:
        ends = self._cooling.get(deployment)
        if ends is None:
            return True
        return ends <= (self._clock() if now is None else now)

    def cooling_down(self) -> dict[str, float]:
        now = self._clock()
        expired = [deployment for deployment, ends in self._cooling.items() if ends <= now]
        for deployment in expired:
            del self._cooling[deployment]
        return dict(self._cooling)

    async def failure(self, deployment: str, policy: CooldownPolicy) -> float | None:
        now = self._clock()
        if not self.available(deployment, now):
            return None
        streak = self._streaks.get(deployment)
        if streak is None or streak.forgotten_at <= now:
            streak = self._streaks[deployment] = _Streak(0, now + policy.window)
        streak.count += 1
        if streak.count < policy.failures and not self._half_open(deployment, now):
            return None
        ends = now + policy.period
        self._cooling[deployment] = ends
        self._half_open_until[deployment] = ends + policy.window
        del self._streaks[deployment]
        return ends

    async def success(self, deployment: str) -> None:
        if not self.available(deployment):
            return
        self._streaks.pop(deployment, None)
        self._half_open_until.pop(deployment, None)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _half_open(self, deployment: str, now: float) -> bool:
        until = self._half_open_until.get(deployment)
        if until is None:
            return False
        if until <= now:
            del self._half_open_until[deployment]
            return False
        return True

    def _learn_cooldown(self, deployment: str, ends: float) -> None:
        """Record a cooldown decided elsewhere (another worker, through Redis)."""
        if ends > self._cooling.get(deployment, 0.0):
            self._cooling[deployment] = ends


# KEYS: failures, cooldown, cooled, cooling set.
# ARGV: deployment, now ms, threshold, window ms, cooldown end ms, period ms + window ms.
# Returns {1, end ms} when this failure tripped the breaker, {0, end ms} when a cooldown was
# already running, {0, 0} otherwise.
_FAILURE_SCRIPT = """
local running = redis.call('GET', KEYS[2])
if running then
    return {0, tonumber(running)}
end
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
if count < tonumber(ARGV[3]) and redis.call('EXISTS', KEYS[3]) == 0 then
    return {0, 0}
end
local period = tonumber(ARGV[5]) - tonumber(ARGV[2])
redis.call('SET', KEYS[2], ARGV[5], 'PX', period)
redis.call('SET', KEYS[3], '1', 'PX', ARGV[6])
redis.call('DEL', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
return {1, tonumber(ARGV[5])}
"""

# KEYS: failures, cooldown, cooled. Returns 0 (and forgets nothing) while a cooldown is running.
_SUCCESS_SCRIPT = """
if redis.call('EXISTS', KEYS[2]) == 1 then
    return 0
end
redis.call('DEL', KEYS[1], KEYS[3])
return 1
"""

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class RedisHealth:
    """The breaker shared by every worker and replica through one Redis.

    Call `start()` before use: it runs the refresh that mirrors other workers' cooldowns and
    that brings the store back to Redis after an outage.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = time.time,
        refresh_interval: float = 0.5,
        key_prefix: str = "steerway:health",
        timeout: float = 1.0,
    ) -> None:
        try:
            self._redis = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as error:
            raise ValueError(f"invalid Redis URL for deployment health: {error}") from None
        self._clock = clock
        self._local = InProcessHealth(clock=clock)
        self._refresh_interval = refresh_interval
        self._prefix = key_prefix
        self._cooling_key = f"{key_prefix}:cooling"
        self._failure_script = self._redis.register_script(_FAILURE_SCRIPT)
        self._success_script = self._redis.register_script(_SUCCESS_SCRIPT)
        # deployment -> until when a success must reset the shared streak (inf: until the next
        # success after a cooldown).
        self._suspects: dict[str, float] = {}
        self._reachable = True
        self._refresher: asyncio.Task[None] | None = None
        self.redis_errors = 0
        """Redis calls that failed; each one fell back to the local view."""

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and this worker runs on its own view."""
        return not self._reachable

    def available(self, deployment: str, now: float | None = None) -> bool:
        return self._local.available(deployment, now)

    def cooling_down(self) -> dict[str, float]:
        return self._local.cooling_down()

    async def failure(self, deployment: str, policy: CooldownPolicy) -> float | None:
        now = self._clock()
        if not self.available(deployment, now):
            return None
        self._suspects[deployment] = max(self._suspects.get(deployment, 0.0), now + policy.window)
        if not self._reachable:
            return await self._local_failure(deployment, policy)
        now_ms = int(now * 1000)
        ends_ms = now_ms + _ms(policy.period)
        try:
            tripped, cooldown_ms = await self._failure_script(
                keys=[*self._keys(deployment), self._cooling_key],
                args=[
                    deployment,
                    now_ms,
                    policy.failures,
                    _ms(policy.window),
                    ends_ms,
                    _ms(policy.period) + _ms(policy.window),
                ],
            )
        except _REDIS_ERRORS as error:
            self._lost(error)
            return await self._local_failure(deployment, policy)
        if cooldown_ms:
            self._learn_cooldown(deployment, cooldown_ms / 1000)
        return cooldown_ms / 1000 if tripped else None

    async def success(self, deployment: str) -> None:
        until = self._suspects.get(deployment)
        if until is None:
            return
        now = self._clock()
        if until <= now:
            del self._suspects[deployment]
            return
        if not self.available(deployment, now):
            return
        if not self._reachable:
            await self._local.success(deployment)
            del self._suspects[deployment]
            return
        try:
            forgotten = await self._success_script(keys=self._keys(deployment))
        except _REDIS_ERRORS as error:
            self._lost(error)
            await self._local.success(deployment)
            return
        if forgotten:
            self._suspects.pop(deployment, None)
            await self._local.success(deployment)

    async def start(self) -> None:
        if self._refresher is None:
            await self.refresh()
            self._refresher = asyncio.create_task(self._refresh_forever(), name="steerway-health")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        await self._redis.aclose()

    async def refresh(self) -> None:
        """Mirror the shared cooldowns into the local view (one round trip); never raises."""
        now_ms = int(self._clock() * 1000)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zremrangebyscore(self._cooling_key, "-inf", now_ms)
                pipe.zrangebyscore(self._cooling_key, f"({now_ms}", "+inf", withscores=True)
                _, cooling = await pipe.execute()
        except _REDIS_ERRORS as error:
            self._lost(error)
            return
        if not self._reachable:
            self._reachable = True
            logger.info("Redis is reachable again; deployment health is shared again")
        for deployment, ends_ms in cooling:
            self._learn_cooldown(deployment, ends_ms / 1000)
        self._local.cooling_down()

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            await self.refresh()

    async def _local_failure(self, deployment: str, policy: CooldownPolicy) -> float | None:
        ends = await self._local.failure(deployment, policy)
        if ends is not None:
            self._suspects[deployment] = math.inf
        return ends

    def _learn_cooldown(self, deployment: str, ends: float) -> None:
        self._local._learn_cooldown(deployment, ends)
        self._suspects[deployment] = math.inf

    def _lost(self, error: BaseException) -> None:
        self.redis_errors += 1
        if self._reachable:
            self._reachable = False
            logger.warning(
                "Redis is unreachable (%s); deployment health falls back to this worker's view",
                type(error).__name__,
            )

    def _keys(self, deployment: str) -> list[str]:
        base = f"{self._prefix}:{deployment}"
        return [f"{base}:failures", f"{base}:cooldown", f"{base}:cooled"]


def create_health(redis_url: str | None) -> DeploymentHealth:
    """Redis-backed health when a Redis URL is configured, else one worker's in-process view."""
    if redis_url:
        return RedisHealth(redis_url)
    return InProcessHealth()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
