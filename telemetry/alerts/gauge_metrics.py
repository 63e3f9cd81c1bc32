"""Rule metrics that are read as they stand at the evaluation, not from the roll-ups over a
window: `budget_used_pct` (how much of each budget's current window is spent) and
`deployment_down` (1 for each deployment in cooldown, 0 for the others).

Their values come from what only the gateway knows (which budgets exist and their windows,
the deployments' circuit breakers), handed to the evaluator by the application as
`GaugeSources`; the budgets' spend is read from the database (`budget_usage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from telemetry.alerts.budget_usage import BudgetCatalog
    from telemetry.alerts.deployment_states import DeploymentStates

BUDGET_USED_PCT: Final = "budget_used_pct"
DEPLOYMENT_DOWN: Final = "deployment_down"
GAUGE_WINDOW_S: Final = 300
"""The only `window` a gauge rule takes: the default, as a rule that leaves it out has."""
BUDGET_KINDS: Final = ("limit", "soft_limit")
"""`kind` of `budget_used_pct`: percent of the limit (the default) or of the soft limit."""


@dataclass(frozen=True, slots=True)
class Gauge:
    title: str
    unit: str
    """As shown in notifications: `%` or empty."""
    dimensions: tuple[str, ...]
    """What the metric is grouped and filtered by."""


GAUGES: Final = {
    BUDGET_USED_PCT: Gauge("Budget used", "%", ("budget", "subject", "window")),
    DEPLOYMENT_DOWN: Gauge("Deployment down", "", ("provider", "model", "deployment")),
}


@dataclass(frozen=True, slots=True)
class GaugeSources:
    """What the application gives the evaluator for the gauge metrics; a source left out
    measures nothing (its rules have no data)."""

    budgets: BudgetCatalog | None = None
    deployments: DeploymentStates | None = None


def is_gauge(metric: str) -> bool:
    return metric in GAUGES
