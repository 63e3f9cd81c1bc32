"""`budget_used_pct`: how much of each budget's current window is spent, in percent.

Which budgets exist and where their windows begin is the gateway's business (keys' and
workspaces' budgets, the config's end-user and bucket budgets, its time zone): the application
hands the evaluator a `BudgetCatalog` that lists them. The spend is read here, from
`budget_spend`: what every worker and replica settled, written behind within about half a
second. Reservations (what running requests hold) are not counted: a reservation is a
request's largest possible cost, mostly given back when it ends, and the ledger's soft limit
is crossed by settled spend too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.schema import budget_spend


@dataclass(frozen=True, slots=True)
class DefinedBudget:
    """One budget of a workspace, with its current window."""

    scope: str
    """`key`, `workspace`, `end_user` or `bucket`."""
    subject: str
    """As people know it: a key's name, a workspace's slug, a bucket's name; for `end_user`,
    filled in per end user from the spend (leave it empty)."""
    window: str
    """`daily`, `weekly`, `monthly` or `total`."""
    window_start: datetime
    limit_micros: int
    soft_percent: float | None
    account: str | None
    """The subject as `budget_spend` stores it; None for an end-user budget, which applies to
    every end user separately (each has an account `<workspace id>/<user>`)."""


class BudgetCatalog(Protocol):
    async def __call__(self, workspace_id: str, now: datetime) -> Sequence[DefinedBudget]:
        """The workspace's budgets at `now`, each with the window holding `now`."""
        ...


@dataclass(frozen=True, slots=True)
class BudgetUse:
    scope: str
    subject: str
    window: str
    spent_micros: int
    limit_micros: int
    soft_percent: float | None

    def percent(self, of_soft_limit: bool) -> float | None:
        """Spent in percent of the limit, or of the soft limit (None without one)."""
        if of_soft_limit:
            if self.soft_percent is None:
                return None
            soft = self.limit_micros * self.soft_percent / 100
            return 100.0 * self.spent_micros / soft
        return 100.0 * self.spent_micros / self.limit_micros


async def budget_uses(
    engine: AsyncEngine, workspace_id: str, budgets: Sequence[DefinedBudget]
) -> list[BudgetUse]:
    """Each budget's spend in its current window; an end-user budget once per end user who
    spent in it (one who spent nothing is at 0 %)."""
    if not budgets:
        return []
    table = budget_spend
    windows = {(budget.scope, budget.window, budget.window_start) for budget in budgets}
    statement = sa.select(
        table.c.scope, table.c.subject, table.c.window, table.c.window_start, table.c.spent_micros
    ).where(
        table.c.workspace_id == workspace_id,
        sa.or_(
            *(
                sa.and_(
                    table.c.scope == scope,
                    table.c.window == window,
                    table.c.window_start == start,
                )
                for scope, window, start in sorted(windows)
            )
        ),
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    spent: dict[tuple[str, str, str], int] = {}
    for scope, subject, window, _, micros in rows:
        spent[(scope, subject, window)] = int(micros)
    uses: list[BudgetUse] = []
    prefix = f"{workspace_id}/"
    for budget in budgets:
        if budget.account is not None:
            micros = spent.get((budget.scope, budget.account, budget.window), 0)
            uses.append(_use(budget, budget.subject, micros))
            continue
        for (scope, subject, window), micros in sorted(spent.items()):
            if scope == budget.scope and window == budget.window and subject.startswith(prefix):
                uses.append(_use(budget, subject.removeprefix(prefix), micros))
    return uses


def _use(budget: DefinedBudget, subject: str, micros: int) -> BudgetUse:
    return BudgetUse(
        budget.scope, subject, budget.window, micros, budget.limit_micros, budget.soft_percent
    )
