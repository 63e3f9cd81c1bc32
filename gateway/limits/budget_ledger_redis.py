"""The budget ledger shared by every worker and replica through one Redis.

Keys, per account (one budget's window), `<prefix>` being `steerway:budget`:

- `<prefix>:spend:<window>:<start>:<scope>:<subject>` — a hash: `spent` (settled micro-dollars)
  and `reserved` (the sum of the live holds).
- `<prefix>:held:<window>:<start>:<scope>:<subject>` — a sorted set of the live holds: member
  `<reservation id>:<amount>`, score the epoch millisecond the hold expires.
- `<prefix>:loaded` — the sentinel: present once this Redis holds the persisted spend.

Both account keys expire `expiry_margin` after their window ends ("total" ones never do).

Every operation on a request's budgets is one Lua script, so one round trip and atomic:

- reserve: drop the account's expired holds (subtracting them from `reserved`), check every
  budget, and only if all pass add the hold to each (`reserved` += amount, the member added).
  A hold that is never settled (the worker died) stops counting once it expires: `now` +
  `reservation_ttl`, judged by the clock of the next request that reserves on the account.
- settle: remove the member; only if it was still there subtract its amount from `reserved`
  (so a hold that already expired is not subtracted twice); add the actual cost to `spent`.
- release: the same without the spend, and it never creates a key.

Rebuilding after Redis lost its data. Reserve and settle refuse to run while the sentinel is
missing and answer "rebuild" instead. The worker that gets that answer (one task per worker,
the others wait for it) reads the persisted spend of every current window, adds its own
increments not yet written, writes each account with set-if-missing semantics inside a script,
and only then sets the sentinel. Several workers may rebuild at once: set-if-missing makes the
first value win and never overwrites an account that traffic has touched since, and no traffic
touches an account before some rebuild has finished (the sentinel). So nothing is counted twice.
What Redis can miss is spend other workers settled in the old Redis and had not yet flushed
when the winning rebuild read the table: at most one flush interval of their traffic (it is in
the table, and counts again after the next rebuild). Run this Redis with `maxmemory-policy
noeviction`: an evicted account would read as unspent.

Failures. Every call has a `redis_timeout` socket timeout and no retries; calls share a pool of
at most `redis_connections` connections (waiting for one is bounded too). On a Redis error the
policy decides: "open" lets the request through (`degraded`), "closed" refuses it
(`unavailable`). Settlements that fail still reach the database; releases that fail are left to
expire. `steerway_redis_errors_total{concern="budgets"}` counts each failure.

`percent_used` answers from this worker's view of the accounts, updated by its own reserve and
settle replies and refreshed from Redis (one pipelined round trip) when older than
`view_max_age`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from gateway.limits.budget_ledger import Clock, LedgerBase
from gateway.limits.budget_model import (
    NO_SETTLEMENT,
    AccountKey,
    BudgetPolicy,
    Charge,
    Reservation,
    Settlement,
)
from gateway.limits.budget_spend import SpendStore

logger = logging.getLogger("steerway.budgets")

_SEED_BATCH = 500
_VIEW_LIMIT = 100_000  # accounts in the percent_used view before old entries are dropped
_VIEW_KEPT = 60.0  # seconds an entry survives such a clean-up

# KEYS: sentinel, then (spend hash, held set) per account.
# ARGV: now ms, member, amount, expiry ms, then (limit, key ttl ms) per account.
# Returns {-1} (rebuild first), {0, i, spent, reserved} (account i refuses) or
# {1, spent, reserved, ...} (held; each account's state after).
_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {-1}
end
local amount = tonumber(ARGV[3])
local n = (#KEYS - 1) / 2
local before = {}
for i = 1, n do
    local spend, held = KEYS[2 * i], KEYS[2 * i + 1]
    local expired = redis.call('ZRANGEBYSCORE', held, '-inf', ARGV[1], 'LIMIT', 0, 512)
    if #expired > 0 then
        local freed = 0
        for _, member in ipairs(expired) do
            freed = freed + tonumber(string.match(member, ':(%d+)$'))
        end
        redis.call('ZREM', held, unpack(expired))
        redis.call('HINCRBY', spend, 'reserved', -freed)
    end
    local values = redis.call('HMGET', spend, 'spent', 'reserved')
    local spent = tonumber(values[1]) or 0
    local reserved = tonumber(values[2]) or 0
    local limit = tonumber(ARGV[3 + 2 * i])
    if spent + reserved >= limit or spent + reserved + amount > limit then
        return {0, i, spent, reserved}
    end
    before[i] = spent
end
local reply = {1}
for i = 1, n do
    local spend, held = KEYS[2 * i], KEYS[2 * i + 1]
    local reserved = redis.call('HINCRBY', spend, 'reserved', amount)
    redis.call('ZADD', held, ARGV[4], ARGV[2])
    local ttl = tonumber(ARGV[4 + 2 * i])
    if ttl > 0 then
        redis.call('PEXPIRE', spend, ttl)
        redis.call('PEXPIRE', held, ttl)
    end
    reply[2 * i] = before[i]
    reply[2 * i + 1] = reserved
end
return reply
"""

# KEYS: sentinel, then (spend hash, held set) per account.
# ARGV: member, amount held, actual cost, then key ttl ms per account.
# Returns {-1} (rebuild first) or {1, spent, reserved, ...} (each account's state after).
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {-1}
end
local n = (#KEYS - 1) / 2
local reply = {1}
for i = 1, n do
    local spend, held = KEYS[2 * i], KEYS[2 * i + 1]
    if redis.call('ZREM', held, ARGV[1]) == 1 then
        redis.call('HINCRBY', spend, 'reserved', -tonumber(ARGV[2]))
    end
    reply[2 * i] = redis.call('HINCRBY', spend, 'spent', ARGV[3])
    reply[2 * i + 1] = tonumber(redis.call('HGET', spend, 'reserved')) or 0
    local ttl = tonumber(ARGV[3 + i])
    if ttl > 0 then
        redis.call('PEXPIRE', spend, ttl)
    end
end
return reply
"""

# KEYS: (spend hash, held set) per account. ARGV: member, amount held.
_RELEASE = """
for i = 1, #KEYS / 2 do
    if redis.call('ZREM', KEYS[2 * i], ARGV[1]) == 1 then
        redis.call('HINCRBY', KEYS[2 * i - 1], 'reserved', -tonumber(ARGV[2]))
    end
end
return 1
"""

# KEYS: spend hashes. ARGV: (spent, key ttl ms) per account. Writes only missing accounts.
_SEED = """
for i = 1, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 0 then
        redis.call('HSET', KEYS[i], 'spent', ARGV[2 * i - 1], 'reserved', 0)
        local ttl = tonumber(ARGV[2 * i])
        if ttl > 0 then
            redis.call('PEXPIRE', KEYS[i], ttl)
        end
    end
end
return 1
"""

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)
_REBUILD_ERRORS = (*_REDIS_ERRORS, SQLAlchemyError)


class _StillEmpty(RedisError):
    """Redis lost its data again right after a rebuild."""


class RedisBudgetLedger(LedgerBase):
    def __init__(
        self,
        url: str,
        store: SpendStore,
        policy: BudgetPolicy | None = None,
        *,
        clock: Clock = time.time,
    ) -> None:
        policy = policy or BudgetPolicy()
        super().__init__(store, policy, clock)
        try:
            # A bounded pool: a burst of concurrent requests queues for a few warm connections
            # instead of opening one each (many connects at once miss a short timeout).
            pool = redis.BlockingConnectionPool.from_url(
                url,
                max_connections=policy.redis_connections,
                timeout=max(1.0, 5 * policy.redis_timeout),
                decode_responses=True,
                socket_timeout=policy.redis_timeout,
                socket_connect_timeout=policy.redis_timeout,
                retry=Retry(NoBackoff(), 0),
            )
            self._redis = redis.Redis.from_pool(pool)
        except ValueError as error:
            raise ValueError(f"invalid Redis URL for budgets: {error}") from None
        self._prefix = policy.key_prefix
        self._sentinel = f"{self._prefix}:loaded"
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)
        self._release = self._redis.register_script(_RELEASE)
        self._seed = self._redis.register_script(_SEED)
        self._rebuilding: asyncio.Task[None] | None = None
        # account -> (spent, reserved, monotonic time learnt)
        self._view: dict[AccountKey, tuple[int, int, float]] = {}
        self._view_limit = _VIEW_LIMIT
        self._reachable = True

    async def start(self) -> None:
        await self._store.start()
        try:
            await self._rebuild()
        except _REBUILD_ERRORS as error:
            self._failed("start", error)

    async def close(self) -> None:
        if self._rebuilding is not None and not self._rebuilding.done():
            self._rebuilding.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_REBUILD_ERRORS):
                await self._rebuilding
        await self._store.close()
        await self._redis.aclose()

    async def reserve(
        self, charges: Sequence[Charge], amount_micros: int, now: float
    ) -> Reservation:
        self._check_amount(amount_micros, "a reservation")
        held = self._hold(charges, now)
        reservation_id = self._next_id()
        if not held:
            return Reservation(id=reservation_id, held=held, amount_micros=amount_micros, now=now)
        accounts = list(self._distinct(held).values())
        keys = [self._sentinel]
        args: list[Any] = [
            int(now * 1000),
            f"{reservation_id}:{amount_micros}",
            amount_micros,
            int((now + self._policy.reservation_ttl) * 1000),
        ]
        for item in accounts:
            keys += self._keys(item.key)
            args += [item.charge.limit.limit_micros, self._expiry_ms(item.ends, now)]
        try:
            reply = await self._run(self._reserve, keys, args)
        except _REBUILD_ERRORS as error:
            self._failed("reserve", error)
            return Reservation(
                id=reservation_id,
                held=held,
                amount_micros=amount_micros,
                now=now,
                degraded=self._policy.on_redis_error == "open",
                unavailable=self._policy.on_redis_error == "closed",
            )
        learnt = time.monotonic()
        if reply[0] == 0:
            account = accounts[reply[1] - 1]
            spent, reserved = int(reply[2]), int(reply[3])
            self._remember(account.key, spent, reserved, learnt)
            which = min(
                (item for item in held if item.key == account.key),
                key=lambda item: item.charge.limit.limit_micros,
            )
            return self._denial(reservation_id, held, amount_micros, now, which, spent, reserved)
        for index, item in enumerate(accounts):
            self._remember(item.key, int(reply[2 * index + 1]), int(reply[2 * index + 2]), learnt)
        return Reservation(id=reservation_id, held=held, amount_micros=amount_micros, now=now)

    async def settle(self, reservation: Reservation, actual_micros: int) -> Settlement:
        self._check_amount(actual_micros, "a settlement")
        if reservation.finished:
            return NO_SETTLEMENT
        reservation.finished = True
        if not reservation.held:
            return NO_SETTLEMENT
        if not actual_micros:
            await self._release_held(reservation)
            return NO_SETTLEMENT
        accounts = list(self._distinct(reservation.held).values())
        keys = [self._sentinel]
        args: list[Any] = [
            f"{reservation.id}:{reservation.amount_micros}",
            reservation.amount_micros,
            actual_micros,
        ]
        for item in accounts:
            keys += self._keys(item.key)
            args.append(self._expiry_ms(item.ends, reservation.now))
        reply = None
        try:
            reply = await self._run(self._settle, keys, args)
        except _REBUILD_ERRORS as error:
            self._failed("settle", error)
        finally:
            # Persisted only now (a rebuild this call triggered must not count it twice), and
            # even when the request's task is cancelled meanwhile.
            for item in accounts:
                self._store.add(item.key, item.charge.workspace_id, actual_micros)
        if reply is None:
            return Settlement(degraded=True)
        learnt = time.monotonic()
        after: dict[AccountKey, tuple[int, int]] = {}
        for index, item in enumerate(accounts):
            spent, reserved = int(reply[2 * index + 1]), int(reply[2 * index + 2])
            after[item.key] = (spent, reserved)
            self._remember(item.key, spent, reserved, learnt)
        return Settlement(self._crossings(reservation.held, after, actual_micros))

    async def release(self, reservation: Reservation) -> None:
        if reservation.finished:
            return
        reservation.finished = True
        if reservation.held:
            await self._release_held(reservation)

    async def _release_held(self, reservation: Reservation) -> None:
        keys: list[str] = []
        for key in self._distinct(reservation.held):
            keys += self._keys(key)
        args: list[str | int] = [
            f"{reservation.id}:{reservation.amount_micros}",
            reservation.amount_micros,
        ]
        try:
            await self._release(keys=keys, args=args)
        except _REDIS_ERRORS as error:
            self._failed("release", error)  # the hold expires with its reservation TTL

    async def percent_used(self, charges: Sequence[Charge], now: float) -> dict[str, float]:
        held = self._hold(charges, now)
        if not held:
            return {}
        moment = time.monotonic()
        max_age = self._policy.view_max_age
        stale = [
            key
            for key in self._distinct(held)
            if (known := self._view.get(key)) is None or moment - known[2] > max_age
        ]
        if stale:
            await self._refresh(stale, moment)
        spent = {key: known[0] for key in self._distinct(held) if (known := self._view.get(key))}
        return self._percentages(held, spent)

    async def balances(self, accounts: Sequence[AccountKey]) -> dict[AccountKey, tuple[int, int]]:
        """Read from Redis in one pipelined round trip. `reserved` still counts holds that
        expired (a worker died) until the next reservation on the account drops them."""
        if not accounts:
            return {}
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in accounts:
                    pipe.hmget(self._keys(key)[0], "spent", "reserved")
                replies = await pipe.execute()
        except _REDIS_ERRORS as error:
            self._failed("balances", error)
            return {}
        self._recovered()
        return {
            key: (int(spent or 0), int(reserved or 0))
            for key, (spent, reserved) in zip(accounts, replies, strict=True)
            if spent is not None or reserved is not None
        }

    async def _refresh(self, stale: list[AccountKey], moment: float) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in stale:
                    pipe.hmget(self._keys(key)[0], "spent", "reserved")
                replies = await pipe.execute()
        except _REDIS_ERRORS as error:
            self._failed("percent_used", error)
            return
        self._recovered()
        for key, (spent, reserved) in zip(stale, replies, strict=True):
            self._remember(key, int(spent or 0), int(reserved or 0), moment)

    def _remember(self, key: AccountKey, spent: int, reserved: int, moment: float) -> None:
        self._view[key] = (spent, reserved, moment)
        if len(self._view) > self._view_limit:
            horizon = moment - _VIEW_KEPT
            self._view = {k: v for k, v in self._view.items() if v[2] >= horizon}
            self._view_limit = max(_VIEW_LIMIT, 2 * len(self._view))

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> list[Any]:
        """Run a reserve or settle script; when Redis lost its data, rebuild it and run again."""
        reply = await script(keys=keys, args=args)
        if reply[0] == -1:
            await self._await_rebuild()
            reply = await script(keys=keys, args=args)
            if reply[0] == -1:
                raise _StillEmpty("Redis lost the budgets again while they were rebuilt")
        self._recovered()
        return list(reply)

    async def _await_rebuild(self) -> None:
        """Wait (at most `rebuild_timeout`) for this worker's one rebuild task."""
        task = self._rebuilding
        if task is None or task.done():
            task = self._rebuilding = asyncio.create_task(
                self._rebuild(), name="steerway-budget-rebuild"
            )
            task.add_done_callback(_retrieve)
        async with asyncio.timeout(self._policy.rebuild_timeout):
            await asyncio.shield(task)

    async def _rebuild(self) -> None:
        """Load the persisted spend into Redis if the sentinel is missing (see the module doc)."""
        if await self._redis.exists(self._sentinel):
            return
        now = self._clock()
        rows = await self._store.snapshot(now)
        for first in range(0, len(rows), _SEED_BATCH):
            batch = rows[first : first + _SEED_BATCH]
            args: list[Any] = []
            for row in batch:
                args += [row.spent_micros, self._expiry_ms(row.ends_by, now)]
            await self._seed(keys=[self._keys(row.key)[0] for row in batch], args=args)
        await self._redis.set(self._sentinel, str(int(now)))
        if rows:
            logger.info(
                "budget spend of %d accounts loaded into Redis from the database", len(rows)
            )

    def _keys(self, key: AccountKey) -> tuple[str, str]:
        scope, subject, window, start = key
        tail = f"{window}:{start}:{scope}:{subject}"
        return f"{self._prefix}:spend:{tail}", f"{self._prefix}:held:{tail}"

    def _failed(self, operation: str, error: BaseException) -> None:
        self._count_redis_error()
        if self._reachable:
            self._reachable = False
            logger.warning(
                "budgets: Redis failed during %s (%s); policy on_redis_error=%s",
                operation,
                type(error).__name__,
                self._policy.on_redis_error,
            )

    def _recovered(self) -> None:
        if not self._reachable:
            self._reachable = True
            logger.info("budgets: Redis is reachable again")


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
