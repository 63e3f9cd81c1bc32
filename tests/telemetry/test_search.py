"""The search functions on SQLite and Postgres: each filter finds exactly the rows it must, pages
hold every row once in order (rows with equal times included), a reader scoped to a workspace
sees nothing of another, and a cursor of another query is refused."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry import search as search_module
from telemetry.db import create_engine
from telemetry.schema import DEFAULT_WORKSPACE_ID
from telemetry.search import (
    CommonFilter,
    Cursor,
    DecisionFilter,
    InteractionFilter,
    InvalidCursor,
    Page,
    TraceFilter,
    ViolationFilter,
    search_decisions,
    search_interactions,
    search_traces,
    search_violations,
)
from tests.e2e.conftest import Database, backend_database
from tests.telemetry.search_corpus import END, START, Corpus, Spec, make_corpus, trace_id_at

__all__ = ["backend_database"]

IN_RANGE: dict[str, Any] = {"since": START, "until": END}


@pytest.fixture(scope="module")
async def engine(backend_database: Database) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(backend_database.url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def corpus(engine: AsyncEngine) -> Corpus:
    return await make_corpus(engine)


Search = Callable[..., Awaitable[Page[Any]]]


async def every_row(
    engine: AsyncEngine,
    search: Search,
    filters: CommonFilter,
    *,
    scope: str | None = None,
    sort: str = "newest",
    limit: int = 7,
) -> list[Any]:
    """Every page's rows, in order, following the cursors."""
    rows: list[Any] = []
    cursor = None
    for _ in range(1000):
        page = await search(engine, filters, scope=scope, sort=sort, limit=limit, cursor=cursor)
        assert len(page.rows) <= limit
        rows += page.rows
        if page.next_cursor is None:
            return rows
        assert len(page.rows) == limit
        cursor = Cursor.decode(page.next_cursor)
    raise AssertionError("paging did not end")


async def found_traces(engine: AsyncEngine, scope: str | None = None, **filters: Any) -> set[str]:
    rows = await every_row(
        engine, search_traces, TraceFilter(**{**IN_RANGE, **filters}), scope=scope
    )
    ids = [row.trace_id for row in rows]
    assert len(ids) == len(set(ids))
    return set(ids)


def metadata_is(key: str, value: Any) -> Callable[[Spec], bool]:
    return lambda s: s.metadata.get(key) == value and type(s.metadata.get(key)) is type(value)


TRACE_FILTERS: list[tuple[str, dict[str, Any], Callable[[Spec], bool]]] = [
    ("model", {"models": ("gpt-4o",)}, lambda s: s.model == "gpt-4o"),
    ("models", {"models": ("gpt-4o", "claude-3-5")}, lambda s: s.model != "gpt-4o-mini"),
    ("served model", {"served_models": ("claude-3-5-2024",)}, lambda s: s.served_model == "claude-3-5-2024"),
    ("provider", {"providers": ("openai",)}, lambda s: s.provider == "openai"),
    ("deployment", {"deployments": ("anthropic-east",)}, lambda s: s.deployment == "anthropic-east"),
    ("status ok", {"statuses": ("ok",)}, lambda s: s.status == "ok"),
    ("status denied", {"statuses": ("denied",)}, lambda s: s.status == "denied"),
    ("statuses", {"statuses": ("error", "cancelled")}, lambda s: s.status in ("error", "cancelled")),
    ("error type", {"error_types": ("client_disconnected",)}, lambda s: s.status == "cancelled"),
    ("http status", {"http_statuses": (502,)}, lambda s: s.http_status == 502),
    ("end user", {"end_users": ("alice",)}, lambda s: s.end_user == "alice"),
    ("tags any", {"tags_any": ("beta", "eu")}, lambda s: bool({"beta", "eu"} & set(s.tags))),
    ("tags all", {"tags_all": ("prod", "eu")}, lambda s: {"prod", "eu"} <= set(s.tags)),
    ("metadata text", {"metadata": (("team", "ads"),)}, metadata_is("team", "ads")),
    ("metadata number", {"metadata": (("tier", "2"),)}, metadata_is("tier", 2)),
    ("metadata boolean", {"metadata": (("beta", "true"),)}, metadata_is("beta", True)),
    (
        "metadata, both",
        {"metadata": (("team", "search"), ("tier", "3"))},
        lambda s: s.metadata["team"] == "search" and s.metadata["tier"] == 3,
    ),
    ("no such metadata", {"metadata": (("team", "2"),)}, lambda s: False),
    ("min duration", {"min_duration_ms": 500.0}, lambda s: s.duration_ms >= 500),
    ("duration range", {"min_duration_ms": 100.0, "max_duration_ms": 1000.0}, lambda s: 100 <= s.duration_ms <= 1000),
    ("min cost", {"min_cost_usd": Decimal("0.002")}, lambda s: s.cost is not None and s.cost >= Decimal("0.002")),
    ("max cost", {"max_cost_usd": Decimal("0.001")}, lambda s: s.cost is not None and s.cost <= Decimal("0.001")),
    ("cache hit", {"cache_hit": True}, lambda s: s.cache_hit),
    ("no cache hit", {"cache_hit": False}, lambda s: not s.cache_hit),
    ("guardrail triggered", {"guardrail_triggered": True}, lambda s: bool(s.violations)),
    ("no guardrail", {"guardrail_triggered": False}, lambda s: not s.violations),
    ("guardrail", {"guardrails": ("secrets",)}, lambda s: any(g == "secrets" for g, _ in s.violations)),
    ("guardrail action", {"guardrail_actions": ("mask",)}, lambda s: s.guardrail_action == "mask"),
    ("rule", {"rules": ("r-eu",)}, lambda s: "r-eu" in s.rules),
    ("rules", {"rules": ("r-eu", "r-premium")}, lambda s: bool(s.rules)),
    ("streamed", {"stream": True}, lambda s: s.stream),
    ("not streamed", {"stream": False}, lambda s: not s.stream),
    ("operation", {"operations": ("messages",)}, lambda s: s.operation == "messages"),
    ("operations", {"operations": ("chat", "completions")}, lambda s: s.operation != "messages"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "wanted"), [c[1:] for c in TRACE_FILTERS], ids=[c[0] for c in TRACE_FILTERS]
)
async def test_each_trace_filter_finds_exactly_its_requests(
    engine: AsyncEngine, corpus: Corpus, filters: dict[str, Any], wanted: Callable[[Spec], bool]
) -> None:
    expected = corpus.ids(where=wanted)
    assert (await found_traces(engine, **filters)) == expected
    if expected:
        assert expected != corpus.ids(), "the corpus does not tell this filter's effect"
    else:
        assert filters.get("metadata") == (("team", "2"),)


async def test_time_key_workspace_and_id_filters(engine: AsyncEngine, corpus: Corpus) -> None:
    specs = sorted(corpus.specs, key=lambda s: s.started_at)
    middle = specs[len(specs) // 2].started_at + timedelta(microseconds=500)
    assert await found_traces(engine, since=middle, until=END) == {
        s.trace_id for s in specs if s.started_at > middle
    }
    assert await found_traces(engine, since=START, until=middle) == {
        s.trace_id for s in specs if s.started_at < middle
    }
    key = next(iter(corpus.keys))
    assert await found_traces(engine, api_key_ids=(key,)) == corpus.ids(
        where=lambda s: s.key_id == key
    )
    assert await found_traces(engine, workspace_ids=(corpus.other_workspace,)) == corpus.ids(
        scope=corpus.other_workspace
    )
    target = specs[5]
    assert await found_traces(engine, request_ids=(target.request_id,)) == {target.trace_id}
    assert await found_traces(engine, trace_id_prefix=target.trace_id) == {target.trace_id}
    prefix = target.trace_id[:11]
    assert await found_traces(engine, trace_id_prefix=prefix) == corpus.ids(
        where=lambda s: s.trace_id.startswith(prefix)
    )
    for length in (8, 9, 10, 12, 16):  # the time the prefix names bounds the scan, never the result
        assert await found_traces(engine, trace_id_prefix=target.trace_id[:length]) == corpus.ids(
            where=lambda s, length=length: s.trace_id.startswith(target.trace_id[:length])
        )


async def test_a_trace_row_carries_its_summary_and_key_name(
    engine: AsyncEngine, corpus: Corpus
) -> None:
    spec = next(s for s in corpus.specs if s.status == "ok" and s.rules and s.violations)
    (row,) = (
        await search_traces(engine, TraceFilter(request_ids=(spec.request_id,)), scope=None)
    ).rows
    assert row.key_name == corpus.keys[spec.key_id]
    assert (row.requested_model, row.provider_model, row.provider) == (
        spec.model,
        spec.served_model,
        spec.provider,
    )
    assert (row.status, row.http_status, row.end_user) == ("ok", 200, spec.end_user)
    assert row.deployment == spec.deployment
    assert row.cost_usd == spec.cost and row.total_tokens == 30
    assert row.ttft_ms == 40.0
    assert row.rules_matched == spec.rules
    assert row.guardrail_action == spec.guardrail_action
    assert row.tags == spec.tags
    assert row.started_at.utcoffset() == timedelta(0)
    assert abs(row.started_at - spec.started_at) < timedelta(milliseconds=1)


@pytest.mark.parametrize("sort", ["newest", "duration", "cost"])
async def test_pages_hold_every_row_once_in_order(
    engine: AsyncEngine, corpus: Corpus, sort: str
) -> None:
    rows = await every_row(engine, search_traces, TraceFilter(**IN_RANGE), sort=sort, limit=6)
    ids = [row.trace_id for row in rows]
    assert len(ids) == len(set(ids))
    if sort == "cost":
        assert set(ids) == corpus.ids(where=lambda s: s.cost is not None)
    else:
        assert set(ids) == corpus.ids()
    key = {
        "newest": lambda r: (r.started_at, r.trace_id),
        "duration": lambda r: (r.duration_ms, r.trace_id),
        "cost": lambda r: (r.cost_usd, r.trace_id),
    }[sort]
    assert [key(r) for r in rows] == sorted((key(r) for r in rows), reverse=True)
    starts = [r.started_at for r in rows]
    assert len(set(starts)) < len(starts), "the corpus must hold requests with equal times"


async def test_a_scoped_reader_sees_its_workspace_only(engine: AsyncEngine, corpus: Corpus) -> None:
    other = corpus.other_workspace
    assert await found_traces(engine, scope=other) == corpus.ids(scope=other)
    assert await found_traces(engine, scope=DEFAULT_WORKSPACE_ID) == corpus.ids(
        scope=DEFAULT_WORKSPACE_ID
    )
    assert corpus.ids(scope=other) and corpus.ids(scope=DEFAULT_WORKSPACE_ID)
    default_key = next(k for k, s in _key_workspaces(corpus).items() if s == DEFAULT_WORKSPACE_ID)
    assert not await found_traces(engine, scope=other, workspace_ids=(DEFAULT_WORKSPACE_ID,))
    assert not await found_traces(engine, scope=other, api_key_ids=(default_key,))
    default_only = {s.request_id for s in corpus.specs if s.workspace_id == DEFAULT_WORKSPACE_ID}
    assert not await found_traces(engine, scope=other, request_ids=tuple(default_only)[:20])
    for search, filters in (
        (search_interactions, InteractionFilter(**IN_RANGE)),
        (search_decisions, DecisionFilter(**IN_RANGE)),
        (search_violations, ViolationFilter(**IN_RANGE)),
    ):
        rows = await every_row(engine, search, filters, scope=other, limit=50)
        assert rows and {row.workspace_id for row in rows} == {other}
        assert {row.trace_id for row in rows} <= corpus.ids(scope=other)


def _key_workspaces(corpus: Corpus) -> dict[str, str]:
    return {s.key_id: s.workspace_id for s in corpus.specs}


def interactions_of(corpus: Corpus, where: Callable[[Spec, dict[str, Any]], bool]) -> int:
    return sum(1 for s in corpus.specs for i in s.interactions if where(s, i))


INTERACTION_FILTERS: list[tuple[str, dict[str, Any], Callable[[Spec, dict[str, Any]], bool]]] = [
    ("model", {"models": ("claude-3-5",)}, lambda s, i: s.model == "claude-3-5"),
    ("status", {"statuses": ("error",)}, lambda s, i: i["status"] == "error"),
    ("attempt", {"attempts": (2,)}, lambda s, i: i["attempt"] == 2),
    ("latency", {"min_duration_ms": 400.0}, lambda s, i: i["latency_ms"] >= 400),
    ("cache hit", {"cache_hit": True}, lambda s, i: i["cache_hit"]),
    ("cost", {"min_cost_usd": Decimal("0.003")}, lambda s, i: i["cost"] is not None and i["cost"] >= Decimal("0.003")),
    ("trace's end user", {"end_users": ("bob",)}, lambda s, i: s.end_user == "bob"),
    ("trace's tags", {"tags_all": ("beta",)}, lambda s, i: "beta" in s.tags),
    ("trace's metadata", {"metadata": (("team", "ads"),)}, lambda s, i: s.metadata["team"] == "ads"),
    ("streamed", {"stream": True}, lambda s, i: s.stream),
]  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "wanted"),
    [c[1:] for c in INTERACTION_FILTERS],
    ids=[c[0] for c in INTERACTION_FILTERS],
)
async def test_interaction_filters(
    engine: AsyncEngine,
    corpus: Corpus,
    filters: dict[str, Any],
    wanted: Callable[[Spec, dict[str, Any]], bool],
) -> None:
    rows = await every_row(engine, search_interactions, InteractionFilter(**IN_RANGE, **filters))
    assert len({r.interaction_id for r in rows}) == len(rows)
    expected = interactions_of(corpus, wanted)
    assert 0 < len(rows) == expected < interactions_of(corpus, lambda s, i: True)


async def test_interactions_sort_by_latency_and_page_through(
    engine: AsyncEngine, corpus: Corpus
) -> None:
    rows = await every_row(
        engine, search_interactions, InteractionFilter(**IN_RANGE), sort="duration", limit=9
    )
    assert len(rows) == interactions_of(corpus, lambda s, i: True)
    assert len({r.interaction_id for r in rows}) == len(rows)
    latencies = [(r.latency_ms, r.interaction_id) for r in rows]
    assert latencies == sorted(latencies, reverse=True)


DECISION_FILTERS: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ("type", {"types": ("rate_limit",)}, lambda d: d["type"] == "rate_limit"),
    ("outcome", {"outcomes": ("denied",)}, lambda d: d["type"] == "rate_limit" and not d["output"]["allowed"]),
    ("rule", {"rules": ("r-premium",)}, lambda d: d.get("rule_id") == "r-premium"),
    ("component", {"components": ("router",)}, lambda d: d["component"] == "router"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "wanted"), [c[1:] for c in DECISION_FILTERS], ids=[c[0] for c in DECISION_FILTERS]
)
async def test_decision_filters(
    engine: AsyncEngine,
    corpus: Corpus,
    filters: dict[str, Any],
    wanted: Callable[[dict[str, Any]], bool],
) -> None:
    rows = await every_row(engine, search_decisions, DecisionFilter(**IN_RANGE, **filters))
    expected = sum(1 for s in corpus.specs for d in s.decisions if wanted(d))
    total = sum(len(s.decisions) for s in corpus.specs)
    assert 0 < len(rows) == expected < total
    assert len({r.decision_id for r in rows}) == len(rows)


async def test_decisions_of_a_key_are_found_through_their_requests(
    engine: AsyncEngine, corpus: Corpus
) -> None:
    key = next(iter(corpus.keys))
    rows = await every_row(
        engine, search_decisions, DecisionFilter(**IN_RANGE, api_key_ids=(key,)), limit=40
    )
    assert {r.trace_id for r in rows} == corpus.ids(where=lambda s: s.key_id == key)
    assert len(rows) == sum(len(s.decisions) for s in corpus.specs if s.key_id == key)


VIOLATION_FILTERS: list[tuple[str, dict[str, Any], Callable[[str, str], bool]]] = [
    ("guardrail", {"guardrails": ("pii",)}, lambda g, a: g == "pii"),
    ("kind", {"kinds": ("secrets",)}, lambda g, a: g == "secrets"),
    ("entity type", {"entity_types": ("EMAIL_ADDRESS",)}, lambda g, a: g == "pii"),
    ("action", {"actions": ("mask", "block")}, lambda g, a: a in ("mask", "block")),
    ("direction", {"directions": ("output",)}, lambda g, a: g == "secrets"),
    ("no such entity", {"entity_types": ("IBAN",)}, lambda g, a: False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "wanted"), [c[1:] for c in VIOLATION_FILTERS], ids=[c[0] for c in VIOLATION_FILTERS]
)
async def test_violation_filters(
    engine: AsyncEngine, corpus: Corpus, filters: dict[str, Any], wanted: Callable[[str, str], bool]
) -> None:
    rows = await every_row(engine, search_violations, ViolationFilter(**IN_RANGE, **filters))
    expected = sum(1 for s in corpus.specs for g, a in s.violations if wanted(g, a))
    total = sum(len(s.violations) for s in corpus.specs)
    assert len(rows) == expected < total
    if rows:
        assert {r.key_name for r in rows} <= set(corpus.keys.values())


async def test_a_cursor_of_another_query_or_changed_is_refused(
    engine: AsyncEngine, corpus: Corpus
) -> None:
    filters = TraceFilter(**IN_RANGE)
    page = await search_traces(engine, filters, scope=None, limit=5)
    assert page.next_cursor is not None
    cursor = Cursor.decode(page.next_cursor)
    with pytest.raises(InvalidCursor):
        await search_traces(engine, filters, scope=None, sort="duration", cursor=cursor)
    with pytest.raises(InvalidCursor):
        await search_traces(
            engine, dataclasses.replace(filters, models=("gpt-4o",)), scope=None, cursor=cursor
        )
    with pytest.raises(InvalidCursor):
        await search_interactions(engine, InteractionFilter(**IN_RANGE), scope=None, cursor=cursor)
    for forged in (
        dataclasses.replace(cursor, value="not a time"),
        dataclasses.replace(cursor, value=12.5),
        dataclasses.replace(cursor, id=""),
    ):
        with pytest.raises(InvalidCursor):
            await search_traces(engine, filters, scope=None, cursor=forged)
    text = page.next_cursor
    for changed in (text[:-3], text[:10] + ("A" if text[10] != "A" else "B") + text[11:], "x"):
        with pytest.raises(InvalidCursor):
            Cursor.decode(changed)
    second = await search_traces(engine, filters, scope=None, limit=5, cursor=cursor)
    assert not {r.trace_id for r in second.rows} & {r.trace_id for r in page.rows}


def test_a_prefix_bounds_time_only_when_it_names_a_plausible_instant() -> None:
    named = search_module._id_time_window(search_module._TRACES, trace_id_at(START)[:8])
    assert len(named) == 1
    bound = named[0].compile(compile_kwargs={"literal_binds": True})
    assert "2024-03-01" in str(bound)
    assert search_module._id_time_window(search_module._TRACES, trace_id_at(START)[:7]) == []
    assert search_module._id_time_window(search_module._TRACES, "ffffffff") == []  # year 10889
    assert search_module._id_time_window(search_module._TRACES, "00000000") == []  # 1970
