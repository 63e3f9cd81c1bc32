"""Route resolution: a public model name to one of its deployments, with the reason recorded."""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Mapping
from itertools import accumulate

import msgspec

from gateway.config import Deployment, GatewayConfig
from gateway.errors import model_not_found
from providers.base import ProviderAdapter
from providers.pricing import ModelPrice, PriceTable


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """A deployment ready to call: its adapter built and its price looked up once."""

    public_model: str
    deployment: Deployment
    adapter: ProviderAdapter
    price: ModelPrice | None

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
    """The deployments of one public model, chosen by weighted random."""

    def __init__(self, name: str, targets: list[Target]) -> None:
        self.name = name
        self.targets = targets
        self._cumulative = list(accumulate(t.deployment.weight for t in targets))
        self._total = self._cumulative[-1] if targets else 0.0
        self._candidates: list[dict[str, object]] = [
            {"deployment": t.deployment.id, "weight": t.deployment.weight} for t in targets
        ]
        if len(targets) == 1:
            self._single: Selection | None = Selection(
                targets[0], "the only deployment of this model", self._candidates
            )
        else:
            self._single = None

    def select(self) -> Selection:
        if self._single is not None:
            return self._single
        index = bisect(self._cumulative, random.random() * self._total)
        target = self.targets[min(index, len(self.targets) - 1)]
        weights = ":".join(f"{t.deployment.weight:g}" for t in self.targets)
        return Selection(
            target,
            f"weighted random among {len(self.targets)} deployments (weights {weights})",
            self._candidates,
        )


class Router:
    def __init__(self, routes: dict[str, Route]) -> None:
        self._routes = routes

    @classmethod
    def from_config(
        cls, config: GatewayConfig, adapters: Mapping[str, ProviderAdapter], prices: PriceTable
    ) -> Router:
        routes = {}
        for name, model in config.models.items():
            targets = [
                Target(
                    public_model=name,
                    deployment=deployment,
                    adapter=adapters[deployment.provider],
                    price=deployment.price_in(prices),
                )
                for deployment in model.deployments
            ]
            if targets:
                routes[name] = Route(name, targets)
        return cls(routes)

    def resolve(self, model: str) -> Route:
        route = self._routes.get(model)
        if route is None:
            raise model_not_found(model)
        return route

    def __contains__(self, model: object) -> bool:
        return model in self._routes

    @property
    def model_names(self) -> list[str]:
        return list(self._routes)

    def providers(self) -> set[str]:
        return {t.provider for route in self._routes.values() for t in route.targets}
