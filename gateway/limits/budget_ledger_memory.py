"""The in-process budget ledger: one worker's dicts, no Redis.

Atomicity comes from the event loop: `reserve` checks every budget and commits the hold with no
`await` in between, so concurrent requests in this worker are serialised without a lock. Spend is
loaded from `budget_spend` at start and written back by the write-behind store.

A live reservation is remembered with its expiry (`now` + `reservation_ttl`) in a heap; each
`reserve` first frees the holds of reservations whose expiry has passed, so a request that never
settles (a bug, a cancelled task that skipped its `finally`) cannot hold money for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Sequence

from gateway.limits.budget_ledger import Clock, LedgerBase, refused
from gateway.limits.budget_model import (
    NO_SETTLEMENT,
    AccountKey,
    BudgetPolicy,
    Charge,
    Held,
    Reservation,
    Settlement,
)
from gateway.limits.budget_spend import SpendStore

_SWEEP_INTERVAL = 60.0


class _Account:
    __slots__ = ("ends", "reserved", "spent")

    def __init__(self, ends: int | None, spent: int = 0) -> None:
        self.ends = ends
        self.spent = spent
        self.reserved = 0


class InProcessBudgetLedger(LedgerBase):
    settles_in_place = True

    def __init__(
        self,
        store: SpendStore,
        policy: BudgetPolicy | None = None,
        *,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(store, policy or BudgetPolicy(), clock)
        self._accounts: dict[AccountKey, _Account] = {}
        # reservation id -> (accounts held, amount, expiry)
        self._live: dict[str, tuple[tuple[AccountKey, ...], int, float]] = {}
        self._expiries: list[tuple[float, str]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self._store.start()
        for row in await self._store.load_current(self._clock()):
            account = self._accounts.get(row.key)
            if account is None:
                self._accounts[row.key] = _Account(row.ends_by, row.spent_micros)
            else:
                account.spent += row.spent_micros
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="steerway-budget-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self._store.close()

    async def reserve(
        self, charges: Sequence[Charge], amount_micros: int, now: float
    ) -> Reservation:
        self._check_amount(amount_micros, "a reservation")
        held = self._hold(charges, now)
        reservation_id = self._next_id()
        if not held:
            return Reservation(id=reservation_id, held=held, amount_micros=amount_micros, now=now)
        self._expire(now)
        for item in held:
            account = self._accounts.get(item.key)
            spent, reserved = (account.spent, account.reserved) if account else (0, 0)
            if refused(spent + reserved, amount_micros, item.charge.limit.limit_micros):
                return self._denial(reservation_id, held, amount_micros, now, item, spent, reserved)
        accounts = self._accounts_for(held)
        for key in accounts:
            self._accounts[key].reserved += amount_micros
        expires = now + self._policy.reservation_ttl
        self._live[reservation_id] = (accounts, amount_micros, expires)
        heapq.heappush(self._expiries, (expires, reservation_id))
        return Reservation(id=reservation_id, held=held, amount_micros=amount_micros, now=now)

    async def settle(self, reservation: Reservation, actual_micros: int) -> Settlement:
        self._check_amount(actual_micros, "a settlement")
        if reservation.finished:
            return NO_SETTLEMENT
        reservation.finished = True
        self._unhold(reservation.id)
        if not actual_micros or not reservation.held:
            return NO_SETTLEMENT
        after: dict[AccountKey, tuple[int, int]] = {}
        for key, item in self._distinct(reservation.held).items():
            account = self._accounts.get(key)
            if account is None:
                account = self._accounts[key] = _Account(item.ends)
            account.spent += actual_micros
            after[key] = (account.spent, account.reserved)
            self._store.add(key, item.charge.workspace_id, actual_micros)
        return Settlement(self._crossings(reservation.held, after, actual_micros))

    async def release(self, reservation: Reservation) -> None:
        if reservation.finished:
            return
        reservation.finished = True
        self._unhold(reservation.id)

    async def percent_used(self, charges: Sequence[Charge], now: float) -> dict[str, float]:
        held = self._hold(charges, now)
        spent = {}
        for item in held:
            account = self._accounts.get(item.key)
            spent[item.key] = 0 if account is None else account.spent
        return self._percentages(held, spent)

    async def balances(self, accounts: Sequence[AccountKey]) -> dict[AccountKey, tuple[int, int]]:
        found = {}
        for key in accounts:
            account = self._accounts.get(key)
            if account is not None:
                found[key] = (account.spent, account.reserved)
        return found

    def _accounts_for(self, held: Sequence[Held]) -> tuple[AccountKey, ...]:
        keys = []
        for key, item in self._distinct(held).items():
            if key not in self._accounts:
                self._accounts[key] = _Account(item.ends)
            keys.append(key)
        return tuple(keys)

    def _unhold(self, reservation_id: str) -> None:
        live = self._live.pop(reservation_id, None)
        if live is None:
            return
        keys, amount, _ = live
        for key in keys:
            account = self._accounts.get(key)
            if account is not None:
                account.reserved -= amount

    def _expire(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            _, reservation_id = heapq.heappop(expiries)
            live = self._live.get(reservation_id)
            if live is not None and live[2] <= now:
                self._unhold(reservation_id)
        # Settled reservations leave their heap entries behind; rebuild before they pile up.
        if len(expiries) > 2 * len(self._live) + 1024:
            self._expiries = [(expires, rid) for rid, (_, _, expires) in self._live.items()]
            heapq.heapify(self._expiries)

    def _sweep(self, now: float) -> None:
        """Forget accounts whose window ended more than `expiry_margin` ago and hold nothing."""
        margin = self._policy.expiry_margin
        stale = [
            key
            for key, account in self._accounts.items()
            if account.ends is not None and account.ends + margin < now and not account.reserved
        ]
        for key in stale:
            del self._accounts[key]

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL)
            self._sweep(self._clock())
