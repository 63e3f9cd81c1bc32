"""What the alert evaluator learns from the gateway for its gauge metrics
(`telemetry.alerts.gauge_metrics`): the budgets that exist with their current windows, and the
deployments' circuit breakers.

Budgets are read where the ledger reads them: keys' (`api_keys.budgets`, active keys only),
workspaces' (their settings), and the config's end-user and bucket budgets, with windows cut in
`budgets.timezone` as the ledger cuts them, so an account here is the ledger's account.

Deployment health is the process's own `DeploymentHealth`: with Redis it mirrors every
process's cooldowns (within about half a second), without Redis it knows only what this
process's requests saw, so a `steerway worker` without Redis never sees a deployment down.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.file import GatewayConfig
from gateway.keys.limits import BudgetLimit
from gateway.keys.store import KeyStore
from gateway.limits.admission import budget_limits
from gateway.limits.budget_model import Charge, stored_subject
from gateway.limits.budget_windows import window_bounds
from gateway.upstream.health import DeploymentHealth
from telemetry.alerts.budget_usage import DefinedBudget
from telemetry.alerts.deployment_states import DeploymentState
from telemetry.alerts.gauge_metrics import GaugeSources


class ConfiguredBudgets:
    """A `BudgetCatalog` over the database's keys and workspaces and the config's budgets."""

    def __init__(self, engine: AsyncEngine, config: GatewayConfig) -> None:
        self._store = KeyStore(engine)
        self._timezone = config.budgets.timezone
        self._end_user = budget_limits(config.budgets.end_user)
        self._buckets = {
            name: budget_limits(specs) for name, specs in config.budgets.buckets.items()
        }

    async def __call__(self, workspace_id: str, now: datetime) -> Sequence[DefinedBudget]:
        workspace = await self._store.get_workspace(workspace_id)
        if workspace is None:
            return []
        found = [
            self._defined("workspace", workspace_id, workspace.slug, workspace_id, limit, now)
            for limit in workspace.limits.budgets
        ]
        for key in await self._store.list(workspace_id=workspace_id):
            if key.active(now):
                found += [
                    self._defined("key", key.key_id, key.name, workspace_id, limit, now)
                    for limit in key.budgets
                ]
        for bucket, limits in sorted(self._buckets.items()):
            found += [
                self._defined("bucket", bucket, bucket, workspace_id, limit, now)
                for limit in limits
            ]
        found += [
            self._defined("end_user", "", "", workspace_id, limit, now) for limit in self._end_user
        ]
        return found

    def _defined(
        self,
        scope: str,
        subject: str,
        shown: str,
        workspace_id: str,
        limit: BudgetLimit,
        now: datetime,
    ) -> DefinedBudget:
        start, _ = window_bounds(limit.window, self._timezone, now.timestamp())
        charge = Charge(scope, subject, workspace_id, limit, self._timezone)
        return DefinedBudget(
            scope=scope,
            subject=shown,
            window=limit.window,
            window_start=datetime.fromtimestamp(start, UTC),
            limit_micros=limit.limit_micros,
            soft_percent=limit.soft_percent,
            account=None if scope == "end_user" else stored_subject(charge),
        )


class BreakerStates:
    """A `DeploymentStates` over the process's circuit breakers and the config's routes."""

    def __init__(self, config: GatewayConfig, health: DeploymentHealth) -> None:
        self._config = config
        self._health = health

    def __call__(self) -> Sequence[DeploymentState]:
        now = time.time()
        cooling = {name: ends for name, ends in self._health.cooling_down().items() if ends > now}
        states: list[DeploymentState] = []
        seen: set[str] = set()
        for model, route in self._config.models.items():
            for deployment in route.deployments:
                seen.add(deployment.id)
                states.append(_state(deployment.provider, model, deployment.id, cooling))
        for name in sorted(set(cooling) - seen):
            states.append(_state(name.partition("/")[0], "", name, cooling))
        return states


def _state(
    provider: str, model: str, deployment: str, cooling: dict[str, float]
) -> DeploymentState:
    ends = cooling.get(deployment)
    until = None if ends is None else datetime.fromtimestamp(ends, UTC)
    return DeploymentState(provider, model, deployment, until)


def gauge_sources(
    engine: AsyncEngine, config: GatewayConfig, health: DeploymentHealth
) -> GaugeSources:
    """The sources `steerway serve` and `steerway worker` give their alert evaluator."""
    return GaugeSources(
        budgets=ConfiguredBudgets(engine, config), deployments=BreakerStates(config, health)
    )
