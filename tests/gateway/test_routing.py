"""Choosing a deployment: strategies, health, capacity and the deployments to avoid."""

from __future__ import annotations

from collections import Counter

from gateway.config.file import parse_config
from gateway.upstream.health import InProcessHealth
from gateway.upstream.routing import Route, Router
from providers.openai import OpenAIAdapter
from providers.pricing import PriceTable
from providers.upstream import UpstreamClient


def _route(strategy: str = "weighted", **deployment_extra: object) -> Route:
    config = parse_config(
        {
            "providers": {"p": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}},
            "models": {
                "m": {
                    "strategy": strategy,
                    "deployments": [
                        {"provider": "p", "model": "a", "weight": 3, **deployment_extra},
                        {"provider": "p", "model": "b", "weight": 1},
                    ],
                }
            },
        },
        {},
    )
    adapter = OpenAIAdapter(
        "p", base_url="http://127.0.0.1:9/v1", api_key=None, client=UpstreamClient()
    )
    return Router.from_config(config, {"p": adapter}, PriceTable.shipped()).resolve("m")


def _picks(route: Route, health: InProcessHealth, n: int = 400, **kwargs: object) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _ in range(n):
        selection = route.select(health, **kwargs)  # type: ignore[arg-type]
        assert selection is not None
        counts[selection.target.provider_model] += 1
    return counts


def test_weighted_random_follows_the_weights() -> None:
    counts = _picks(_route(), InProcessHealth(), n=2000)
    assert 0.65 < counts["a"] / 2000 < 0.85


def test_latency_strategy_prefers_the_fastest() -> None:
    route = _route("latency")
    a, b = route.targets
    a.load.started(0, 0)
    a.load.finished(80.0)
    b.load.started(0, 0)
    b.load.finished(20.0)
    assert _picks(route, InProcessHealth(), n=50) == Counter({"b": 50})
    for _ in range(20):
        b.load.started(0, 0)
        b.load.finished(500.0)
    assert _picks(route, InProcessHealth(), n=50) == Counter({"a": 50})


def test_least_busy_prefers_fewest_in_flight() -> None:
    route = _route("least_busy")
    route.targets[0].load.in_flight = 5
    assert _picks(route, InProcessHealth(), n=50) == Counter({"b": 50})


async def test_cooling_deployments_are_skipped_and_the_reason_says_so() -> None:
    from gateway.upstream.health import CooldownPolicy

    route = _route()
    health = InProcessHealth()
    await health.failure("p/a", CooldownPolicy(failures=1, window=60, period=60))
    assert _picks(route, health, n=50) == Counter({"b": 50})
    selection = route.select(health)
    assert selection is not None
    assert "p/a cooling down" in selection.reasoning
    await health.failure("p/b", CooldownPolicy(failures=1, window=60, period=60))
    assert route.select(health) is None


def test_avoided_deployments_are_a_last_resort() -> None:
    route = _route()
    health = InProcessHealth()
    assert _picks(route, health, n=50, avoid={"p/a"}) == Counter({"b": 50})
    assert _picks(route, health, n=50, avoid={"p/a", "p/b"}).total() == 50


def test_rpm_capacity_excludes_a_full_deployment() -> None:
    route = _route(rpm=2)
    a = route.targets[0]
    minute = 1000
    assert a.load.has_room(a.deployment, 0, minute)
    a.load.started(0, minute)
    a.load.started(0, minute)
    assert not a.load.has_room(a.deployment, 0, minute)
    assert a.load.has_room(a.deployment, 0, minute + 1)  # a new minute, a new allowance


def test_tpm_capacity_counts_tokens() -> None:
    route = _route(tpm=100)
    a = route.targets[0]
    a.load.started(60, 5)
    assert a.load.has_room(a.deployment, 40, 5)
    assert not a.load.has_room(a.deployment, 41, 5)


def test_a_negative_token_count_cannot_lower_the_minutes_tpm_count() -> None:
    route = _route(tpm=100)
    a = route.targets[0]
    a.load.started(90, 5)
    a.load.started(-1_000_000, 5)
    assert a.load.tokens == 90
    assert not a.load.has_room(a.deployment, 11, 5)
    assert a.load.has_room(a.deployment, -50, 5)  # counts as 0, not as room for 60 more
    assert not a.load.has_room(a.deployment, 11, 5)
