"""What the console reads of a running budget ledger: each account's spent and reserved money,
on the in-process backend and through a real Redis (`make_ledger` runs both)."""

from __future__ import annotations

from gateway.limits.budget_model import AccountKey, Charge, stored_subject
from gateway.limits.budget_windows import window_bounds
from tests.gateway.test_budgets import NOW, MakeLedger, charge, make_ledger

__all__ = ["make_ledger"]


def account(budget: Charge) -> AccountKey:
    start, _ = window_bounds(budget.limit.window, budget.timezone, NOW)
    return (budget.scope, stored_subject(budget), budget.limit.window, start)


async def test_balances_are_the_spent_and_the_held_money_of_each_account(
    make_ledger: MakeLedger,
) -> None:
    ledger = await make_ledger()
    daily = charge(10_000, "daily", subject="key-balances")
    monthly = charge(90_000, "monthly", scope="workspace", subject="ws-balances")
    idle = charge(5_000, "weekly", subject="key-never-used")
    settled = await ledger.reserve([daily, monthly], 700, NOW)
    await ledger.settle(settled, 250)
    running = await ledger.reserve([daily], 400, NOW)
    assert running.ok

    found = await ledger.balances([account(daily), account(monthly), account(idle)])

    assert found[account(daily)] == (250, 400)
    assert found[account(monthly)] == (250, 0)
    assert account(idle) not in found
    await ledger.release(running)
    assert (await ledger.balances([account(daily)]))[account(daily)] == (250, 0)
    assert await ledger.balances([]) == {}
