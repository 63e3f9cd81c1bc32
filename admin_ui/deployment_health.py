"""The deployments' circuit breakers as the Performance page shows them: each configured
deployment, in rotation or cooling down and until when.

The breaker lives in memory (`gateway.upstream.health`): without Redis each worker process keeps its own,
so the page shows the breaker of the worker that answered it, which another worker's may
differ from; with Redis every worker mirrors the shared cooldowns within about half a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.config.file import GatewayConfig
from gateway.upstream.health import DeploymentHealth, RedisHealth


@dataclass(frozen=True, slots=True)
class DeploymentState:
    model: str
    deployment: str
    provider: str
    weight: float
    cooling_until: datetime | None

    @property
    def available(self) -> bool:
        return self.cooling_until is None


@dataclass(frozen=True, slots=True)
class HealthView:
    deployments: list[DeploymentState]
    shared: bool
    """True when the breaker is shared through Redis; False: this worker's own view."""
    degraded: bool
    """Shared, but Redis is unreachable: this worker runs on its own view meanwhile."""

    @property
    def cooling(self) -> int:
        return sum(1 for state in self.deployments if not state.available)


def read_health(
    config: GatewayConfig | None, health: DeploymentHealth, now: float | None = None
) -> HealthView:
    moment = time.time() if now is None else now
    cooling = {name: ends for name, ends in health.cooling_down().items() if ends > moment}
    states = []
    seen = set()
    if config is not None:
        for model, route in config.models.items():
            for deployment in route.deployments:
                ends = cooling.get(deployment.id)
                seen.add(deployment.id)
                states.append(
                    DeploymentState(
                        model=model,
                        deployment=deployment.id,
                        provider=deployment.provider,
                        weight=deployment.weight,
                        cooling_until=None if ends is None else datetime.fromtimestamp(ends, UTC),
                    )
                )
    for name, ends in sorted(cooling.items()):
        if name not in seen:
            states.append(
                DeploymentState(
                    model="",
                    deployment=name,
                    provider=name.partition("/")[0],
                    weight=0.0,
                    cooling_until=datetime.fromtimestamp(ends, UTC),
                )
            )
    shared = isinstance(health, RedisHealth)
    return HealthView(
        deployments=states,
        shared=shared,
        degraded=shared and isinstance(health, RedisHealth) and health.degraded,
    )
