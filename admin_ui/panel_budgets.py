"""The budgets panel: every budget the viewer's workspaces have, with what its current window has
spent, what running requests hold, what is left, when it resets, and where the window's spend
is projected to be at its end.

Budgets come from where the gateway reads them: keys' (`api_keys.budgets`), workspaces'
(their settings), and the config's per end user and per bucket (`budgets.end_user`,
`budgets.buckets`, each account kept per workspace). Windows are cut in the config's
`budgets.timezone` exactly as the ledger cuts them.

- **Spent** is the larger of the `budget_spend` table (every worker's settled spend, written
  behind within about half a second) and the running ledger's own count (fresher for its own
  requests).
- **Reserved** is what requests running now hold, from the ledger: shared by every worker with
  Redis, this worker's own requests without it.
- **Projected**: for a key's or a workspace's daily, weekly or monthly budget with a week of
  daily spend behind it, spent plus the forecast of the window's remaining days from that
  spend (`admin_ui.budget_projection`), with its 80 % interval; otherwise the window's average
  rate so far carried to its end: spent * window length / time elapsed. A "total" budget has no
  end and no projection; in the first minute of a window there is too little to project from.

End-user budgets apply to each end user separately: the panel lists the `MAX_END_USERS` who
spent most in each window and counts the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.analytics_names import Names
from admin_ui.budget_projection import (
    FORECAST_SCOPES,
    FORECAST_WINDOWS,
    BudgetProjection,
    forecast_window,
    histories,
)
from gateway.config.file import GatewayConfig
from gateway.keys.limits import BudgetLimit
from gateway.limits.admission import budget_limits
from gateway.limits.budget_ledger import BudgetLedger
from gateway.limits.budget_ledger_memory import InProcessBudgetLedger
from gateway.limits.budget_model import AccountKey, Charge, stored_subject
from gateway.limits.budget_windows import window_bounds
from telemetry.schema import budget_spend

MAX_END_USERS: Final = 10
MIN_PROJECTION_SECONDS: Final = 60
SCOPE_TITLES: Final = {
    "workspace": "Workspace",
    "key": "Key",
    "end_user": "End user",
    "bucket": "Bucket",
}
_SCOPE_ORDER: Final = {"workspace": 0, "key": 1, "bucket": 2, "end_user": 3}
_WINDOW_ORDER: Final = {"daily": 0, "weekly": 1, "monthly": 2, "total": 3}


def _usd(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6)


def project(spent_micros: int, start: float, end: float | None, now: float) -> int | None:
    """The window's spend at its end if it keeps its average rate so far (micro-dollars)."""
    if end is None:
        return None
    elapsed = now - start
    if elapsed < MIN_PROJECTION_SECONDS:
        return None
    return round(spent_micros * (end - start) / min(elapsed, end - start))


@dataclass(frozen=True, slots=True)
class BudgetRow:
    scope: str
    subject: str
    """What the budget is for, as shown: a key's name, a workspace's slug, an end user."""
    workspace: str
    """The workspace's slug."""
    window: str
    limit_micros: int
    spent_micros: int
    reserved_micros: int | None
    """None when the ledger could not say (Redis unreachable, or no ledger running)."""
    resets_at: datetime | None
    projected_micros: int | None
    soft_percent: float | None
    key_id: str | None = None
    forecast: BudgetProjection | None = None
    """The forecast behind `projected_micros`; None when the projection is linear."""

    @property
    def limit_usd(self) -> Decimal:
        return _usd(self.limit_micros)

    @property
    def spent_usd(self) -> Decimal:
        return _usd(self.spent_micros)

    @property
    def reserved_usd(self) -> Decimal | None:
        return None if self.reserved_micros is None else _usd(self.reserved_micros)

    @property
    def remaining_usd(self) -> Decimal:
        used = self.spent_micros + (self.reserved_micros or 0)
        return _usd(max(self.limit_micros - used, 0))

    @property
    def projected_usd(self) -> Decimal | None:
        return None if self.projected_micros is None else _usd(self.projected_micros)

    @property
    def projection_note(self) -> str:
        """How the projection was made, for the cell's hover."""
        if self.projected_micros is None:
            return ""
        if self.forecast is None:
            return "Linear: the window's average rate so far, carried to its end."
        low, high = _usd(self.forecast.lower_micros), _usd(self.forecast.upper_micros)
        return (
            f"Forecast ({self.forecast.method}) of the window's remaining days from its daily "
            f"spend; 80 % interval ${low:.2f} to ${high:.2f}."
        )

    @property
    def used_fraction(self) -> float:
        if not self.limit_micros:
            return 1.0
        return (self.spent_micros + (self.reserved_micros or 0)) / self.limit_micros

    @property
    def tone(self) -> str:
        """error: used up; warning: past its soft limit or projected past its limit."""
        if self.used_fraction >= 1:
            return "error"
        soft = self.soft_percent
        if soft is not None and self.used_fraction * 100 >= soft:
            return "warning"
        if self.projected_micros is not None and self.projected_micros > self.limit_micros:
            return "warning"
        return "ok"


@dataclass(frozen=True, slots=True)
class BudgetsView:
    rows: list[BudgetRow]
    more_end_users: int
    """End users with an end-user budget and spend this window, beyond those listed."""
    reserved_from: str
    """"shared" (Redis), "worker" (this worker's requests) or "none" (no ledger)."""
    timezone: str
    several_workspaces: bool = False
    """The budgets are of more than one workspace (each row says whose)."""


@dataclass(frozen=True, slots=True)
class _Budget:
    scope: str
    subject: str
    workspace_id: str
    limit: BudgetLimit


def _defined(
    names: Names,
    scope: str | None,
    config: GatewayConfig | None,
    now: datetime,
    keys: Sequence[str] | None,
) -> list[_Budget]:
    budgets = []
    for workspace in names.workspaces.values():
        if scope is not None and workspace.workspace_id != scope:
            continue
        for limit in workspace.limits.budgets:
            budgets.append(
                _Budget("workspace", workspace.workspace_id, workspace.workspace_id, limit)
            )
    for key in names.keys.values():
        if scope is not None and key.workspace_id != scope:
            continue
        if not key.active(now) or (keys is not None and key.key_id not in keys):
            continue
        for limit in key.budgets:
            budgets.append(_Budget("key", key.key_id, key.workspace_id, limit))
    if config is not None:
        for bucket, specs in config.budgets.buckets.items():
            for limit in budget_limits(specs):
                for workspace_id in names.workspaces:
                    if scope is None or workspace_id == scope:
                        budgets.append(_Budget("bucket", bucket, workspace_id, limit))
    return budgets


def _window_starts(
    windows: Iterable[str], timezone: str, now: float
) -> dict[str, tuple[int, int | None]]:
    return {window: window_bounds(window, timezone, now) for window in set(windows)}


async def _table_spend(
    engine: AsyncEngine,
    workspace_ids: Sequence[str],
    bounds: dict[str, tuple[int, int | None]],
) -> dict[AccountKey, tuple[str, int]]:
    """The persisted spend of the current windows: account → (workspace id, micro-dollars)."""
    if not bounds or not workspace_ids:
        return {}
    table = budget_spend
    current = sa.or_(
        *(
            sa.and_(
                table.c.window == window,
                table.c.window_start == datetime.fromtimestamp(start, UTC),
            )
            for window, (start, _) in bounds.items()
        )
    )
    statement = sa.select(
        table.c.workspace_id,
        table.c.scope,
        table.c.subject,
        table.c.window,
        table.c.window_start,
        table.c.spent_micros,
    ).where(table.c.workspace_id.in_(list(workspace_ids)), current)
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    found: dict[AccountKey, tuple[str, int]] = {}
    for workspace_id, scope, subject, window, _, spent in rows:
        start = bounds[window][0]
        found[(scope, subject, window, start)] = (workspace_id, int(spent))
    return found


def _reserved_from(ledger: BudgetLedger | None) -> str:
    if ledger is None:
        return "none"
    return "worker" if isinstance(ledger, InProcessBudgetLedger) else "shared"


async def read_budgets(
    engine: AsyncEngine,
    *,
    names: Names,
    scope: str | None,
    config: GatewayConfig | None,
    ledger: BudgetLedger | None,
    keys: Sequence[str] | None = None,
    end_users: Sequence[str] | None = None,
    now: datetime | None = None,
) -> BudgetsView:
    """Every budget of the viewer's workspaces (`scope`: the one shown, or None for all);
    `keys` and `end_users`, when given, keep only those keys' and end users' budgets (the
    workspaces' and buckets' stay: those keys draw on them too)."""
    moment = now or datetime.now(UTC)
    epoch = moment.timestamp()
    timezone = config.budgets.timezone if config is not None else "UTC"
    budgets = _defined(names, scope, config, moment, keys)
    end_user_limits = budget_limits(config.budgets.end_user) if config is not None else ()
    windows = [b.limit.window for b in budgets] + [limit.window for limit in end_user_limits]
    bounds = _window_starts(windows, timezone, epoch)
    workspace_ids = [w for w in names.workspaces if scope is None or w == scope]
    persisted = await _table_spend(engine, workspace_ids, bounds)

    accounts: list[tuple[_Budget, AccountKey]] = []
    for budget in budgets:
        charge = Charge(budget.scope, budget.subject, budget.workspace_id, budget.limit, timezone)
        start = bounds[budget.limit.window][0]
        accounts.append(
            (budget, (budget.scope, stored_subject(charge), budget.limit.window, start))
        )
    more_end_users = 0
    for limit in end_user_limits:
        start = bounds[limit.window][0]
        spenders = sorted(
            (
                (spent, key, workspace_id)
                for key, (workspace_id, spent) in persisted.items()
                if key[0] == "end_user"
                and key[2] == limit.window
                and key[3] == start
                and (end_users is None or key[1].partition("/")[2] in end_users)
            ),
            key=lambda item: (-item[0], item[1]),
        )
        more_end_users += max(len(spenders) - MAX_END_USERS, 0)
        for _, key, workspace_id in spenders[:MAX_END_USERS]:
            subject = key[1].partition("/")[2]
            accounts.append((_Budget("end_user", subject, workspace_id, limit), key))

    balances = await ledger.balances([key for _, key in accounts]) if ledger is not None else {}
    forecast_subjects: dict[str, set[str]] = {}
    for budget, _ in accounts:
        if budget.scope in FORECAST_SCOPES and budget.limit.window in FORECAST_WINDOWS:
            forecast_subjects.setdefault(budget.scope, set()).add(budget.subject)
    daily = await histories(engine, forecast_subjects, now=moment, scope=scope)
    rows = []
    for budget, key in accounts:
        start, end = bounds[budget.limit.window]
        in_table = persisted.get(key, ("", 0))[1]
        in_ledger = balances.get(key)
        spent = max(in_table, in_ledger[0] if in_ledger is not None else 0)
        reserved = in_ledger[1] if in_ledger is not None else (0 if ledger is not None else None)
        forecast = None
        if budget.limit.window in FORECAST_WINDOWS:
            forecast = forecast_window(spent, end, epoch, daily.get((budget.scope, budget.subject)))
        rows.append(
            BudgetRow(
                scope=budget.scope,
                subject=_subject_label(names, budget),
                workspace=names.workspace_slug(budget.workspace_id),
                window=budget.limit.window,
                limit_micros=budget.limit.limit_micros,
                spent_micros=spent,
                reserved_micros=reserved,
                resets_at=None if end is None else datetime.fromtimestamp(end, UTC),
                projected_micros=(
                    forecast.expected_micros
                    if forecast is not None
                    else project(spent, start, end, epoch)
                ),
                soft_percent=budget.limit.soft_percent,
                key_id=budget.subject if budget.scope == "key" else None,
                forecast=forecast,
            )
        )
    rows.sort(
        key=lambda row: (
            _SCOPE_ORDER.get(row.scope, 9),
            row.workspace,
            row.subject if row.scope != "end_user" else "",
            -row.spent_micros if row.scope == "end_user" else 0,
            _WINDOW_ORDER.get(row.window, 9),
        )
    )
    return BudgetsView(
        rows=rows,
        more_end_users=more_end_users,
        reserved_from=_reserved_from(ledger),
        timezone=timezone,
        several_workspaces=len({row.workspace for row in rows}) > 1,
    )


def _subject_label(names: Names, budget: _Budget) -> str:
    if budget.scope == "key":
        return names.key_label(budget.subject)
    if budget.scope == "workspace":
        return names.workspace_slug(budget.subject)
    return budget.subject
