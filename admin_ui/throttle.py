"""Sign-in throttling: failed attempts counted per account and per client address over a sliding
window; past either limit, sign-in is refused until the oldest failure leaves the window.

Accounts are counted whether they exist or not, so the answer never tells which emails have an
account. A success clears its account's failures (not its address's: one address trying many
accounts stays limited). In-process by default; in Redis (sorted sets of failure times, one
round trip per check) when Redis is configured, so every worker and replica counts together.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import redis.asyncio as redis

from admin_ui.redis_errors import redis_answers

REDIS_PREFIX: Final = "steerway:console:signin:"
MAX_TRACKED: Final = 100_000
"""In-process: at most this many accounts and addresses are tracked; the oldest go first."""
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    per_account: int
    per_address: int
    window_seconds: float


class SigninThrottle(Protocol):
    limits: ThrottleLimits

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def retry_after(self, account: str, address: str) -> float | None:
        """Seconds until a sign-in may be tried again, or None when it may be tried now."""
        ...

    async def failed(self, account: str, address: str) -> None: ...

    async def succeeded(self, account: str) -> None: ...


def _account_key(account: str) -> str:
    return "account:" + hashlib.sha256(account.strip().lower().encode()).hexdigest()


def _address_key(address: str) -> str:
    return "address:" + address[:64]


class MemoryThrottle:
    def __init__(self, limits: ThrottleLimits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.limits.window_seconds:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    async def retry_after(self, account: str, address: str) -> float | None:
        now = self._clock()
        waits = []
        for key, limit in (
            (_account_key(account), self.limits.per_account),
            (_address_key(address), self.limits.per_address),
        ):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(times[len(times) - limit] + self.limits.window_seconds - now)
        return max(waits) if waits else None

    async def failed(self, account: str, address: str) -> None:
        now = self._clock()
        for key in (_account_key(account), _address_key(address)):
            times = self._failures.pop(key, None) or deque()
            times.append(now)
            self._failures[key] = times  # most recently failed last
        while len(self._failures) > MAX_TRACKED:
            del self._failures[next(iter(self._failures))]

    async def succeeded(self, account: str) -> None:
        self._failures.pop(_account_key(account), None)


class RedisThrottle:
    def __init__(
        self,
        url: str,
        limits: ThrottleLimits,
        clock: Clock = time.time,
        *,
        timeout: float = 1.0,
        prefix: str = REDIS_PREFIX,
    ) -> None:
        self.limits = limits
        self._url = url
        self._clock = clock
        self._timeout = timeout
        self._prefix = prefix
        self._redis: redis.Redis | None = None

    async def start(self) -> None:
        self._redis = redis.Redis.from_url(
            self._url, socket_connect_timeout=self._timeout, socket_timeout=self._timeout
        )

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def _client(self) -> redis.Redis:
        if self._redis is None:
            raise RuntimeError("the sign-in throttle is not started")
        return self._redis

    async def retry_after(self, account: str, address: str) -> float | None:
        with redis_answers():
            return await self._retry_after(account, address)

    async def _retry_after(self, account: str, address: str) -> float | None:
        now = self._clock()
        horizon = now - self.limits.window_seconds
        checks = (
            (self._prefix + _account_key(account), self.limits.per_account),
            (self._prefix + _address_key(address), self.limits.per_address),
        )
        async with self._client().pipeline(transaction=False) as pipe:
            for key, limit in checks:
                pipe.zremrangebyscore(key, "-inf", horizon)
                # The failure whose leaving the window lets a sign-in through again.
                pipe.zrevrange(key, limit - 1, limit - 1, withscores=True)
            answers = await pipe.execute()
        waits = [
            float(oldest[0][1]) + self.limits.window_seconds - now
            for oldest in answers[1::2]
            if oldest
        ]
        return max(waits) if waits else None

    async def failed(self, account: str, address: str) -> None:
        now = self._clock()
        ttl = max(1, int(self.limits.window_seconds) + 1)
        with redis_answers():
            async with self._client().pipeline(transaction=True) as pipe:
                for key in (_account_key(account), _address_key(address)):
                    member = f"{now:.6f}:{secrets.token_hex(4)}"
                    pipe.zadd(self._prefix + key, {member: now})
                    pipe.expire(self._prefix + key, ttl)
                await pipe.execute()

    async def succeeded(self, account: str) -> None:
        with redis_answers():
            await self._client().delete(self._prefix + _account_key(account))
