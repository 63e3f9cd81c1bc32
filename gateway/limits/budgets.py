"""Budgets: spending limits in US dollars per key, workspace, end user and rule bucket.

A request passes every budget that applies to it (its `Charge`s). The proxy:

    reservation = await ledger.reserve(charges, max_cost_micros, now)
    # not reservation.ok: reservation.denied -> 429 insufficient_quota (denial_message()),
    #                     reservation.unavailable -> 503 limits_unavailable
    try:
        ... call the provider ...
    except BaseException:
        await ledger.release(reservation)      # failure, timeout, client gone
        raise
    settlement = await ledger.settle(reservation, actual_cost_micros)
    # settlement.soft_limits: budgets whose soft limit this request's spend crossed

The reservation holds the request's maximum cost on every budget at once or on none, so
concurrent requests can never spend past a limit together; settling charges the actual cost and
frees the rest. Windows are calendar days, weeks (from Monday) and months in the charge's time
zone, or "total". Money is integer micro-dollars.

Backends: `InProcessBudgetLedger` (one worker, no Redis) and `RedisBudgetLedger` (all workers
and replicas, one Lua script per operation). Both persist settled spend to `budget_spend`
(write-behind) and read it back: the in-process ledger at start, the Redis one whenever Redis
turns out to have lost its data. The ledger counts `steerway_budget_denied_total{scope}`,
`steerway_budget_soft_limit_total{scope}` and `steerway_redis_errors_total{concern="budgets"}`
itself.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys.limits import BudgetLimit
from gateway.limits.budget_ledger import BudgetLedger, Clock
from gateway.limits.budget_ledger_memory import InProcessBudgetLedger
from gateway.limits.budget_ledger_redis import RedisBudgetLedger
from gateway.limits.budget_model import (
    SCOPES,
    BudgetPolicy,
    BudgetState,
    Charge,
    Reservation,
    Settlement,
    reserve_micros,
    settle_micros,
)
from gateway.limits.budget_spend import SpendStore
from gateway.limits.budget_windows import window_bounds

__all__ = [
    "SCOPES",
    "BudgetLedger",
    "BudgetLimit",
    "BudgetPolicy",
    "BudgetState",
    "Charge",
    "InProcessBudgetLedger",
    "RedisBudgetLedger",
    "Reservation",
    "Settlement",
    "create_budget_ledger",
    "reserve_micros",
    "settle_micros",
    "window_bounds",
]


def create_budget_ledger(
    redis_url: str | None,
    engine: AsyncEngine | None,
    policy: BudgetPolicy | None = None,
    *,
    clock: Clock = time.time,
    spill_dir: Path | None = None,
) -> BudgetLedger:
    """The Redis ledger when a Redis URL is configured, else the in-process one; spend is
    persisted through `engine` (None: not persisted). Call `start()` before use, `close()` at
    shutdown. Spend that cannot be written on close is saved in `spill_dir` for the next start."""
    policy = policy or BudgetPolicy()
    store = SpendStore(
        engine, flush_interval=policy.flush_interval, clock=clock, spill_dir=spill_dir
    )
    if redis_url:
        return RedisBudgetLedger(redis_url, store, policy, clock=clock)
    return InProcessBudgetLedger(store, policy, clock=clock)
