"""What both budget ledgers share: the interface, resolving charges to accounts, the verdicts.

An account is one budget's spend in one window: (scope, stored subject, window, window start).
A request's charges resolve to accounts at reservation time; the reservation, its settlement and
its release all draw on those accounts, so a request that runs across midnight is charged to the
window it started in.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.limits.budget_model import (
    SCOPES,
    AccountKey,
    BudgetPolicy,
    BudgetState,
    Charge,
    Held,
    Reservation,
    Settlement,
    stored_subject,
)
from gateway.limits.budget_spend import SpendStore
from gateway.limits.budget_windows import Windows, utc_datetime
from telemetry import metrics

Clock = Callable[[], float]

_denied = metrics.Labelled(metrics.budget_denied_total)
_soft = metrics.Labelled(metrics.budget_soft_limit_total)
_redis_errors = metrics.redis_errors_total.labels("budgets")


class BudgetLedger(Protocol):
    settles_in_place: bool
    """Whether settling a reservation finishes without waiting on anything outside this worker."""

    async def start(self) -> None:
        """Load persisted spend (or make sure Redis holds it) and start the write-behind task."""
        ...

    async def close(self) -> None:
        """Stop background work and write the spend not yet persisted."""
        ...

    async def reserve(
        self, charges: Sequence[Charge], amount_micros: int, now: float
    ) -> Reservation:
        """Hold `amount_micros` on every charge's budget, all or nothing."""
        ...

    async def settle(self, reservation: Reservation, actual_micros: int) -> Settlement:
        """Charge the actual cost and free the rest of the hold."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Free the hold without charging anything (the request failed or was abandoned)."""
        ...

    async def percent_used(self, charges: Sequence[Charge], now: float) -> dict[str, float]:
        """Settled spend as a percentage of the limit, the highest per scope:
        `{"key_percent": 42.0, "workspace_percent": 7.5}`; scopes without a charge are absent."""
        ...

    async def balances(self, accounts: Sequence[AccountKey]) -> dict[AccountKey, tuple[int, int]]:
        """(spent, reserved) micro-dollars of each account as the ledger holds it now, for the
        console; accounts it knows nothing of (or cannot read) are absent. Off the request path."""
        ...


def refused(used: int, amount: int, limit: int) -> bool:
    """A budget refuses what would take it past its limit, and anything once it is used up."""
    return used >= limit or used + amount > limit


class LedgerBase:
    settles_in_place = False

    def __init__(self, store: SpendStore, policy: BudgetPolicy, clock: Clock = time.time) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._windows = Windows()
        self._ids = itertools.count()
        self._id_prefix = os.urandom(6).hex()

    def _next_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):x}"

    def _hold(self, charges: Sequence[Charge], now: float) -> tuple[Held, ...]:
        held = []
        for charge in charges:
            if charge.scope not in SCOPES:
                raise ValueError(
                    f"unknown budget scope {charge.scope!r}; expected one of {', '.join(SCOPES)}"
                )
            window = charge.limit.window
            start, ends = self._windows.bounds(window, charge.timezone, now)
            key = (charge.scope, stored_subject(charge), window, start)
            held.append(Held(charge, key, ends))
        return tuple(held)

    @staticmethod
    def _distinct(held: Sequence[Held]) -> dict[AccountKey, Held]:
        """Each account once, with the charge that has the lowest limit on it."""
        accounts: dict[AccountKey, Held] = {}
        for item in held:
            known = accounts.get(item.key)
            if known is None or item.charge.limit.limit_micros < known.charge.limit.limit_micros:
                accounts[item.key] = item
        return accounts

    def _expiry_ms(self, ends: int | None, now: float) -> int:
        """Milliseconds an account's keys live from `now`; 0: for ever ("total")."""
        if ends is None:
            return 0
        return max(1, int((ends - now + self._policy.expiry_margin) * 1000))

    @staticmethod
    def _state(held: Held, spent: int, reserved: int) -> BudgetState:
        charge = held.charge
        return BudgetState(
            scope=charge.scope,
            subject=charge.subject,
            workspace_id=charge.workspace_id,
            window=charge.limit.window,
            limit_micros=charge.limit.limit_micros,
            spent_micros=spent,
            reserved_micros=reserved,
            resets_at=None if held.ends is None else utc_datetime(held.ends),
            soft_percent=charge.limit.soft_percent,
        )

    def _denial(
        self,
        reservation_id: str,
        held: tuple[Held, ...],
        amount: int,
        now: float,
        which: Held,
        spent: int,
        reserved: int,
    ) -> Reservation:
        _denied(which.charge.scope).inc()
        return Reservation(
            id=reservation_id,
            held=held,
            amount_micros=amount,
            now=now,
            denied=self._state(which, spent, reserved),
        )

    def _crossings(
        self, held: Sequence[Held], after: dict[AccountKey, tuple[int, int]], actual: int
    ) -> tuple[BudgetState, ...]:
        """Budgets whose spend went from below their soft limit to at or above it when
        `actual` was added; `after` holds each account's (spent, reserved) just after."""
        crossed = []
        for item in held:
            soft = item.charge.limit.soft_micros
            state = after.get(item.key)
            if soft is None or state is None:
                continue
            spent, reserved = state
            if spent - actual < soft <= spent:
                _soft(item.charge.scope).inc()
                crossed.append(self._state(item, spent, reserved))
        return tuple(crossed)

    @staticmethod
    def _percentages(held: Sequence[Held], spent: dict[AccountKey, int]) -> dict[str, float]:
        """The highest percentage per scope; accounts missing from `spent` (unknown) are left
        out, so a scope with nothing known is absent."""
        percent: dict[str, float] = {}
        for item in held:
            known = spent.get(item.key)
            if known is None:
                continue
            limit = item.charge.limit.limit_micros
            value = 100.0 * known / limit if limit else 100.0
            name = f"{item.charge.scope}_percent"
            if value > percent.get(name, -1.0):
                percent[name] = value
        return percent

    @staticmethod
    def _check_amount(amount: int, what: str) -> None:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValueError(f"{what} must be a non-negative integer of micro-dollars")

    @staticmethod
    def _count_redis_error() -> None:
        _redis_errors.inc()
