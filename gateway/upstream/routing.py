"""Route resolution: a public model name to one of its deployments, with the reason recorded.

Each route picks among the deployments that are healthy (not cooling down) and have capacity
left this minute, by its strategy: weighted random, lowest recent latency, or fewest requests
in flight. Capacity and latency are this worker's view; cooldowns are shared when Redis is.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

import msgspec

from gateway.config.file import Deployment, GatewayConfig, ModelRoute
from gateway.errors import model_not_found
from providers.base import ProviderAdapter
from providers.http_client import Timeouts
from providers.pricing import ModelPrice, PriceTable

if TYPE_CHECKING:
    from gateway.upstream.health import DeploymentHealth

LATENCY_SMOOTHING = 0.2
"""Weight of the newest sample in the latency EWMA."""


class DeploymentLoad:
    """One worker's running view of a deployment: in flight, latency, use this minute."""

    __slots__ = ("ewma_ms", "in_flight", "minute", "requests", "tokens")

    def __init__(self) -> None:
        self.in_flight = 0
        self.ewma_ms: float | None = None
        self.minute = 0
        self.requests = 0
        self.tokens = 0

    def _roll(self, minute: int) -> None:
        if minute != self.minute:
            self.minute = minute
            self.requests = 0
            self.tokens = 0

    def has_room(self, deployment: Deployment, tokens: int, minute: int) -> bool:
        self._roll(minute)
        if deployment.rpm is not None and self.requests >= deployment.rpm:
            return False
        return deployment.tpm is None or self.tokens + max(tokens, 0) <= deployment.tpm

    def started(self, tokens: int, minute: int) -> None:
        """Count a request's tokens; a count below zero counts as none, so no request can
        lower what the minute has used."""
        self._roll(minute)
        self.requests += 1
        self.tokens += max(tokens, 0)
        self.in_flight += 1

    def finished(self, latency_ms: float | None) -> None:
        self.in_flight -= 1
        if latency_ms is not None:
            previous = self.ewma_ms
            self.ewma_ms = (
                latency_ms
                if previous is None
                else previous + LATENCY_SMOOTHING * (latency_ms - previous)
            )


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """A deployment ready to call: adapter, price and timeouts resolved once at startup."""

    public_model: str
    deployment: Deployment
    id: str
    """`deployment.id`, spelled once: it is read several times a request."""
    adapter: ProviderAdapter
    price: ModelPrice | None
    timeout: Timeouts
    first_token_timeout: float
    load: DeploymentLoad

    @property
    def provider(self) -> str:
        return self.deployment.provider

    @property
    def provider_model(self) -> str:
        return self.deployment.model


class Selection(msgspec.Struct, frozen=True):
    target: Target
    reasoning: str
    candidates: list[dict[str, object]]


class Route:
    """The deployments of one public model and how to choose among them."""

    def __init__(self, config: ModelRoute, targets: list[Target]) -> None:
        self.name = config.name
        self.config = config
        self.targets = targets
        self.strategy = config.strategy
        self._single = len(targets) == 1

    def select(
        self,
        health: DeploymentHealth,
        *,
        tokens: int = 0,
        avoid: Collection[str] = (),
    ) -> Selection | None:
        """A deployment for the next attempt, or None when none is healthy with room left.

        `avoid` holds deployments that already failed this request: they are chosen again only
        when nothing else is available.
        """
        now = time.time()
        minute = int(now // 60)
        usable: list[Target] = []
        skipped: list[str] = []
        for target in self.targets:
            if not health.available(target.id, now):
                skipped.append(f"{target.id} cooling down")
            elif not target.load.has_room(target.deployment, tokens, minute):
                skipped.append(f"{target.id} at its rpm/tpm capacity")
            else:
                usable.append(target)
        if not usable:
            return None
        fresh = ([t for t in usable if t.id not in avoid] or usable) if avoid else usable
        if self._single or len(fresh) == 1:
            target = fresh[0]
            reason = (
                "the only deployment of this model"
                if self._single
                else "the only usable deployment left"
            )
        elif self.strategy == "latency":
            target = min(fresh, key=lambda t: (t.load.ewma_ms or 0.0, random.random()))
            reason = f"lowest recent latency among {len(fresh)} deployments"
        elif self.strategy == "least_busy":
            target = min(fresh, key=lambda t: (t.load.in_flight, random.random()))
            reason = f"fewest requests in flight among {len(fresh)} deployments"
        else:
            target = random.choices(fresh, weights=[t.deployment.weight for t in fresh])[0]
            weights = ":".join(f"{t.deployment.weight:g}" for t in fresh)
            reason = f"weighted random among {len(fresh)} deployments (weights {weights})"
        if skipped:
            reason += "; skipped " + ", ".join(skipped)
        candidates: list[dict[str, object]] = [
            {
                "deployment": t.id,
                "weight": t.deployment.weight,
                "in_flight": t.load.in_flight,
                "latency_ms": None if t.load.ewma_ms is None else round(t.load.ewma_ms, 3),
            }
            for t in usable
        ]
        return Selection(target, reason, candidates)


class Router:
    def __init__(
        self, routes: dict[str, Route], direct: Callable[[str, str], Route] | None = None
    ) -> None:
        self._routes = routes
        self._make_direct = direct
        self._direct: dict[tuple[str, str], Route] = {}

    @classmethod
    def from_config(
        cls, config: GatewayConfig, adapters: Mapping[str, ProviderAdapter], prices: PriceTable
    ) -> Router:
        loads: dict[str, DeploymentLoad] = {}  # one per deployment, whichever models share it

        def target(name: str, model: ModelRoute, deployment: Deployment) -> Target:
            adapter = adapters[deployment.provider]
            provider = config.providers[deployment.provider]
            overrides = model.timeouts
            return Target(
                public_model=name,
                deployment=deployment,
                id=deployment.id,
                adapter=adapter,
                price=deployment.price_in(prices),
                timeout=adapter.timeout(
                    connect=overrides.connect,
                    first_byte=overrides.first_token,
                    total=overrides.total,
                ),
                first_token_timeout=overrides.first_token or provider.timeouts.first_byte,
                load=loads.setdefault(deployment.id, DeploymentLoad()),
            )

        routes = {}
        for name, model in config.models.items():
            targets = [target(name, model, deployment) for deployment in model.deployments]
            if targets:
                routes[name] = Route(model, targets)

        def direct(provider: str, provider_model: str) -> Route:
            deployment = Deployment(provider=provider, model=provider_model)
            model = ModelRoute(name=deployment.id, deployments=(deployment,))
            return Route(model, [target(deployment.id, model, deployment)])

        return cls(routes, direct)

    def resolve(self, model: str) -> Route:
        route = self._routes.get(model)
        if route is None:
            raise model_not_found(model)
        return route

    def direct(self, provider: str, model: str) -> Route:
        """A route straight to one provider's model (a steering rule's `{provider, model}`),
        built on first use: one deployment, no retries or fallbacks of its own."""
        key = (provider, model)
        route = self._direct.get(key)
        if route is None:
            if self._make_direct is None:
                raise model_not_found(f"{provider}/{model}")
            route = self._direct[key] = self._make_direct(provider, model)
        return route

    def __contains__(self, model: object) -> bool:
        return model in self._routes

    @property
    def model_names(self) -> list[str]:
        return list(self._routes)

    def deployments(self) -> list[str]:
        return sorted({t.id for route in self._routes.values() for t in route.targets})
