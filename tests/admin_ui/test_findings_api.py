"""`/admin/api/insights` against a running gateway on SQLite and Postgres, over a planted week
(`tests.telemetry.insights_history`) in two workspaces: a workspace's admin reads its own
insights only, an operator reads one workspace or every one, and bad parameters are 400s in
OpenAI's shape naming the parameter."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from telemetry.db import create_engine
from tests.admin_ui.conftest import error_of, workspace_keys
from tests.admin_ui.html_page import Page
from tests.e2e.conftest import GatewayProcess
from tests.telemetry.insights_history import END, START, Planted, plant_insights

API = "/admin/api/insights"
RANGE = {"from": f"{START:%Y-%m-%dT%H:%M:%SZ}", "to": f"{END:%Y-%m-%dT%H:%M:%SZ}"}


@dataclass(frozen=True)
class World:
    alpha_slug: str
    alpha_admin: str
    bravo_slug: str
    bravo_admin: str
    alpha: Planted
    bravo: Planted


@pytest.fixture(scope="module")
def world(gateway: GatewayProcess) -> World:
    alpha_slug, alpha_admin, _ = workspace_keys(gateway, "alpha")
    bravo_slug, bravo_admin, _ = workspace_keys(gateway, "bravo")
    with gateway.http() as http:
        ids = [
            http.get(f"/admin/api/workspaces/{s}").json()["id"] for s in (alpha_slug, bravo_slug)
        ]

    async def plant() -> tuple[Planted, Planted]:
        engine = create_engine(gateway.database.url)
        try:
            alpha = await plant_insights(engine, ids[0], "ws-nobody-sees")
            bravo = await plant_insights(engine, ids[1], "ws-nobody-sees-either")
            return alpha, bravo
        finally:
            await engine.dispose()

    alpha, bravo = asyncio.run(plant())
    return World(alpha_slug, alpha_admin, bravo_slug, bravo_admin, alpha, bravo)


def get(
    gateway: GatewayProcess, path: str, credential: str | None = None, **params: Any
) -> httpx.Response:
    with gateway.http(credential) as client:
        return client.get(httpx.URL(path).copy_merge_params(params))


def body_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_a_workspace_admin_reads_its_own_insights(gateway: GatewayProcess, world: World) -> None:
    body = body_of(get(gateway, f"{API}/", world.alpha_admin, **RANGE))
    assert body["object"] == "insights"
    assert (body["from"], body["to"]) == (RANGE["from"], RANGE["to"])

    cheaper = body["cheaper_models"]
    (suggestion,) = cheaper["suggestions"]
    assert (suggestion["current"], suggestion["candidate"]) == ("gpt-4o", "gpt-4o-mini")
    assert suggestion["verdict"] == "equal_quality"
    assert Decimal(suggestion["monthly_saving"]) == Decimal("3.86")
    assert Decimal(suggestion["saving_per_request"]) == Decimal("0.009")
    assert suggestion["score_difference"]["mean"] == -1.0
    (assistant,) = (w for w in cheaper["workloads"] if w["requested_model"] == "assistant")
    served = {m["provider_model"]: m for m in assistant["served"]}
    assert served["gpt-4o"]["scores"]["count"] == 40
    assert served["gpt-4o"]["scores"]["lower"] < 80 < served["gpt-4o"]["scores"]["upper"]
    assert Decimal(served["gpt-4o"]["cost_per_request"]) == Decimal("0.01")

    repeats = body["repeats"]
    (group,) = repeats["groups"]
    assert (group["requested_model"], group["requests"], group["repeats"]) == ("faq", 5, 4)
    assert Decimal(group["saving"]) == Decimal("0.04") == Decimal(repeats["saving"])
    for link in group["example_traces"]:
        assert link["trace_id"] in world.alpha.faq_traces
        assert link["url"] == f"/admin/traces/{link['trace_id']}"
    assert any("no stored prompt" in note for note in repeats["notes"])

    limits = body["max_tokens"]
    flagged = [g for g in limits["groups"] if g["flagged"]]
    assert [g["requested_model"] for g in flagged] == ["summariser"]
    assert flagged[0]["typical_max_tokens"] == 4096
    assert flagged[0]["completion_tokens"]["max"] == 200
    assert flagged[0]["key"] == {"id": "key1", "name": None}

    errors = body["errors"]
    assert errors["errors"] == 8
    rate = errors["groups"][0]
    assert (rate["provider"], rate["error_type"], rate["count"]) == ("openai", "rate_limit", 6)
    assert rate["summary"] is None
    assert {t["trace_id"] for t in rate["example_traces"]} <= set(world.alpha.rate_limit_traces)
    assert str(world.bravo.rate_limit_traces[0]) not in str(body)


def test_each_part_has_its_own_endpoint(gateway: GatewayProcess, world: World) -> None:
    for part, field in (
        ("cheaper_models", "workloads"),
        ("repeats", "groups"),
        ("max_tokens", "groups"),
        ("errors", "groups"),
    ):
        body = body_of(get(gateway, f"{API}/{part}", world.bravo_admin, **RANGE))
        assert body["object"] == f"insights.{part}"
        assert body[field], part
    errors = body_of(get(gateway, f"{API}/errors", world.bravo_admin, **RANGE))
    assert {t["trace_id"] for g in errors["groups"] for t in g["example_traces"]} <= {
        *world.bravo.rate_limit_traces,
        *world.bravo.overloaded_traces,
    }


def test_the_margin_and_minimum_change_the_verdicts(gateway: GatewayProcess, world: World) -> None:
    strict = body_of(
        get(gateway, f"{API}/cheaper_models", world.alpha_admin, margin="0.5", **RANGE)
    )
    verdicts = {
        (c["current"], c["candidate"]): c["verdict"]
        for w in strict["workloads"]
        for c in w["comparisons"]
    }
    # -1.0 points, interval -1.9 to -0.1: across -0.5, and wholly below 0.
    assert verdicts[("gpt-4o", "gpt-4o-mini")] == "inconclusive"
    assert strict["suggestions"] == []
    none_lost = body_of(
        get(gateway, f"{API}/cheaper_models", world.alpha_admin, margin="0", **RANGE)
    )
    (assistant,) = (w for w in none_lost["workloads"] if w["requested_model"] == "assistant")
    (mini,) = (
        c
        for c in assistant["comparisons"]
        if c["candidate"] == "gpt-4o-mini" and c["current"] == "gpt-4o"
    )
    assert mini["verdict"] == "worse"
    loose = body_of(
        get(gateway, f"{API}/cheaper_models", world.alpha_admin, min_samples="5", **RANGE)
    )
    verdicts = {
        (c["current"], c["candidate"]): c["verdict"]
        for w in loose["workloads"]
        for c in w["comparisons"]
    }
    assert verdicts[("gpt-4o", "tiny")] != "not_enough_data"


def test_an_operator_reads_one_workspace_or_every_one(
    gateway: GatewayProcess, world: World
) -> None:
    one = body_of(get(gateway, f"{API}/errors", workspace=world.alpha_slug, **RANGE))
    assert one["errors"] == 8
    every = body_of(get(gateway, f"{API}/errors", **RANGE))
    # both workspaces, and the two workspaces the plants filled without making them
    assert every["errors"] == 32


def test_another_workspace_is_not_found(gateway: GatewayProcess, world: World) -> None:
    error = error_of(
        get(gateway, f"{API}/", world.alpha_admin, workspace=world.bravo_slug, **RANGE), 404
    )
    assert world.bravo_slug in error["message"] or error["code"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"margin": "abc"}, "margin"),
        ({"margin": "51"}, "margin"),
        ({"min_samples": "2"}, "min_samples"),
        ({"last": "200d"}, "last"),
        ({"from": "2024-05-10T00:00:00Z", "to": "2024-05-01T00:00:00Z"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"colour": "blue"}, "colour"),
        ({"margin": ["1", "2"]}, "margin"),
    ],
)
def test_bad_parameters_are_400s_naming_them(
    gateway: GatewayProcess, world: World, params: dict[str, Any], param: str
) -> None:
    error = error_of(get(gateway, f"{API}/", world.alpha_admin, **params), 400)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_the_api_reference_describes_the_endpoints(gateway: GatewayProcess) -> None:
    paths = body_of(get(gateway, "/admin/api/openapi.json"))["paths"]
    for part in ("", "/cheaper_models", "/repeats", "/max_tokens", "/errors"):
        assert f"{API}{part}" in paths or f"{API}{part}/" in paths, part


# --- the page, on both backends (the browser test runs on SQLite) ------------------------------


def test_the_page_shows_the_workspaces_insights_only(gateway: GatewayProcess, world: World) -> None:
    response = get(gateway, "/admin/insights", world.alpha_admin, **RANGE)
    assert response.status_code == 200, response.text
    page = Page(response.text)
    assert page.element("cheaper-suggestions").tag == "table"
    assert "gpt-4o-mini" in response.text and "$3.86" in response.text
    # two of the repeated request's traces link to their pages
    linked = [t for t in world.alpha.faq_traces if f'href="/admin/traces/{t}"' in response.text]
    assert len(linked) == 2
    assert not any(trace in response.text for trace in world.bravo.rate_limit_traces)


def test_the_page_refuses_a_range_too_long_to_read(gateway: GatewayProcess, world: World) -> None:
    response = get(
        gateway,
        "/admin/insights",
        world.alpha_admin,
        **{"from": "2024-01-01T00:00:00Z", "to": "2024-06-01T00:00:00Z"},
    )
    assert response.status_code == 400
    problem = Page(response.text).element("range-problem")
    assert "at most 92 days" in problem.text
