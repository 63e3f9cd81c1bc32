"""`GET /admin/api/traces`, `/interactions`, `/decisions`, `/violations` against a running
gateway on SQLite and Postgres: filters, pages, workspace scoping and 400s naming the parameter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.keys.store import KeyStore
from telemetry.db import create_engine
from tests.admin_ui.conftest import error_of
from tests.e2e.conftest import GatewayProcess
from tests.telemetry.search_corpus import END, OTHER_WORKSPACE_SLUG, START, Corpus, make_corpus

RANGE = {"since": START.isoformat(), "until": END.isoformat()}


@pytest.fixture(scope="module")
def corpus(gateway: GatewayProcess) -> Corpus:
    async def write() -> Corpus:
        engine = create_engine(gateway.database.url)
        try:
            return await make_corpus(engine, count=60)
        finally:
            await engine.dispose()

    return asyncio.run(write())


@pytest.fixture(scope="module")
def other_admin(gateway: GatewayProcess, corpus: Corpus) -> str:
    """An admin key of the other workspace: it sees that workspace only."""

    async def create() -> str:
        engine = create_engine(gateway.database.url)
        try:
            store = KeyStore(engine)
            created = await store.create(
                "other-admin", workspace_id=corpus.other_workspace, role="master"
            )
            return created.plaintext
        finally:
            await engine.dispose()

    return asyncio.run(create())


@pytest.fixture(scope="module")
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.http() as client:
        yield client


def pages(
    http: httpx.Client, path: str, params: dict[str, Any], *, limit: int = 7
) -> Iterator[dict[str, Any]]:
    """Every page's body, following `next_cursor`."""
    cursor = None
    for _ in range(1000):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = http.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"object", "data", "next_cursor", "has_more"}
        assert body["object"] == "list" and body["has_more"] == (body["next_cursor"] is not None)
        yield body
        cursor = body["next_cursor"]
        if cursor is None:
            return
    raise AssertionError("paging did not end")


def listed(http: httpx.Client, path: str = "/admin/api/traces", **params: Any) -> list[str]:
    id_name = {
        "/admin/api/traces": "trace_id",
        "/admin/api/interactions": "interaction_id",
        "/admin/api/decisions": "decision_id",
        "/admin/api/violations": "violation_id",
    }[path]
    ids = [row[id_name] for body in pages(http, path, {**RANGE, **params}) for row in body["data"]]
    assert len(ids) == len(set(ids)), "a row came twice"
    return ids


def test_pages_of_traces_hold_every_request_once(http: httpx.Client, corpus: Corpus) -> None:
    assert set(listed(http)) == corpus.ids()
    by_duration = [
        row["duration_ms"]
        for body in pages(http, "/admin/api/traces", {**RANGE, "sort": "duration"}, limit=9)
        for row in body["data"]
    ]
    assert len(by_duration) == len(corpus.specs)
    assert by_duration == sorted(by_duration, reverse=True)


def test_a_trace_row_says_what_the_list_shows(http: httpx.Client, corpus: Corpus) -> None:
    spec = next(s for s in corpus.specs if s.status == "ok" and s.cost and s.violations)
    (row,) = http.get("/admin/api/traces", params={"request_id": spec.request_id}).json()["data"]
    assert row["trace_id"] == spec.trace_id and row["key_name"] == corpus.keys[spec.key_id]
    assert row["started_at"].endswith("Z")
    assert isinstance(row["cost_usd"], str) and Decimal(row["cost_usd"]) == spec.cost
    assert (row["requested_model"], row["provider_model"], row["provider"]) == (
        spec.model,
        spec.served_model,
        spec.provider,
    )
    assert row["guardrail_action"] == spec.guardrail_action
    assert row["total_tokens"] == 30 and row["ttft_ms"] == 40.0


FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"model": "gpt-4o-mini"}, lambda s: s.model == "gpt-4o-mini"),
    ({"status": ["denied", "cancelled"]}, lambda s: s.status in ("denied", "cancelled")),
    ({"tag": "beta,eu", "tag_match": "any"}, lambda s: bool({"beta", "eu"} & set(s.tags))),
    ({"tag": ["prod", "eu"]}, lambda s: {"prod", "eu"} <= set(s.tags)),
    ({"metadata": "team=ads"}, lambda s: s.metadata["team"] == "ads"),
    ({"min_cost": "0.0025"}, lambda s: s.cost is not None and s.cost >= Decimal("0.0025")),
    ({"rule": "r-premium"}, lambda s: "r-premium" in s.rules),
    ({"guardrail_action": "block"}, lambda s: s.guardrail_action == "block"),
    ({"cache_hit": "true"}, lambda s: s.cache_hit),
    ({"workspace": OTHER_WORKSPACE_SLUG}, lambda s: s.workspace_id != "0" * 32),
    ({"end_user": "alice", "stream": "false"}, lambda s: s.end_user == "alice" and not s.stream),
]


@pytest.mark.parametrize(("params", "wanted"), FILTERS, ids=[str(p) for p, _ in FILTERS])
def test_filters_narrow_the_list(
    http: httpx.Client, corpus: Corpus, params: dict[str, Any], wanted: Any
) -> None:
    expected = corpus.ids(where=wanted)
    assert expected and expected != corpus.ids()
    assert set(listed(http, **params)) == expected


def test_the_other_lists_filter_and_page(http: httpx.Client, corpus: Corpus) -> None:
    errors = listed(http, "/admin/api/interactions", status="error")
    assert len(errors) == sum(
        1 for s in corpus.specs for i in s.interactions if i["status"] == "error"
    )
    denied = listed(http, "/admin/api/decisions", outcome="denied", type="rate_limit")
    assert len(denied) == sum(1 for s in corpus.specs if s.status == "denied")
    masks = listed(http, "/admin/api/violations", action="mask", entity_type="EMAIL_ADDRESS")
    assert len(masks) == sum(
        1 for s in corpus.specs for g, a in s.violations if (g, a) == ("pii", "mask")
    )


def test_an_admin_of_one_workspace_never_sees_another(
    gateway: GatewayProcess, corpus: Corpus, other_admin: str
) -> None:
    other = corpus.other_workspace
    default_spec = next(s for s in corpus.specs if s.workspace_id != other)
    default_key = default_spec.key_id
    with gateway.http(other_admin) as http:
        assert set(listed(http)) == corpus.ids(scope=other)
        assert listed(http, key=default_key) == []
        assert listed(http, request_id=default_spec.request_id) == []
        assert listed(http, trace_id=default_spec.trace_id) == []
        for path in ("/admin/api/interactions", "/admin/api/decisions", "/admin/api/violations"):
            rows = [row for body in pages(http, path, RANGE, limit=50) for row in body["data"]]
            assert rows and {row["workspace_id"] for row in rows} == {other}, path
        error = error_of(http.get("/admin/api/traces", params={"workspace": "default"}), 404)
        assert error["param"] == "workspace"
        unscoped = listed(http, workspace=OTHER_WORKSPACE_SLUG)
        assert set(unscoped) == corpus.ids(scope=other)


BAD_PARAMETERS = [
    ("/admin/api/traces", {"status": "broken"}, "status"),
    ("/admin/api/traces", {"limit": "500"}, "limit"),
    ("/admin/api/traces", {"last": "soon"}, "last"),
    ("/admin/api/traces", {"since": "2026-02-30"}, "since"),
    ("/admin/api/traces", {"min_cost": "cheap"}, "min_cost"),
    ("/admin/api/traces", {"colour": "red"}, "colour"),
    ("/admin/api/traces", {"model": "\x00"}, "model"),
    ("/admin/api/interactions", {"attempt": "-1"}, "attempt"),
    ("/admin/api/interactions", {"min_score": "101"}, "min_score"),
    ("/admin/api/decisions", {"sort": "cost"}, "sort"),
    ("/admin/api/violations", {"direction": "sideways"}, "direction"),
]


@pytest.mark.parametrize(("path", "params", "param"), BAD_PARAMETERS)
def test_bad_parameters_are_a_400_naming_them(
    http: httpx.Client, path: str, params: dict[str, str], param: str
) -> None:
    error = error_of(http.get(path, params=params), 400)
    assert error["param"] == param, error


def test_a_changed_or_foreign_cursor_is_a_400(http: httpx.Client, corpus: Corpus) -> None:
    first = http.get("/admin/api/traces", params={**RANGE, "limit": 3}).json()
    cursor = first["next_cursor"]
    assert cursor
    changed = cursor[:15] + ("B" if cursor[15] != "B" else "C") + cursor[15 + 1 :]
    for params in (
        {**RANGE, "limit": 3, "cursor": changed},
        {**RANGE, "limit": 3, "cursor": cursor[:-4]},
        {**RANGE, "limit": 3, "cursor": cursor, "model": "gpt-4o"},
        {**RANGE, "limit": 3, "cursor": cursor, "sort": "duration"},
    ):
        error = error_of(http.get("/admin/api/traces", params=params), 400)
        assert (error["param"], error["code"]) == ("cursor", "invalid_cursor")
    error = error_of(http.get("/admin/api/interactions", params={"cursor": cursor}), 400)
    assert error["param"] == "cursor"
    second = http.get("/admin/api/traces", params={**RANGE, "limit": 3, "cursor": cursor})
    assert second.status_code == 200
    assert not {r["trace_id"] for r in second.json()["data"]} & {
        r["trace_id"] for r in first["data"]
    }


def test_requests_served_and_refused_are_listed_with_their_summary(
    gateway: GatewayProcess, http: httpx.Client
) -> None:
    served = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "hello there"}],
        extra_headers={"x-steerway-tags": "search-api-test", "x-request-id": "search-served"},
    )
    limited = asyncio.run(_key_for_another_model(gateway.database.url))
    with gateway.http(limited) as client:
        refused = client.post(
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-request-id": "search-refused"},
        )
    assert refused.status_code == 403
    trace_id = served.headers["x-steerway-trace-id"]
    gateway.database.wait_rows(
        "SELECT 1 FROM traces WHERE request_id IN ('search-served', 'search-refused')", count=2
    )
    (row,) = http.get("/admin/api/traces", params={"tag": "search-api-test", "last": "1h"}).json()[
        "data"
    ]
    assert row["trace_id"] == trace_id and row["status"] == "ok"
    assert row["deployment"] and row["provider"] == "mock"
    assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"] > 0
    interactions = http.get(f"/admin/api/traces/{trace_id}").json()["interactions"]
    costs = [Decimal(i["cost_usd"]) for i in interactions if i["cost_usd"] is not None]
    assert costs, "the mock's model has a price: the answer has a cost"
    assert Decimal(row["cost_usd"]) == sum(costs, Decimal(0))
    (denied,) = http.get(
        "/admin/api/traces", params={"status": "denied", "request_id": "search-refused"}
    ).json()["data"]
    assert (denied["http_status"], denied["error_type"]) == (403, "model_not_allowed")
    assert denied["key_name"] == "search-limited"


async def _key_for_another_model(url: str) -> str:
    """A key that may not use the mock model: its requests are refused by policy."""
    engine = create_engine(url)
    try:
        created = await KeyStore(engine).create(
            "search-limited", allowed_models=["some-other-model"]
        )
        return created.plaintext
    finally:
        await engine.dispose()


def test_the_document_lists_each_lists_parameters(gateway: GatewayProcess) -> None:
    paths = httpx.get(f"{gateway.url}/admin/api/openapi.json", timeout=10).json()["paths"]
    for path, own in (
        ("/admin/api/traces", {"status", "tag", "tag_match", "metadata", "min_cost", "rule"}),
        (
            "/admin/api/interactions",
            {"attempt", "operation", "finish_reason", "evaluated", "evaluator", "min_score"}
            | {"max_score", "eval_flag"},
        ),
        ("/admin/api/decisions", {"type", "outcome", "rule", "component"}),
        ("/admin/api/violations", {"guardrail", "kind", "entity_type", "action"}),
    ):
        names = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert own | {"since", "until", "last", "workspace", "key", "cursor", "limit"} <= names
