"""Budgets and rate limits for the demo history, kept as the gateway keeps them: spend per budget
window, requests per key and minute. Requests are simulated in time order, so a budget runs out
late in a busy day and a burst meets its key's rpm limit, as they would for real.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.demo.cast import Key
from gateway.keys.limits import BudgetLimit
from gateway.limits.budget_model import BudgetState, reserve_micros, settle_micros
from gateway.limits.ratelimit_model import RateRefusal


@dataclass(frozen=True, slots=True)
class Charge:
    scope: str  # key | workspace
    subject: str
    workspace_id: str
    limit: BudgetLimit

    @property
    def label(self) -> str:
        """How the budget_check decision names it."""
        return f"{self.scope}:{self.subject}:{self.limit.window}"


def charges_of(key: Key) -> tuple[Charge, ...]:
    """The budgets a request of `key` is charged to, in the gateway's order."""
    workspace = key.workspace.workspace_id
    return (
        *(Charge("key", key.key_id, workspace, limit) for limit in key.budgets),
        *(Charge("workspace", workspace, workspace, limit) for limit in key.workspace.budgets),
    )


@functools.lru_cache(maxsize=64)
def _window_of_day(window: str, day_number: int) -> tuple[int, datetime | None]:
    day = datetime.fromtimestamp(day_number * 86400, UTC)
    if window == "daily":
        return day_number * 86400, day + timedelta(days=1)
    if window == "weekly":
        start = day - timedelta(days=day.weekday())
        return int(start.timestamp()), start + timedelta(days=7)
    if window == "monthly":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return int(start.timestamp()), end
    return 0, None


def _window(limit: BudgetLimit, now: float) -> tuple[int, datetime | None]:
    """The start (epoch seconds) and end of the window `now` falls in, in UTC."""
    return _window_of_day(limit.window, int(now // 86400))


class Ledger:
    """Spend per budget window, in micro-dollars."""

    def __init__(self) -> None:
        self._spent: dict[tuple[str, str, str, int], int] = {}
        self._workspaces: dict[tuple[str, str], str] = {}

    def spend(self) -> list[tuple[tuple[str, str, str, int], str, int]]:
        """Every window's spend: ((scope, subject, window, window start), workspace, micros),
        as the gateway persists it in `budget_spend`."""
        return [
            (account, self._workspaces[(account[0], account[1])], micros)
            for account, micros in sorted(self._spent.items())
        ]

    def refusal(self, charges: tuple[Charge, ...], cost: Decimal, now: float) -> BudgetState | None:
        """The first budget that has not room for `cost` (a reservation), or None."""
        amount = reserve_micros(cost)
        for charge in charges:
            start, resets_at = _window(charge.limit, now)
            spent = self._spent.get((charge.scope, charge.subject, charge.limit.window, start), 0)
            if spent + amount > charge.limit.limit_micros:
                return self._state(charge, spent, resets_at)
        return None

    def settle(self, charges: tuple[Charge, ...], cost: Decimal, now: float) -> list[BudgetState]:
        """Add `cost` to every budget; the ones whose soft limit it crossed."""
        amount = settle_micros(cost)
        crossed = []
        for charge in charges:
            start, resets_at = _window(charge.limit, now)
            account = (charge.scope, charge.subject, charge.limit.window, start)
            self._workspaces[(charge.scope, charge.subject)] = charge.workspace_id
            before = self._spent.get(account, 0)
            after = self._spent[account] = before + amount
            soft = charge.limit.soft_percent
            if soft is not None:
                line = charge.limit.limit_micros * soft / 100
                if before < line <= after:
                    crossed.append(self._state(charge, after, resets_at))
        return crossed

    @staticmethod
    def _state(charge: Charge, spent: int, resets_at: datetime | None) -> BudgetState:
        return BudgetState(
            scope=charge.scope,
            subject=charge.subject,
            workspace_id=charge.workspace_id,
            window=charge.limit.window,
            limit_micros=charge.limit.limit_micros,
            spent_micros=spent,
            reserved_micros=0,
            resets_at=resets_at,
            soft_percent=charge.limit.soft_percent,
        )


class RequestCounter:
    """Requests admitted per key and minute, against each key's rpm limit."""

    def __init__(self) -> None:
        self._minute = -1
        self._counts: dict[str, int] = {}

    def refusal(self, key: Key, now: float) -> RateRefusal | None:
        """None when the request is admitted (and counted), else the limit that refused it."""
        limit = key.rpm_limit
        if limit is None:
            return None
        minute = int(now // 60)
        if minute != self._minute:
            self._minute = minute
            self._counts.clear()
        count = self._counts.get(key.key_id, 0)
        if count >= limit:
            return RateRefusal(
                scope="key",
                subject=key.key_id,
                kind="requests",
                limit=limit,
                retry_after=round((minute + 1) * 60 - now, 3),
            )
        self._counts[key.key_id] = count + 1
        return None
