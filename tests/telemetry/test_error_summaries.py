"""An error group's summary written by a model on demand (`telemetry.insights.error_summaries`)
over a planted week on SQLite and Postgres: the model (the fake Gemini through google-genai) is
given the group's facts and example messages, its call is priced and recorded apart, the
summary is kept per workspace for a while and shown by the insights and the report, never
asked for by them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.file import ConfigError, parse_config
from gateway.upstream.model_calls import ModelCaller
from providers.pricing import PriceTable
from telemetry.insights.error_summaries import (
    ErrorSummaryCache,
    SummaryFailed,
    write_summary,
)
from telemetry.insights.errors import find_errors
from telemetry.insights.findings import read_insights
from telemetry.insights.scope import InsightScope
from telemetry.records import TraceBundle
from telemetry.reports.build import build_report
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.fake_gemini import FakeGemini
from tests.telemetry.evaluation.helpers import judge_config
from tests.telemetry.insights_history import END, START, plant_insights

OTHER = "ws-other"
SUMMARY = "The organisation's tokens-per-minute limit is reached: spread the load or raise it."


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(api_key="gk-secret-1") as server:
        yield server


def scope_of(engine: AsyncEngine, workspace: str | None = DEFAULT_WORKSPACE_ID) -> InsightScope:
    return InsightScope(engine, workspace, START, END)


async def test_a_summary_is_written_from_the_groups_facts_and_kept(
    engine: AsyncEngine, gemini: FakeGemini
) -> None:
    planted = await plant_insights(engine, DEFAULT_WORKSPACE_ID, OTHER)
    found = await find_errors(scope_of(engine))
    rate = found.groups[0]
    assert rate.error_type == "rate_limit"
    # three distinct messages of the six, each as stored
    assert len(rate.example_messages) == 3 and len(set(rate.example_messages)) == 3
    assert all(m.startswith("Rate limit reached for org-") for m in rate.example_messages)

    recorded: list[TraceBundle] = []
    cache = ErrorSummaryCache()
    caller = ModelCaller(judge_config(gemini), {}, recorded.append)
    gemini.then_text(msgspec.json.encode({"summary": f"  {SUMMARY}\n"}).decode())
    try:
        written = await write_summary(
            caller,
            rate,
            model="judge",
            workspace_id=DEFAULT_WORKSPACE_ID,
            record_in=DEFAULT_WORKSPACE_ID,
            cache=cache,
        )
    finally:
        await caller.close()
    assert written == SUMMARY

    [sent] = gemini.received
    asked = msgspec.json.encode(sent.body).decode()
    assert "Rate limit reached for <id>" in asked
    assert "Failed calls: 6" in asked
    for message in rate.example_messages:
        assert msgspec.json.encode(message).decode()[1:-1] in asked
    assert "What are your opening hours" not in asked  # no prompt of any request
    [bundle] = recorded
    assert bundle.trace.source == "evaluation"
    assert bundle.trace.workspace_id == DEFAULT_WORKSPACE_ID
    assert [i.purpose for i in bundle.interactions] == ["evaluation"]
    cost = bundle.interactions[0].cost_usd
    assert cost is not None and cost > 0

    # The insights show the kept summary for this workspace only, without calling the model.
    shown = await read_insights(
        scope_of(engine),
        PriceTable.shipped(),
        summarise_errors=cache.summariser(DEFAULT_WORKSPACE_ID),
    )
    summaries = {g.fingerprint: g.summary for g in shown.errors.groups}
    assert summaries[rate.fingerprint] == SUMMARY
    assert sum(s is not None for s in summaries.values()) == 1
    elsewhere = await find_errors(scope_of(engine, OTHER), summarise=cache.summariser(OTHER))
    assert all(g.summary is None for g in elsewhere.groups)
    everyone = await find_errors(scope_of(engine, None), summarise=cache.summariser(None))
    assert all(g.summary is None for g in everyone.groups)
    assert len(gemini.received) == 1
    assert planted.rate_limit_traces


async def test_a_bad_answer_writes_no_summary(engine: AsyncEngine, gemini: FakeGemini) -> None:
    await plant_insights(engine, DEFAULT_WORKSPACE_ID, OTHER)
    group = (await find_errors(scope_of(engine))).groups[1]
    cache = ErrorSummaryCache()
    caller = ModelCaller(judge_config(gemini), {}, lambda bundle: True)
    gemini.then_text("not json").then_text('{"summary": "   "}').then_status(503)
    try:
        for reason in ("not JSON", "no summary", "the call failed (google: HTTP 503)"):
            with pytest.raises(SummaryFailed, match=reason.replace("(", r"\(").replace(")", r"\)")):
                await write_summary(
                    caller,
                    group,
                    model="judge",
                    workspace_id=DEFAULT_WORKSPACE_ID,
                    record_in=DEFAULT_WORKSPACE_ID,
                    cache=cache,
                )
    finally:
        await caller.close()
    assert cache.get(DEFAULT_WORKSPACE_ID, group.fingerprint) is None


def test_a_kept_summary_expires_and_the_oldest_goes_first() -> None:
    now = [1000.0]
    cache = ErrorSummaryCache(ttl_s=60, max_kept=2, clock=lambda: now[0])
    cache.put("ws", "a", "first")
    cache.put("ws", "b", "second")
    now[0] += 30
    assert cache.get("ws", "a") == "first"
    cache.put(None, "c", "third")  # over the bound: "a" goes
    assert cache.get("ws", "a") is None
    assert cache.get(None, "c") == "third" and cache.get("ws", "c") is None
    now[0] += 31
    assert cache.get("ws", "b") is None  # written 61 s ago
    assert cache.get(None, "c") == "third"


async def test_the_report_shows_a_kept_summary_in_its_errors_table(engine: AsyncEngine) -> None:
    from telemetry.insights.error_summaries import SUMMARIES

    await plant_insights(engine, DEFAULT_WORKSPACE_ID, OTHER)

    async def errors_table() -> tuple[list[str], list[tuple[object, ...]]]:
        document = await build_report(
            engine,
            workspace_id=DEFAULT_WORKSPACE_ID,
            start=START,
            end=END,
            sections=("insights",),
            title="Weekly summary",
            time_zone="UTC",
            now=END + timedelta(hours=8),
        )
        (section,) = document.sections
        table = next(t for t in section.tables if t.name == "errors")
        return [c.name for c in table.columns], list(table.rows)

    columns, _ = await errors_table()
    assert "summary" not in columns
    group = (await find_errors(scope_of(engine))).groups[0]
    SUMMARIES.put(DEFAULT_WORKSPACE_ID, group.fingerprint, SUMMARY)
    try:
        columns, rows = await errors_table()
    finally:
        SUMMARIES.clear()
    assert columns[-1] == "summary"
    assert [row[-1] for row in rows] == [SUMMARY, None]


def test_the_summary_model_must_be_a_public_model() -> None:
    config = parse_config(
        {
            "providers": {
                "p": {"type": "openai", "base_url": "http://127.0.0.1:9", "api_key": "k"}
            },
            "models": {"judge": [{"provider": "p", "model": "m"}]},
            "evaluation": {"error_summary_model": "judge"},
        }
    )
    assert config.evaluation.error_summary_model == "judge"
    with pytest.raises(ConfigError, match=r"evaluation\.error_summary_model"):
        parse_config(
            {
                "providers": {
                    "p": {"type": "openai", "base_url": "http://127.0.0.1:9", "api_key": "k"}
                },
                "models": {"judge": [{"provider": "p", "model": "m"}]},
                "evaluation": {"error_summary_model": "nowhere"},
            }
        )
