"""`deployment_down`: 1 for each deployment in cooldown, 0 for the others.

The circuit breakers live in the gateway (`gateway.upstream.health`): with Redis every process mirrors
the shared cooldowns, without it each process knows only what its own requests saw. The
application hands the evaluator a `DeploymentStates` that reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DeploymentState:
    provider: str
    model: str
    """The model name clients ask for (the route the deployment serves)."""
    deployment: str
    cooling_until: datetime | None
    """When its cooldown ends; None while it is in rotation."""

    @property
    def down(self) -> bool:
        return self.cooling_until is not None


class DeploymentStates(Protocol):
    def __call__(self) -> Sequence[DeploymentState]:
        """Every configured deployment, and any other one cooling down, as they stand now."""
        ...
